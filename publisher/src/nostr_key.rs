//! The publisher's Nostr key file: a secp256k1 (BIP-340) secret key, written 0600, never logged.
//!
//! A did:key (Ed25519) can't sign Nostr events, so a publisher has a second key that posts
//! them; the binding event, signed by both, ties the two together (`docs/nostr.md`).
//!
//! The file is one line of JSON, `{"type":"nostr","nsec":"nsec1…"}`: the `nsec` is what other
//! Nostr clients import, so the same key can be used there. As with the publisher key
//! ([`catalog::keyfile`]), a file readable by group or others is refused.

use std::path::{Path, PathBuf};

use archy_nostr::nostr_sdk::{FromBech32 as _, Keys, SecretKey, ToBech32 as _};

/// Why the Nostr key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NostrKeyError {
    /// Reading or writing the file failed.
    #[error("Nostr key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not an archy Nostr key file.
    #[error("Nostr key file {path}: not an archy Nostr key file ({reason})")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Readable by group or others.
    #[error("Nostr key file {path} has mode {mode:o}; a secret key must be 0600 (run `chmod 600 {path}`)")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct NostrKeyJson {
    #[serde(rename = "type")]
    kind: String,
    nsec: String,
}

/// Reads the key at `path`, or creates one there (0600, parent directories 0700) when there is
/// no file yet. Returns the keys and whether they were created now.
pub fn load_or_create(path: &Path) -> Result<(Keys, bool), NostrKeyError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok((read(path)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match write_new(path, &Keys::generate()) {
            Ok(keys) => Ok((keys, true)),
            // Another `archy` created it meanwhile: use that one.
            Err(NostrKeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((read(path)?, false))
            }
            Err(e) => Err(e),
        },
        Err(source) => Err(NostrKeyError::Io { path: path.to_owned(), source }),
    }
}

/// Reads the key at `path`, refusing a file that others can read.
pub fn read(path: &Path) -> Result<Keys, NostrKeyError> {
    let io = |source| NostrKeyError::Io { path: path.to_owned(), source };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(NostrKeyError::InsecurePermissions { path: path.to_owned(), mode });
        }
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let malformed = |reason: &str| NostrKeyError::Malformed { path: path.to_owned(), reason: reason.into() };
    let json: NostrKeyJson = serde_json::from_slice(&bytes).map_err(|_| malformed("not JSON"))?;
    if json.kind != "nostr" {
        return Err(malformed("type is not nostr"));
    }
    let secret = SecretKey::from_bech32(&json.nsec).map_err(|_| malformed("`nsec` is not an nsec1… secret key"))?;
    Ok(Keys::new(secret))
}

/// Writes `keys` to a new file at `path` (0600; parent directories 0700), whole or not at all
/// ([`catalog::keyfile::write_secret_new`]). Never overwrites.
fn write_new(path: &Path, keys: &Keys) -> Result<Keys, NostrKeyError> {
    let nsec = keys.secret_key().to_bech32().map_err(|e| NostrKeyError::Malformed {
        path: path.to_owned(),
        reason: format!("encoding the new key: {e}"),
    })?;
    let mut line = serde_json::to_vec(&NostrKeyJson { kind: "nostr".into(), nsec }).unwrap_or_default();
    line.push(b'\n');
    catalog::keyfile::write_secret_new(path, &line)
        .map_err(|source| NostrKeyError::Io { path: path.to_owned(), source })?;
    Ok(keys.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_0600_and_reads_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config/archy/nostr.key");
        let (keys, created) = load_or_create(&path).expect("create");
        assert!(created);
        let (again, created) = load_or_create(&path).expect("read");
        assert!(!created);
        assert_eq!(keys.public_key(), again.public_key());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().expect("parent")).expect("stat").permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nostr.key");
        load_or_create(&path).expect("create");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read(&path).expect_err("0644");
        assert!(matches!(err, NostrKeyError::InsecurePermissions { mode: 0o644, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
