//! The envelopes hosted at `/v1/blobs`, and the quota they are kept under (decision D20).
//!
//! Anyone with a did:key can post a self-signed envelope, so what the origin keeps is bounded:
//! - **per DID**, at most [`BlobQuota::per_did`] envelopes; a DID posting one more loses its own
//!   oldest (a publisher's older releases make room for its newer ones, nobody else's do);
//! - **in total**, at most [`BlobQuota::max_bytes`]; when a new envelope would not fit, it is
//!   refused (507 `blobs_full`), never made room for by evicting another DID's envelopes, so a
//!   flood of fresh DIDs cannot push out the envelopes of real publishers;
//! - **in time**, an envelope not posted again for [`BlobQuota::expire_after`] is removed (posting
//!   the same bytes again keeps it, as `archy publish --upload` does).
//!
//! The files live at `<data>/registry/envelopes/<blake3 hex>`; [`HostedIndex::load`] rebuilds the
//! index from them at start (the publisher from each envelope, the time from its mtime).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use catalog::envelope::SignedEnvelope;
use catalog::manifest::Limits;

/// Limits of the envelopes hosted at `/v1/blobs` (`archy-registry serve --blobs-per-did
/// --blobs-max-mib --blobs-expire-days`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobQuota {
    /// Most envelopes kept per publisher DID; one more evicts that DID's oldest.
    pub per_did: usize,
    /// Most bytes of envelopes kept in all; a post beyond is refused with 507.
    pub max_bytes: u64,
    /// An envelope not posted again for this long is removed.
    pub expire_after: Duration,
}

impl Default for BlobQuota {
    /// 32 envelopes per DID, 256 MiB in all, kept 90 days after their last post.
    fn default() -> Self {
        Self { per_did: 32, max_bytes: 256 << 20, expire_after: Duration::from_secs(90 * 86_400) }
    }
}

/// Why an envelope is not stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostError {
    /// It does not fit in [`BlobQuota::max_bytes`].
    #[error(
        "the origin hosts at most {max} bytes of envelopes (its --blobs-max-mib) and {used} are taken; \
         this envelope of {size} bytes does not fit"
    )]
    Full {
        /// The limit.
        max: u64,
        /// What is stored now.
        used: u64,
        /// The refused envelope's size.
        size: u64,
    },
    /// Writing or removing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What [`HostedIndex::store`] did.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// The envelopes removed to make room or because they expired (lowercase hex BLAKE3).
    pub(crate) removed: Vec<String>,
    /// Whether the bytes were new (false: they were already hosted, and are kept longer).
    pub(crate) new: bool,
}

/// One hosted envelope.
#[derive(Debug, Clone)]
struct Entry {
    hex: String,
    size: u64,
    posted: SystemTime,
}

/// The hosted envelopes by publisher DID and by age, and their total size.
#[derive(Debug, Default)]
pub(crate) struct HostedIndex {
    dir: PathBuf,
    /// Each DID's envelopes, oldest post first.
    by_did: HashMap<String, VecDeque<Entry>>,
    /// Hash → DID.
    owner: HashMap<String, String>,
    /// Every envelope by last post, for expiry.
    by_age: BTreeSet<(SystemTime, String)>,
    total: u64,
}

