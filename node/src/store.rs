//! Trusted metadata in a directory: one unversioned file per role (`root.json`,
//! `timestamp.json`, `<percent-encoded role>.json`), each replaced atomically.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use catalog::client::{LocalStore, encode_role_name};

/// A [`LocalStore`] over a directory.
pub struct MetadataDir {
    dir: PathBuf,
}

impl MetadataDir {
    /// The store in `dir` (created if missing).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_owned() })
    }

    /// The file that holds `role`.
    pub fn path_of(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode_role_name(role)))
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// then fsync of the directory, so a crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl LocalStore for MetadataDir {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path_of(role)).ok()
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path_of(role);
        write_atomic(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}
