//! The node's own Nostr key, `<data>/nostr.key`: the secret key in hex on one line, mode 0600,
//! created on first use. It signs the node's NIP-85 trust assertions. It is never logged or
//! printed; only its public key is.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::Context as _;
use archy_nostr::nostr_sdk::{Keys, SecretKey};

/// The node's Nostr keys in the key file at `path` (`<data>/nostr.key`), created (0600, written
/// atomically) if the file does not exist.
pub(crate) fn load_or_create(path: &Path) -> anyhow::Result<Keys> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !path.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let keys = Keys::generate();
        let tmp = dir.join(format!(".nostr.key.tmp-{}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(format!("{}\n", keys.secret_key().to_secret_hex()).as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
        return Ok(keys);
    }
    let mode = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        anyhow::bail!("{} is readable by other users (mode {:o}); run `chmod 600` on it", path.display(), mode & 0o777);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // The error of a bad key must not quote the file's contents.
    let secret = SecretKey::parse(text.trim())
        .map_err(|_| anyhow::anyhow!("{} does not hold a Nostr secret key (hex or nsec)", path.display()))?;
    Ok(Keys::new(secret))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
