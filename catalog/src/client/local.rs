//! A [`Remote`] over a repository directory and a [`LocalStore`] in memory: for verifying a
//! repository on disk (`archy repo verify`) and for tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{FetchError, LocalStore, Remote};

/// Reads `metadata/<name>` and `targets/<path>` under a repository directory, bounded like a
/// network fetch, and records each request.
pub struct DirRemote {
    root: PathBuf,
    requests: Vec<String>,
}

impl DirRemote {
    /// A remote over the repository directory `root`.
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_owned(), requests: Vec::new() }
    }

    /// Files requested so far, relative to the repository directory.
    pub fn requests(&self) -> &[String] {
        &self.requests
    }

    fn read(&mut self, rel: String, max: u64) -> Result<Vec<u8>, FetchError> {
        self.requests.push(rel.clone());
        // Refuse paths that would leave the repository directory.
        if rel.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(FetchError::NotFound);
        }
        let path = self.root.join(&rel);
        let len = std::fs::metadata(&path).map_err(|_| FetchError::NotFound)?.len();
        if len > max {
            return Err(FetchError::TooLarge { limit: max });
        }
        std::fs::read(&path).map_err(|e| FetchError::Other(format!("{}: {e}", path.display())))
    }
}

impl Remote for DirRemote {
    fn fetch_metadata(&mut self, name: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        self.read(format!("metadata/{name}"), max)
    }

    fn fetch_target(&mut self, path: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        self.read(format!("targets/{path}"), max)
    }
}

/// Trusted metadata held in memory, by role name.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    roles: BTreeMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// A store trusting `root` (the bootstrap root.json bytes).
    pub fn with_root(root: Vec<u8>) -> Self {
        let mut roles = BTreeMap::new();
        roles.insert("root".to_owned(), root);
        Self { roles }
    }

    /// Whether a role's metadata is stored.
    pub fn contains(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }
}

impl LocalStore for MemoryStore {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.roles.get(role).cloned()
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), String> {
        self.roles.insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }
}