impl HostedIndex {
    /// Reads `dir` (a missing folder is empty). Leftover temporary files (`.name.*`) and files
    /// that are not a verified envelope named by its BLAKE3 are removed.
    pub(crate) fn load(dir: &Path) -> std::io::Result<Self> {
        let mut index = Self { dir: dir.to_owned(), ..Self::default() };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(index),
            Err(e) => return Err(e),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let bytes = std::fs::read(&path)?;
            // Verified again: only what still verifies is served and counted.
            let publisher = SignedEnvelope::from_slice(&bytes)
                .and_then(|e| e.verify(&Limits::default()))
                .ok()
                .map(|v| v.manifest().publisher.to_string());
            let hashed = blake3::hash(&bytes).to_hex().to_string();
            match publisher {
                Some(did) if hashed == name => {
                    let posted = entry.metadata()?.modified().unwrap_or_else(|_| SystemTime::now());
                    found.push((did, Entry { hex: name, size: bytes.len() as u64, posted }));
                }
                _ => {
                    tracing::warn!(file = %path.display(), "removing a file that is not a hosted envelope");
                    std::fs::remove_file(&path)?;
                }
            }
        }
        found.sort_by_key(|(_, entry)| entry.posted);
        for (did, entry) in found {
            index.insert(did, entry);
        }
        Ok(index)
    }

    /// Bytes stored.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Stores `bytes` (an envelope already verified, by `did`, named `hex`) under `quota`: first
    /// removes what expired, then keeps it if it is already here (as posted now), else makes room
    /// in `did`'s own quota and writes it if the total allows.
    pub(crate) fn store(
        &mut self,
        quota: &BlobQuota,
        did: &str,
        hex: &str,
        bytes: &[u8],
        now: SystemTime,
    ) -> Result<Stored, HostError> {
        let mut stored = Stored::default();
        self.expire(quota, now, &mut stored.removed)?;
        let size = bytes.len() as u64;
        if let Some(owner) = self.owner.get(hex).cloned() {
            // The same bytes again: stored once, kept for another `expire_after`.
            let path = self.dir.join(hex);
            let entry = self.remove_entry(&owner, hex).unwrap_or(Entry { hex: hex.to_owned(), size, posted: now });
            std::fs::File::options().write(true).open(&path)?.set_modified(now)?;
            self.insert(owner, Entry { posted: now, ..entry });
            return Ok(stored);
        }
        // Room in the DID's own quota: its oldest envelopes go, but only if the new one then fits
        // in the total (a refusal leaves everything as it was).
        let own = self.by_did.get(did).map(VecDeque::len).unwrap_or(0);
        let evict: Vec<Entry> = match self.by_did.get(did) {
            Some(list) if own + 1 > quota.per_did => list.iter().take(own + 1 - quota.per_did).cloned().collect(),
            _ => Vec::new(),
        };
        let freed: u64 = evict.iter().map(|e| e.size).sum();
        if self.total - freed + size > quota.max_bytes {
            return Err(HostError::Full { max: quota.max_bytes, used: self.total, size });
        }
        for old in evict {
            self.remove(did, &old.hex)?;
            stored.removed.push(old.hex);
        }
        std::fs::create_dir_all(&self.dir)?;
        let temp = self.dir.join(format!(".{hex}.{:016x}", super::rand_u64()));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            std::io::Write::write_all(&mut file, bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, self.dir.join(hex))
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(e.into());
        }
        self.insert(did.to_owned(), Entry { hex: hex.to_owned(), size, posted: now });
        stored.new = true;
        Ok(stored)
    }

    /// Removes every envelope last posted `expire_after` or longer before `now` (at start, and
    /// before each post), adding their hashes to `removed`.
    pub(crate) fn expire(
        &mut self,
        quota: &BlobQuota,
        now: SystemTime,
        removed: &mut Vec<String>,
    ) -> std::io::Result<()> {
        while let Some((posted, hex)) = self.by_age.first().cloned() {
            if posted + quota.expire_after > now {
                break;
            }
            let Some(did) = self.owner.get(&hex).cloned() else {
                self.by_age.remove(&(posted, hex));
                continue;
            };
            self.remove(&did, &hex)?;
            removed.push(hex);
        }
        Ok(())
    }

    /// Removes an envelope's file and its entry.
    fn remove(&mut self, did: &str, hex: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join(hex)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.remove_entry(did, hex);
        tracing::info!(publisher = %did, blake3 = %hex, "hosted envelope removed");
        Ok(())
    }

    fn insert(&mut self, did: String, entry: Entry) {
        self.total += entry.size;
        self.by_age.insert((entry.posted, entry.hex.clone()));
        self.owner.insert(entry.hex.clone(), did.clone());
        self.by_did.entry(did).or_default().push_back(entry);
    }

    fn remove_entry(&mut self, did: &str, hex: &str) -> Option<Entry> {
        let list = self.by_did.get_mut(did)?;
        let at = list.iter().position(|e| e.hex == hex)?;
        let entry = list.remove(at)?;
        if list.is_empty() {
            self.by_did.remove(did);
        }
        self.owner.remove(hex);
        self.by_age.remove(&(entry.posted, entry.hex.clone()));
        self.total -= entry.size;
        Some(entry)
    }
}
