//! Trusted metadata in a directory: one unversioned file per role (`root.json`,
//! `timestamp.json`, `<percent-encoded role>.json`), each replaced atomically.

use std::path::{Path, PathBuf};

use catalog::client::{LocalStore, encode_role_name};

/// A [`LocalStore`] over a directory.
pub(crate) struct MetadataDir {
    dir: PathBuf,
}

impl MetadataDir {
    /// The store in `dir` (created if missing).
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self { dir: dir.to_owned() })
    }

    /// The file that holds `role`.
    pub(crate) fn path_of(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode_role_name(role)))
    }
}

impl LocalStore for MetadataDir {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path_of(role)).ok()
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path_of(role);
        catalog::repo::write_atomic(&path, bytes).map_err(|e| e.to_string())
    }
}
