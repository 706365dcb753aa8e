//! The embedded Nostr relay: nostr-relay-builder's relay (NIP-01, NIP-09 deletions, NIP-33
//! addressable events) over an in-memory index that is also written, event by event, to an
//! append-only log, so a restarted relay serves what it served before.
//!
//! The log is `<dir>/events.jsonl`: one NIP-01 event per line, appended and flushed to disk
//! after the in-memory database accepted it. On start every line is checked again (NIP-01 id and
//! signature) and replayed in order, which reapplies replacements and deletions; then the log is
//! rewritten, through a temporary file and a rename, to hold only the events still served. A torn
//! last line from a crash is skipped with a warning.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use nostr_relay_builder::prelude::{
    Backend, BoxedFuture, DatabaseError, DatabaseEventStatus, Event, EventId, Events, Filter, JsonUtil, LocalRelay,
    MemoryDatabase, MemoryDatabaseOptions, NostrDatabase, PolicyResult, RateLimit, RelayBuilder, SaveEventStatus,
    WritePolicy,
};

/// Largest event the embedded relay stores (a 10,000-key follow list is about 700 KiB).
pub const MAX_RELAY_EVENT_BYTES: usize = 1024 * 1024;
const LOG_FILE: &str = "events.jsonl";

/// A running embedded relay. Dropping it (every clone) shuts it down.
#[derive(Debug, Clone)]
pub struct EmbeddedRelay {
    relay: LocalRelay,
    url: String,
}

impl EmbeddedRelay {
    /// Starts a relay listening on `addr` (port 0 picks one). With `dir`, events persist in
    /// `<dir>/events.jsonl`; without, they live in memory only.
    pub async fn start(mut addr: SocketAddr, dir: Option<&Path>) -> anyhow::Result<Self> {
        if addr.port() == 0 {
            // The relay builder reports the port it was given, so pick a free one first.
            let probe = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            addr = probe.local_addr()?;
        }
        let memory = MemoryDatabase::with_opts(MemoryDatabaseOptions { events: true, max_events: Some(200_000) });
        let mut builder = RelayBuilder::default()
            .addr(addr.ip())
            .port(addr.port())
            .rate_limit(RateLimit { max_reqs: 500, notes_per_minute: 6_000 })
            .write_policy(SizeLimit);
        builder = match dir {
            Some(dir) => builder.database(LoggedDatabase::open(memory, dir).await?),
            None => builder.database(memory),
        };
        let relay = LocalRelay::new(builder);
        relay.run().await.with_context(|| format!("starting the embedded relay on {addr}"))?;
        let url = relay.url().await.to_string();
        Ok(Self { relay, url })
    }

    /// `ws://ip:port`.
    pub fn url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// Stops accepting connections and closes the open ones.
    pub fn shutdown(&self) {
        self.relay.shutdown();
    }
}

/// Kinds the embedded relay stores: archy's events (NIP-78 30078), NIP-09 deletions (5), the
/// trust inputs (3 follow lists, 1985 NIP-32 labels), NIP-89 handlers (31990), NIP-85 assertions
/// (30382), the NIP-82 mirror (32267, 30063, 3063, [`crate::nip82`]) and profiles (0). It is
/// archy's relay, not a general-purpose one: refusing other kinds keeps strangers from filling
/// its memory and disk with unrelated data.
pub const RELAY_KINDS: [u16; 10] = [0, 3, 5, 1985, 3063, 30063, 30078, 30382, 31990, 32267];

/// Refuses kinds outside [`RELAY_KINDS`] and events larger than archy accepts for their kind
/// ([`crate::event::max_event_bytes`]: 64 KiB, follow lists up to [`MAX_RELAY_EVENT_BYTES`]).
#[derive(Debug)]
struct SizeLimit;

