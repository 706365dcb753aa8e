//! `files/<blake3>`: the node's content-addressed store of verified target files (manifest
//! envelopes, image archives), whatever brought them (catalog sync, Nostr discovery, `fetch`).
//!
//! Every way in checks the bytes: [`FileStore::put`] hashes what it is given, and a fetch into
//! [`FileStore::part_path`] is moved in by [`FileStore::commit_part`] only after the fetcher
//! verified it. Every way out checks them again where it matters: [`FileStore::get`] re-hashes and
//! removes a file that no longer matches its name (a damaged disk, a hand edit), so the next sync
//! fetches it afresh instead of every reader deciding on its own. [`FileStore::serve_into`]
//! hands the files to the iroh-blobs store that serves them to other nodes.

use std::path::{Path, PathBuf};

/// Why a stored file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// No file of that hash is stored.
    #[error("{hash}: not stored")]
    Missing {
        /// The BLAKE3 hash asked for.
        hash: String,
    },
    /// The stored bytes no longer hash to their name or have another length; the file was
    /// removed so it is fetched again.
    #[error("{}: stored bytes changed on disk (removed; the next sync fetches them again)", path.display())]
    Damaged {
        /// The removed file.
        path: PathBuf,
    },
    /// Bytes offered to [`FileStore::put`] do not hash to the name they were offered under.
    #[error("bytes offered as {expected} hash to {found}")]
    HashMismatch {
        /// The hash signed metadata names.
        expected: String,
        /// What the bytes hash to.
        found: String,
    },
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The `files/` folder of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder (served to other nodes as blobs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file of `blake3_hex` is (or would be) stored.
    pub fn path(&self, blake3_hex: &str) -> PathBuf {
        self.dir.join(blake3_hex)
    }

    /// Whether a file of that hash is stored (not re-hashed: see [`FileStore::get`]).
    pub fn contains(&self, blake3_hex: &str) -> bool {
        self.path(blake3_hex).is_file()
    }

    /// The stored bytes of `blake3_hex`, re-hashed and checked against `length`. A file that no
    /// longer matches is removed and reported as [`FileError::Damaged`].
    pub fn get(&self, blake3_hex: &str, length: u64) -> Result<Vec<u8>, FileError> {
        let path = self.path(blake3_hex);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FileError::Missing { hash: blake3_hex.to_owned() });
            }
            Err(source) => return Err(FileError::Io { path, source }),
        };
        if bytes.len() as u64 != length || blake3::hash(&bytes).to_hex().as_str() != blake3_hex {
            tracing::warn!(file = %path.display(), "stored file no longer matches its hash; removed");
            let _ = std::fs::remove_file(&path);
            return Err(FileError::Damaged { path });
        }
        Ok(bytes)
    }

    /// Stores `bytes` under their BLAKE3 hash, which must be `blake3_hex` (temporary file,
    /// fsync, rename). Returns the path.
    pub fn put(&self, blake3_hex: &str, bytes: &[u8]) -> Result<PathBuf, FileError> {
        let found = blake3::hash(bytes).to_hex();
        if found.as_str() != blake3_hex {
            return Err(FileError::HashMismatch { expected: blake3_hex.to_owned(), found: found.to_string() });
        }
        let path = self.path(blake3_hex);
        if !path.exists() {
            self.create_dir()?;
            catalog::repo::write_atomic(&path, bytes)
                .map_err(|e| FileError::Io { path: path.clone(), source: std::io::Error::other(e) })?;
        }
        Ok(path)
    }

    /// A temporary file for a fetch of `blake3_hex` in progress (`.` names are never served);
    /// `kind` keeps fetchers of different kinds apart. Creates the folder.
    pub fn part_path(&self, blake3_hex: &str, kind: &str) -> Result<PathBuf, FileError> {
        self.create_dir()?;
        Ok(self.dir.join(format!(".{blake3_hex}.{kind}")))
    }

    /// Moves a fetched and verified temporary file in as `blake3_hex` (rename, then the folder
    /// made durable). Returns the stored path.
    pub fn commit_part(&self, part: &Path, blake3_hex: &str) -> Result<PathBuf, FileError> {
        let path = self.commit_part_unsynced(part, blake3_hex)?;
        self.sync_dir()?;
        Ok(path)
    }

    /// [`FileStore::commit_part`] without making the folder durable: for many small files at
    /// once, followed by one [`FileStore::sync_dir`]. A file a crash damages or loses is found
    /// out by the next read (which re-hashes) and fetched again.
    pub fn commit_part_unsynced(&self, part: &Path, blake3_hex: &str) -> Result<PathBuf, FileError> {
        let path = self.path(blake3_hex);
        std::fs::rename(part, &path).map_err(|source| FileError::Io { path: path.clone(), source })?;
        Ok(path)
    }

    /// Makes the folder's entries durable (fsync of the directory).
    pub fn sync_dir(&self) -> Result<(), FileError> {
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| FileError::Io { path: self.dir.clone(), source })
    }

    /// Makes every stored file servable to other nodes from the iroh-blobs `store` (by
    /// reference, not copied); `served` remembers what was added before, so each call adds only
    /// the new files. Returns how many were added.
    pub async fn serve_into(
        &self,
        store: &iroh_blobs::api::Store,
        served: &mut archy_net::FolderBlobs,
    ) -> anyhow::Result<usize> {
        served.import_new(store, &self.dir).await
    }

    fn create_dir(&self) -> Result<(), FileError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| FileError::Io { path: self.dir.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_file_is_removed_and_reported() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = FileStore::new(tmp.path().join("files"));
        let hash = blake3::hash(b"envelope").to_hex().to_string();
        store.put(&hash, b"envelope").expect("put");
        assert_eq!(store.get(&hash, 8).expect("get"), b"envelope");
        std::fs::write(store.path(&hash), b"envelopf").expect("damage");
        assert!(matches!(store.get(&hash, 8), Err(FileError::Damaged { .. })));
        assert!(!store.contains(&hash));
        assert!(matches!(store.get(&hash, 8), Err(FileError::Missing { .. })));
    }

    #[test]
    fn bytes_under_another_name_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = FileStore::new(tmp.path().join("files"));
        let hash = blake3::hash(b"one").to_hex().to_string();
        assert!(matches!(store.put(&hash, b"two"), Err(FileError::HashMismatch { .. })));
        assert!(!store.contains(&hash));
    }
}
