//! Generated secrets: created once from the operating system's CSPRNG at first install, stored
//! 0600 in a 0700 folder under the node data dir, and reused across update, reinstall and node
//! restart. Only `uninstall --purge` deletes them.
//!
//! Rule: a secret value never appears in a log, a plan, an error or
//! a `Debug` print; [`SecretValue`] has no `Display` and a redacting `Debug`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use catalog::manifest::Secret;

use super::Error;
use super::state::create_private_dir;

/// A secret's value. `Debug` prints `<redacted>`; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// The value, to inject into a container's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The secrets of one app, in their folder `<data>/orchestrator/secrets/<app>/`.
#[derive(Debug, Clone)]
pub struct SecretStore {
    dir: PathBuf,
    /// The names generated so far, kept apart from the secrets (`<data>/orchestrator/apps/<app>/
    /// secrets.generated`), so a secret whose file is gone is noticed instead of replaced.
    ledger: Option<PathBuf>,
}

impl SecretStore {
    /// The store in `dir` (created on first write), with no ledger.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, ledger: None }
    }

    /// The store in `dir` whose generated names are listed in `ledger`: a secret the ledger
    /// names but `dir` no longer holds is [`Error::SecretLost`], never generated again (the
    /// app's data was made with the lost value).
    pub fn with_ledger(dir: PathBuf, ledger: PathBuf) -> Self {
        Self { dir, ledger: Some(ledger) }
    }

    fn generated(&self) -> Result<Vec<String>, Error> {
        let Some(ledger) = &self.ledger else { return Ok(Vec::new()) };
        match std::fs::read_to_string(ledger) {
            Ok(text) => Ok(text.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(Error::Io { path: ledger.clone(), source }),
        }
    }

    fn remember(&self, name: &str) -> Result<(), Error> {
        let Some(ledger) = &self.ledger else { return Ok(()) };
        let mut names = self.generated()?;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
            if let Some(dir) = ledger.parent() {
                create_private_dir(dir)?;
            }
            catalog::repo::write_atomic(ledger, format!("{}\n", names.join("\n")).as_bytes())
                .map_err(|e| Error::Io { path: ledger.clone(), source: std::io::Error::other(e) })?;
        }
        Ok(())
    }

    /// The value of every secret in `secrets`, generating (and storing) those that do not
    /// exist yet. An existing value is kept as it is, even if a newer manifest asks for another
    /// length or charset: the app's data was made with it.
    pub fn ensure(&self, secrets: &[Secret]) -> Result<BTreeMap<String, SecretValue>, Error> {
        let mut values = BTreeMap::new();
        let generated = self.generated()?;
        for secret in secrets {
            let name = secret.name.as_str();
            let value = match self.read(name)? {
                Some(v) => v,
                None if generated.iter().any(|g| g == name) => {
                    let app = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    return Err(Error::SecretLost { app, name: name.to_owned(), path: self.dir.join(name) });
                }
                None => {
                    let v = generate(secret)?;
                    // Listed first: a crash between the two leaves a name without a value,
                    // which says "lost" (true: nothing used it yet, but nothing is guessed).
                    self.remember(name)?;
                    self.write(name, &v)?;
                    tracing::info!(secret = name, dir = %self.dir.display(), "generated secret");
                    v
                }
            };
            values.insert(name.to_owned(), value);
        }
        Ok(values)
    }

    /// Stores `value` as secret `name`, as if it had been generated here (restoring a backup:
    /// the app's data was made with it).
    pub fn put(&self, name: &str, value: String) -> Result<(), Error> {
        self.remember(name)?;
        self.write(name, &SecretValue(value))
    }

    /// Reads the stored values of `secrets` without generating any (a missing one is an error).
    pub fn read_all(&self, secrets: &[Secret]) -> Result<BTreeMap<String, SecretValue>, Error> {
        let mut values = BTreeMap::new();
        for secret in secrets {
            let name = secret.name.as_str();
            let value = self.read(name)?.ok_or_else(|| Error::MissingSecret { path: self.dir.join(name) })?;
            values.insert(name.to_owned(), value);
        }
        Ok(values)
    }

    fn read(&self, name: &str) -> Result<Option<SecretValue>, Error> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                // Keep the file private even if someone loosened its mode.
                let meta = std::fs::metadata(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(file = %path.display(), "secret file was readable by others; setting it to 0600");
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|source| Error::Io { path: path.clone(), source })?;
                }
                Ok(Some(SecretValue(text)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Writes a new secret: 0600 from creation (never world-readable, not even briefly),
    /// fsynced, then renamed into place.
    fn write(&self, name: &str, value: &SecretValue) -> Result<(), Error> {
        create_private_dir(&self.dir)?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let io = |source| Error::Io { path: path.clone(), source };
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        file.write_all(value.0.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Draws `secret.length` characters uniformly from its charset with the OS CSPRNG
/// (rejection sampling, so no character is more likely than another).
fn generate(secret: &Secret) -> Result<SecretValue, Error> {
    let alphabet = secret.charset.alphabet().as_bytes();
    let n = alphabet.len();
    // Largest multiple of n that fits in a byte: bytes at or above it are drawn again.
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(secret.length as usize);
    let mut buf = [0u8; 64];
    while out.len() < secret.length as usize {
        getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("the OS random generator failed: {e}")))?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < secret.length as usize {
                out.push(alphabet[b as usize % n] as char);
            }
        }
    }
    Ok(SecretValue(out))
}

#[cfg(test)]
impl SecretValue {
    /// A value made up in a unit test.
    pub(crate) fn for_tests(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use catalog::manifest::Charset;

    fn secret(name: &str, length: u32, charset: Charset) -> Secret {
        Secret { name: name.parse().unwrap(), length, charset }
    }

    #[test]
    fn generated_once_then_reused_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretStore::new(tmp.path().join("secrets").join("app"));
        let wanted = [secret("db", 32, Charset::Alphanumeric), secret("key", 64, Charset::Hex)];
        let first = store.ensure(&wanted).unwrap();
        assert_eq!(first["db"].expose().len(), 32);
        assert!(first["key"].expose().bytes().all(|b| b.is_ascii_hexdigit()));
        let again = SecretStore::new(store.dir().to_owned()).ensure(&wanted).unwrap();
        assert_eq!(first, again);
        let mode = std::fs::metadata(store.dir().join("db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let v = generate(&secret("x", 40, Charset::Base64url)).unwrap();
        assert_eq!(format!("{v:?}"), "<redacted>");
        assert!(!format!("{:?}", BTreeMap::from([("x", v.clone())])).contains(v.expose()));
    }

    #[test]
    fn every_character_of_the_charset_is_used() {
        let v = generate(&secret("x", 1024, Charset::Hex)).unwrap();
        for c in "0123456789abcdef".chars() {
            assert!(v.expose().contains(c), "{c} never drawn in 1024 characters");
        }
    }
}