impl WritePolicy for SizeLimit {
    fn admit_event<'a>(&'a self, event: &'a Event, _addr: &'a SocketAddr) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async move {
            let kind = event.kind.as_u16();
            if !RELAY_KINDS.contains(&kind) {
                return PolicyResult::Reject(format!(
                    "blocked: this relay keeps archy's event kinds only, not kind {kind}"
                ));
            }
            let size = event.as_json().len();
            let limit = crate::event::max_event_bytes(kind).min(MAX_RELAY_EVENT_BYTES);
            if size > limit {
                PolicyResult::Reject(format!("invalid: event is {size} bytes, the limit for kind {kind} is {limit}"))
            } else {
                PolicyResult::Accept
            }
        })
    }
}

/// The in-memory database plus its append-only log.
#[derive(Debug)]
struct LoggedDatabase {
    memory: MemoryDatabase,
    log: Arc<Mutex<File>>,
}

impl LoggedDatabase {
    async fn open(memory: MemoryDatabase, dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(LOG_FILE);
        if path.exists() {
            let file = File::open(&path).with_context(|| format!("reading {}", path.display()))?;
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line.with_context(|| format!("reading {}", path.display()))?;
                match Event::from_json(&line)
                    .map_err(|e| e.to_string())
                    .and_then(|e| e.verify().map(|()| e).map_err(|e| e.to_string()))
                {
                    Ok(event) => {
                        memory.save_event(&event).await.map_err(|e| anyhow::anyhow!("replaying the relay log: {e}"))?;
                    }
                    Err(e) => tracing::warn!(line = n + 1, "skipping an unreadable line of {}: {e}", path.display()),
                }
            }
            compact(&memory, &path).await?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self { memory, log: Arc::new(Mutex::new(log)) })
    }

    fn append(&self, event: &Event) -> Result<(), DatabaseError> {
        let mut line = event.as_json();
        line.push('\n');
        let log = self.log.lock().map_err(|_| DatabaseError::backend(LogError("relay log lock poisoned".into())))?;
        let mut file: &File = &log;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| DatabaseError::backend(LogError(format!("appending to the relay log: {e}"))))
    }
}

#[derive(Debug)]
struct LogError(String);

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LogError {}

/// Rewrites the log to the events the database still serves, atomically.
async fn compact(memory: &MemoryDatabase, path: &Path) -> anyhow::Result<()> {
    let events = memory.query(Filter::new()).await.map_err(|e| anyhow::anyhow!("reading the relay database: {e}"))?;
    let mut events: Vec<Event> = events.into_iter().collect();
    events.sort_by_key(|e| e.created_at);
    let tmp: PathBuf = path.with_extension("jsonl.tmp");
    {
        let mut file = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        for event in &events {
            writeln!(file, "{}", event.as_json())?;
        }
        file.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

impl NostrDatabase for LoggedDatabase {
    fn backend(&self) -> Backend {
        Backend::Custom("memory+log".into())
    }

    fn save_event<'a>(&'a self, event: &'a Event) -> BoxedFuture<'a, Result<SaveEventStatus, DatabaseError>> {
        Box::pin(async move {
            let status = self.memory.save_event(event).await?;
            if status.is_success() {
                self.append(event)?;
            }
            Ok(status)
        })
    }

    fn check_id<'a>(&'a self, id: &'a EventId) -> BoxedFuture<'a, Result<DatabaseEventStatus, DatabaseError>> {
        self.memory.check_id(id)
    }

    fn event_by_id<'a>(&'a self, id: &'a EventId) -> BoxedFuture<'a, Result<Option<Event>, DatabaseError>> {
        self.memory.event_by_id(id)
    }

    fn count(&self, filter: Filter) -> BoxedFuture<'_, Result<usize, DatabaseError>> {
        self.memory.count(filter)
    }

    fn query(&self, filter: Filter) -> BoxedFuture<'_, Result<Events, DatabaseError>> {
        self.memory.query(filter)
    }

    fn delete(&self, filter: Filter) -> BoxedFuture<'_, Result<(), DatabaseError>> {
        self.memory.delete(filter)
    }

    fn wipe(&self) -> BoxedFuture<'_, Result<(), DatabaseError>> {
        self.memory.wipe()
    }
}
