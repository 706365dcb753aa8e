//! The node's own Nostr key, `<data>/nostr.key`: the secret key in hex on one line, mode 0600,
//! created on first use. It signs the node's NIP-85 trust assertions. It is never logged or
//! printed; only its public key is.

use std::path::Path;

use archy_nostr::nostr_sdk::{Keys, SecretKey};

use crate::data_dir::{create_private, read_private};

/// The node's Nostr keys in the key file at `path` (`<data>/nostr.key`), created (0600, written
/// atomically) if the file does not exist.
pub(crate) fn load_or_create(path: &Path) -> anyhow::Result<Keys> {
    if !path.exists() {
        let keys = Keys::generate();
        if create_private(path, format!("{}\n", keys.secret_key().to_secret_hex()).as_bytes())? {
            return Ok(keys);
        }
    }
    let text = read_private(path)?;
    // The error of a bad key must not quote the file's contents.
    let secret = SecretKey::parse(text.trim())
        .map_err(|_| anyhow::anyhow!("{} does not hold a Nostr secret key (hex or nsec)", path.display()))?;
    Ok(Keys::new(secret))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nostr.key");
        let keys = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap().public_key(), keys.public_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path).unwrap_err().to_string().contains("chmod 600"));
    }
}
