//! The node's verified Nostr events on disk: `<data>/nostr/events/<kind>-<event id>.json`, one
//! NIP-01 event per file, each written atomically (temporary file, fsync, rename) after it passed
//! every check. Envelope files go to the node's content-addressed file store
//! (`<data>/files/<blake3>`, [`crate::files::FileStore`]).
//!
//! Nothing here is trusted when it is read back: [`super::state::NostrState::load`] runs every
//! stored event through the same checks again.

use std::path::PathBuf;

use archy_nostr::nostr_sdk::{Event, EventId, JsonUtil as _};

use crate::data_dir::DataDir;

/// Largest stored event file read back (a little above the largest event accepted).
const MAX_FILE_BYTES: u64 = archy_nostr::event::MAX_FOLLOW_LIST_BYTES as u64 + 1024;

/// The verified events of one data dir.
#[derive(Debug, Clone)]
pub(crate) struct EventStore {
    dir: PathBuf,
}

/// A stored file as read back: its name and contents, not yet checked.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    /// File name.
    pub name: String,
    /// Its text, or why it could not be read.
    pub text: Result<String, String>,
}

impl EventStore {
    /// The store of `data` (nothing is created until the first write).
    pub(crate) fn new(data: &DataDir) -> Self {
        Self { dir: data.nostr_dir().join("events") }
    }

    fn name(event: &Event) -> String {
        format!("{}-{}.json", event.kind.as_u16(), event.id.to_hex())
    }

    /// Writes a verified event.
    pub(crate) fn put(&self, event: &Event) -> anyhow::Result<()> {
        let path = self.dir.join(Self::name(event));
        if !path.exists() {
            catalog::repo::write_atomic(&path, event.as_json().as_bytes())?;
        }
        Ok(())
    }

    /// Removes an event (a follow list replaced by a newer one, an evicted event).
    pub(crate) fn remove(&self, event: &Event) {
        self.remove_id(event.kind.as_u16(), &event.id);
    }

    /// Removes the event of `kind` with `id`.
    pub(crate) fn remove_id(&self, kind: u16, id: &EventId) {
        let _ = std::fs::remove_file(self.dir.join(format!("{kind}-{}.json", id.to_hex())));
    }

    /// Every stored file, in name order. Files larger than any accepted event are returned as
    /// unreadable rather than read.
    pub(crate) fn read_all(&self) -> Vec<StoredFile> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<StoredFile> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !name.ends_with(".json") {
                    return None;
                }
                let text = match entry.metadata() {
                    Ok(m) if m.len() > MAX_FILE_BYTES => {
                        Err(format!("{} bytes; the limit is {MAX_FILE_BYTES}", m.len()))
                    }
                    Ok(_) => std::fs::read_to_string(entry.path()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                Some(StoredFile { name, text })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
