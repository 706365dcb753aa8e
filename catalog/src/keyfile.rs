//! Key files on disk: a secret key written with 0600 permissions, never logged.
//!
//! The file format is one line of JSON, `{"type":"ed25519","seed":"<hex>"}`, so it is obvious what
//! the file is and easy to back up. A file readable by group or others is refused on load.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::keys::SigningKey;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an archy key file.
    #[error("key file {path}: not an archy ed25519 key file ({reason})")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The file is readable by group or others.
    #[error("key file {path} has mode {mode:o}; a secret key must be 0600 (run `chmod 600 {path}`)")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Refusing to overwrite an existing key.
    #[error("key file {path} already exists; refusing to overwrite a key")]
    Exists {
        /// The key file.
        path: PathBuf,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFileJson {
    #[serde(rename = "type")]
    kind: String,
    seed: String,
}

/// Writes `key` to a new file at `path` with mode 0600, creating parent directories (0700).
/// An existing file is never overwritten.
pub fn write_new(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let json = KeyFileJson { kind: "ed25519".into(), seed: hex::encode(key.seed()) };
    let mut line = serde_json::to_vec(&json).unwrap_or_default();
    line.push(b'\n');
    write_secret_new(path, &line).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists { path: path.to_owned() }
        } else {
            KeyFileError::Io { path: path.to_owned(), source: e }
        }
    })
}

/// Creates the secret file `path` holding `bytes`, whole or not at all: parent directories are
/// made 0700, the bytes go to a 0600 temporary file beside it which is synced and then linked to
/// `path` (an `AlreadyExists` error if `path` exists, which is never overwritten). A crash leaves
/// either no file or the complete one, never a truncated key.
pub fn write_secret_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(parent)?;
    }
    if path.exists() {
        return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the key file exists"));
    }
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", hex::encode(nonce)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    // A hard link fails if `path` appeared meanwhile: two writers never overwrite each other.
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    linked?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent).and_then(|d| d.sync_all())?;
    }
    Ok(())
}

/// Reads a key file, refusing one that others can read.
pub fn read(path: &Path) -> Result<SigningKey, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_owned(), source };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::InsecurePermissions { path: path.to_owned(), mode });
        }
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let malformed = |reason: &str| KeyFileError::Malformed { path: path.to_owned(), reason: reason.into() };
    let json: KeyFileJson = serde_json::from_slice(&bytes).map_err(|_| malformed("not JSON"))?;
    if json.kind != "ed25519" {
        return Err(malformed("type is not ed25519"));
    }
    let seed: [u8; 32] = hex::decode(&json.seed)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| malformed("seed is not 32 hex bytes"))?;
    Ok(SigningKey::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_key_is_0600_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/publisher.key");
        let key = SigningKey::generate();
        write_new(&path, &key).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(read(&path).expect("read").did(), key.did());
        assert!(matches!(write_new(&path, &key), Err(KeyFileError::Exists { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.key");
        write_new(&path, &SigningKey::generate()).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(read(&path), Err(KeyFileError::InsecurePermissions { mode: 0o644, .. })));
    }
}
