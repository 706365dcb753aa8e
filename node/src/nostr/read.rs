//! Reading the configured relays: once per `archy-node sync` (and per sync interval of
//! `archy-node run`), and as a live subscription in `run`.
//!
//! A full read:
//! 1. on each relay, archy's kind 30078 events (`#t` in `archy-app`, `archy-bind`,
//!    `archy-revoke`) and NIP-32 labels in the `archy` namespace (kind 1985, `#L archy`), until
//!    `EOSE`;
//! 2. follow lists (kind 3) by author, breadth-first from the trust seeds along follows and
//!    endorsements, [`MAX_FOLLOW_DEPTH`] rounds and at most [`MAX_FOLLOW_AUTHORS`] authors: only
//!    keys that trust can reach matter to a score, so the follow lists of everyone else are
//!    never asked for;
//! 3. the scores, and the install policy's verdict on each publisher with a release that passed
//!    ([`super::admission`]): the envelopes of admitted publishers are fetched by hash (at most
//!    [`MAX_FETCHES_PER_READ`] per relay, [`FETCH_CONCURRENCY`] at a time); the others' releases
//!    are held back without a fetch, and a denied publisher's are dropped;
//! 4. events still waiting for a binding are dropped as unbound;
//! 5. what is held is brought under `[nostr.limits]`, the least-trusted data first.
//!
//! One relay hands over at most `nostr.limits.events_per_relay` events per full read; further
//! events are dropped as `overloaded`.
//!
//! The live subscription asks for the same events from a minute before it (re)connects, plus
//! the follow lists of the authors held, and checks each event as it arrives (at most
//! `events_per_relay` per relay and hour), with the verdicts and scores of at most a minute ago.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use archy_nostr::discovery::PendingRelease;
use archy_nostr::event::{Rejected, TOPIC_APP, TOPIC_BIND, TOPIC_KEY, TOPIC_REVOKE};
use archy_nostr::nostr_sdk::{Kind, PublicKey, Timestamp};
use archy_nostr::social::{KIND_LABEL, LABEL_NAMESPACE};
use chrono::Utc;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::admission::Admission;
use super::fetch::Fetcher;
use super::relay::{Connection, Frame, QueryEnd, RelayError};
use super::state::{Counts, NostrState, Origin};
use crate::config::Config;
use crate::data_dir::DataDir;

/// Most events one query asks a relay for.
pub const QUERY_LIMIT: usize = 10_000;
/// Rounds of the follow-list search from the seeds.
pub const MAX_FOLLOW_DEPTH: usize = 4;
/// Most authors whose follow lists a read asks for.
pub const MAX_FOLLOW_AUTHORS: usize = 10_000;
/// Authors per follow-list query.
const AUTHORS_PER_QUERY: usize = 500;
/// Most envelopes fetched from one relay's answer in one read (or one live batch); further
/// releases are dropped as overloaded and picked up by a later read.
pub const MAX_FETCHES_PER_READ: usize = 256;
/// Envelope fetches at a time.
pub const FETCH_CONCURRENCY: usize = 4;
/// How old the live subscription's verdicts and scores may get before they are computed again
/// (and the caps applied).
const ADMISSION_MAX_AGE: Duration = Duration::from_secs(60);
/// The live subscription's window for `nostr.limits.events_per_relay`.
const LIVE_BUDGET_WINDOW: Duration = Duration::from_secs(3600);

/// What one relay gave in a read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RelayReport {
    /// The relay.
    pub url: String,
    /// Frames with events received.
    pub events: u64,
    /// Why the relay (or a query on it) failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the node holds after a read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Held {
    /// Verified DID bindings.
    pub bindings: usize,
    /// Accepted, unrevoked app releases.
    pub releases: usize,
    /// Releases held back without their envelope (the policy does not admit the publisher).
    #[serde(default)]
    pub held_back: usize,
    /// Verified revocations.
    pub revocations: usize,
    /// Follow lists.
    pub follow_lists: usize,
    /// `archy` labels.
    pub labels: usize,
}

impl Held {
    /// The counts of `state`.
    pub fn of(state: &NostrState) -> Self {
        Self {
            bindings: state.binding_count(),
            releases: state.releases().count(),
            held_back: state.held_back().count(),
            revocations: state.revocation_count(),
            follow_lists: state.inputs().follow_lists(),
            labels: state.inputs().label_count(),
        }
    }
}

/// One full read of the relays (also `<data>/nostr/status.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReadReport {
    /// When it ran.
    pub at: Option<chrono::DateTime<Utc>>,
    /// Each relay.
    pub relays: Vec<RelayReport>,
    /// Accepted and dropped events.
    pub counts: Counts,
    /// What the node holds afterwards.
    pub held: Held,
}

impl ReadReport {
    /// The file of the last full read.
    pub fn path(data: &DataDir) -> PathBuf {
        data.nostr_dir().join("status.json")
    }

    /// Reads the last full read's report.
    pub fn last(data: &DataDir) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(Self::path(data)).ok()?).ok()
    }
}

/// The live subscription's counts since `run` started (`<data>/nostr/live.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LiveReport {
    /// When the daemon started.
    pub since: Option<chrono::DateTime<Utc>>,
    /// When this was written.
    pub updated: Option<chrono::DateTime<Utc>>,
    /// Relays currently subscribed to.
    pub connected: Vec<String>,
    /// Accepted and dropped events.
    pub counts: Counts,
}

impl LiveReport {
    /// The file.
    pub fn path(data: &DataDir) -> PathBuf {
        data.nostr_dir().join("live.json")
    }

    /// Reads it.
    pub fn last(data: &DataDir) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(Self::path(data)).ok()?).ok()
    }
}

/// The configured relay URLs, each checked.
pub fn relay_urls(config: &Config) -> anyhow::Result<Vec<String>> {
    config
        .nostr
        .relays
        .iter()
        .enumerate()
        .map(|(i, url)| {
            super::relay::check_url(url).with_context(|| format!("config.toml: nostr.relays[{i}]"))?;
            Ok(url.trim_end_matches('/').to_owned())
        })
        .collect()
}

/// Releases and revocations, and bindings and key statements too when `since` is given (the
/// live subscription; a full read asks for those first, with [`binding_filter`]).
fn archy_filter(since: Option<Timestamp>) -> serde_json::Value {
    let topics = if since.is_some() {
        vec![TOPIC_APP, TOPIC_BIND, TOPIC_KEY, TOPIC_REVOKE]
    } else {
        vec![TOPIC_APP, TOPIC_REVOKE]
    };
    let mut f = serde_json::json!({
        "kinds": [archy_nostr::event::KIND_APP_DATA],
        "#t": topics,
        "limit": QUERY_LIMIT,
    });
    if let Some(since) = since {
        f["since"] = since.as_secs().into();
    }
    f
}

/// Bindings and publisher key statements, read before everything else in a full read: then a
/// release whose binding is on the relay never waits for it, strangers' unbound events filling
/// the waiting room cannot push an honest release out, and no envelope of a revoked key is
/// fetched.
fn binding_filter() -> serde_json::Value {
    serde_json::json!({ "kinds": [archy_nostr::event::KIND_APP_DATA], "#t": [TOPIC_BIND, TOPIC_KEY], "limit": QUERY_LIMIT })
}

fn label_filter(since: Option<Timestamp>) -> serde_json::Value {
    let mut f = serde_json::json!({ "kinds": [KIND_LABEL], "#L": [LABEL_NAMESPACE], "limit": QUERY_LIMIT });
    if let Some(since) = since {
        f["since"] = since.as_secs().into();
    }
    f
}

fn follows_filter(authors: &[PublicKey], since: Option<Timestamp>) -> serde_json::Value {
    let hex: Vec<String> = authors.iter().map(PublicKey::to_hex).collect();
    let mut f =
        serde_json::json!({ "kinds": [Kind::ContactList.as_u16()], "authors": hex, "limit": authors.len() * 2 });
    if let Some(since) = since {
        f["since"] = since.as_secs().into();
    }
    f
}

/// Held by a full read (`<data>/nostr/lock`), so two reads of one data dir do not run at once.
struct ReadLock {
    _file: std::fs::File,
}

impl ReadLock {
    async fn acquire(data: &DataDir) -> anyhow::Result<Self> {
        let dir = data.nostr_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file)).await??;
        Ok(Self { _file: file })
    }
}

/// What a query asked for: events outside it are ignored (a relay cannot push, say, the follow
/// lists of keys trust never reaches).
#[derive(Clone, Copy)]
struct Asked<'a> {
    /// Authors whose follow lists were asked for.
    follows_of: &'a HashSet<PublicKey>,
    /// Whether only follow lists were asked for.
    only_follows: bool,
    /// Most events taken from this relay (per full read, or per hour live).
    budget: usize,
}

/// Hands a frame of a query to the state: events through the checks, anything else counted
/// as malformed.
fn take_frame(
    state: &mut NostrState,
    url: &str,
    frame: Frame,
    asked: Asked<'_>,
    pending: &mut Vec<PendingRelease>,
    report: &mut RelayReport,
) {
    match frame {
        Frame::Event { json, .. } => {
            report.events += 1;
            if report.events > asked.budget as u64 {
                let reason = Rejected::Overloaded(format!(
                    "relay {url} already handed over {} events (nostr.limits.events_per_relay)",
                    asked.budget
                ));
                state.drop_event(Origin::Relay(url), None, &reason);
                return;
            }
            let Some(event) = state.parse_raw(Origin::Relay(url), &json) else { return };
            let is_follows = event.kind == Kind::ContactList;
            if (is_follows && !asked.follows_of.contains(&event.pubkey)) || (!is_follows && asked.only_follows) {
                tracing::debug!(relay = url, event = %event.id, "ignoring an event the node did not ask for");
                return;
            }
            pending.extend(state.check(Origin::Relay(url), event));
        }
        Frame::Garbage(reason) => state.drop_event(Origin::Relay(url), None, &Rejected::Malformed(reason)),
        _ => {}
    }
}

/// Fetches the envelopes of the releases in `pending` whose publisher `admission` admits and
/// hands them to the state, oldest version first; the others are held back without a fetch
/// (refused by `min_score`) or dropped (refused by `deny`).
async fn fetch_and_accept(
    state: &tokio::sync::Mutex<NostrState>,
    from: &str,
    mut pending: Vec<PendingRelease>,
    fetcher: &Fetcher,
    admission: &Admission,
) {
    let mut seen = HashSet::new();
    pending.retain(|p| seen.insert(p.event.id));
    // Only the newest pending version of each (publisher, app) is fetched: versions only move
    // forward, so one publisher posting many versions costs one fetch, not many.
    pending.sort_by(|a, b| b.release.version.cmp(&a.release.version));
    let mut newest = HashSet::new();
    let (keep, superseded): (Vec<_>, Vec<_>) =
        pending.into_iter().partition(|p| newest.insert((p.release.did.clone(), p.release.app.clone())));
    pending = keep;
    if !superseded.is_empty() {
        let mut s = state.lock().await;
        for p in superseded {
            let reason = Rejected::Overloaded(format!(
                "{} {} by {} is not fetched: a newer version of it is being fetched",
                p.release.app, p.release.version, p.release.did
            ));
            s.drop_event(Origin::Relay(from), Some(&p.event.id.to_hex()), &reason);
        }
    }
    {
        // Rule: only publishers the install policy admits make the node fetch anything.
        let mut s = state.lock().await;
        let (admitted, refused): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|p| admission.admits(&s, &p.release.did).is_ok());
        pending = admitted;
        for p in refused {
            match admission.admits(&s, &p.release.did) {
                Err(refusal) if refusal.rule == "min_score" => s.hold_back(p),
                Err(refusal) => {
                    let reason = Rejected::NotAdmitted(format!("{refusal}; not fetched"));
                    s.drop_event(Origin::Relay(from), Some(&p.event.id.to_hex()), &reason);
                }
                Ok(_) => {}
            }
        }
    }
    pending.sort_by(|a, b| a.release.version.cmp(&b.release.version));
    if pending.len() > MAX_FETCHES_PER_READ {
        let mut s = state.lock().await;
        for p in pending.drain(MAX_FETCHES_PER_READ..) {
            let reason = Rejected::Overloaded(format!(
                "more than {MAX_FETCHES_PER_READ} envelopes to fetch in one read; {} {} waits for the next",
                p.release.app, p.release.version
            ));
            s.drop_event(Origin::Relay(from), Some(&p.event.id.to_hex()), &reason);
        }
    }
    let limit = fetcher.phase_limit();
    let deadline = tokio::time::Instant::now() + limit;
    let mut fetched: Vec<_> = futures_util::stream::iter(pending)
        .map(|p| async move {
            let bytes = match tokio::time::timeout_at(deadline, fetcher.fetch(&p.release)).await {
                Ok(bytes) => bytes,
                Err(_) => Err(Rejected::FetchFailed {
                    hash: p.release.hash.to_hex().to_string(),
                    reason: format!("the read's envelope fetches ran out of time ({} s in all)", limit.as_secs()),
                }),
            };
            (p, bytes)
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .collect()
        .await;
    fetched.sort_by(|a, b| a.0.release.version.cmp(&b.0.release.version));
    let mut s = state.lock().await;
    for (p, bytes) in fetched {
        s.accept(Origin::Relay(from), p, bytes);
    }
}

/// Runs one full read of every configured relay into `state` and writes
/// `<data>/nostr/status.json`. `None` when no relay is configured. `state` is locked while a
/// relay answers a query (the daemon passes a fresh state, so its live subscription never
/// waits for a full read).
pub async fn read_relays(
    data: &DataDir,
    config: &Config,
    state: &tokio::sync::Mutex<NostrState>,
) -> anyhow::Result<Option<ReadReport>> {
    let urls = relay_urls(config)?;
    if urls.is_empty() {
        return Ok(None);
    }
    let _lock = ReadLock::acquire(data).await?;
    let timeout = Duration::from_secs(config.nostr.timeout_secs.max(1));
    let fetcher = Fetcher::new(data.files(), config, timeout);
    let counts_before = state.lock().await.counts().clone();
    let mut report = ReadReport { at: Some(Utc::now()), ..ReadReport::default() };
    let budget = config.nostr.limits.events_per_relay;

    // 1. archy's events and labels.
    let none = HashSet::new();
    let mut conns = Vec::new();
    let mut releases = Vec::new();
    for url in &urls {
        let mut relay = RelayReport { url: url.clone(), ..RelayReport::default() };
        match Connection::connect(url, timeout).await {
            Ok(mut conn) => {
                // Each frame is checked as it arrives, so a relay's answer is never held whole.
                let filters = [archy_filter(None), label_filter(None)];
                let mut pending = Vec::new();
                let end = {
                    let mut s = state.lock().await;
                    let asked = Asked { follows_of: &none, only_follows: false, budget };
                    match conn
                        .query("bindings", &[binding_filter()], timeout, |f| {
                            take_frame(&mut s, url, f, asked, &mut pending, &mut relay);
                        })
                        .await
                    {
                        Ok(_) => {
                            conn.query("archy", &filters, timeout, |f| {
                                take_frame(&mut s, url, f, asked, &mut pending, &mut relay);
                            })
                            .await
                        }
                        Err(e) => Err(e),
                    }
                };
                let usable = end.is_ok();
                note_end(&mut relay, end);
                releases.push((url.clone(), pending));
                if usable {
                    conns.push((conn, report.relays.len()));
                }
            }
            Err(e) => {
                tracing::warn!("{e}");
                relay.error = Some(e.to_string());
            }
        }
        report.relays.push(relay);
    }

    // 2. follow lists, breadth-first from the seeds.
    let seeds = {
        let s = state.lock().await;
        let origin = super::trust::origin_publishers(data).unwrap_or_else(|e| {
            tracing::warn!("the origin's publishers are not seeds this round: {e:#}");
            Vec::new()
        });
        super::trust::seeds(config, &s, &origin)?
    };
    let mut visited: HashSet<PublicKey> = HashSet::new();
    let mut frontier: Vec<PublicKey> = seeds.iter().map(|s| s.key).collect();
    for _ in 0..MAX_FOLLOW_DEPTH {
        frontier.retain(|k| visited.insert(*k));
        frontier.truncate(MAX_FOLLOW_AUTHORS.saturating_sub(visited.len() - frontier.len()));
        if frontier.is_empty() || conns.is_empty() {
            break;
        }
        for chunk in frontier.chunks(AUTHORS_PER_QUERY) {
            let wanted: HashSet<PublicKey> = chunk.iter().copied().collect();
            for (conn, index) in &mut conns {
                let url = conn.url().to_owned();
                let relay = &mut report.relays[*index];
                let mut s = state.lock().await;
                let mut pending = Vec::new();
                let end = conn
                    .query("follows", &[follows_filter(chunk, None)], timeout, |f| {
                        let asked = Asked { follows_of: &wanted, only_follows: true, budget };
                        take_frame(&mut s, &url, f, asked, &mut pending, relay);
                    })
                    .await;
                note_end(relay, end);
            }
        }
        let s = state.lock().await;
        let next: Vec<PublicKey> =
            frontier.iter().flat_map(|k| s.follows_of(k).into_iter().chain(s.endorsed_by(k))).collect();
        frontier = next;
    }
    for (conn, _) in conns {
        conn.close().await;
    }

    // 3. the envelopes of admitted publishers.
    let admission = {
        let s = state.lock().await;
        Admission::compute(data, config, &s)?
    };
    for (url, pending) in releases {
        fetch_and_accept(state, &url, pending, &fetcher, &admission).await;
    }
    fetcher.close().await;

    // 4. what still waits for a binding; 5. the caps.
    let mut s = state.lock().await;
    s.end_of_read(Origin::Relay("(end of read)"));
    s.trim(&config.nostr.limits, &|k| admission.rank(k));
    report.counts = diff(&counts_before, s.counts());
    report.held = Held::of(&s);
    catalog::repo::write_atomic(&ReadReport::path(data), &serde_json::to_vec_pretty(&report)?)?;
    Ok(Some(report))
}

fn note_end(relay: &mut RelayReport, end: Result<QueryEnd, RelayError>) {
    match end {
        Ok(QueryEnd::Eose) => {}
        Ok(QueryEnd::Closed(message)) => {
            tracing::warn!(relay = %relay.url, "the relay closed the query: {message}");
            relay.error.get_or_insert(format!("closed the query: {message}"));
        }
        Ok(QueryEnd::Truncated) => {
            tracing::warn!(relay = %relay.url, "stopped reading after {} events", super::relay::MAX_EVENTS_PER_QUERY);
        }
        Err(e) => {
            tracing::warn!("{e}");
            relay.error.get_or_insert(e.to_string());
        }
    }
}

/// The counts added since `before`.
fn diff(before: &Counts, after: &Counts) -> Counts {
    let sub = |a: &std::collections::BTreeMap<String, u64>, b: &std::collections::BTreeMap<String, u64>| {
        a.iter()
            .filter_map(|(k, v)| {
                let d = v - b.get(k).copied().unwrap_or(0).min(*v);
                (d > 0).then(|| (k.clone(), d))
            })
            .collect()
    };
    Counts {
        accepted: sub(&after.accepted, &before.accepted),
        dropped: sub(&after.dropped, &before.dropped),
        recent_drops: after.recent_drops.clone(),
    }
}

/// One full read for `archy-node sync`: loads the stored events (checked again), reads the
/// relays, writes what passed. `None` when no relay is configured.
pub async fn sync_relays(data: &DataDir, config: &Config) -> anyhow::Result<Option<ReadReport>> {
    if relay_urls(config)?.is_empty() {
        return Ok(None);
    }
    let d = data.clone();
    let state = tokio::task::spawn_blocking(move || NostrState::load(&d)).await?;
    let state = tokio::sync::Mutex::new(state);
    read_relays(data, config, &state).await
}

/// The daemon's Nostr side: the state shared by the live subscriptions and the periodic full
/// reads.
pub struct NostrDaemon {
    data: DataDir,
    state: Arc<tokio::sync::Mutex<NostrState>>,
    /// The verdicts and scores the live subscription uses, and when they were computed.
    admission: tokio::sync::Mutex<Option<(Instant, Arc<Admission>)>>,
    live: tokio::sync::Mutex<LiveReport>,
    connected: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for NostrDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NostrDaemon").field("data", &self.data).finish()
    }
}

impl NostrDaemon {
    /// Loads the stored events (checked again).
    pub async fn open(data: &DataDir) -> anyhow::Result<Arc<Self>> {
        let d = data.clone();
        let state = tokio::task::spawn_blocking(move || NostrState::load(&d)).await?;
        let live = LiveReport { since: Some(Utc::now()), ..LiveReport::default() };
        Ok(Arc::new(Self {
            data: data.clone(),
            state: Arc::new(tokio::sync::Mutex::new(state)),
            admission: tokio::sync::Mutex::new(None),
            live: tokio::sync::Mutex::new(live),
            connected: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// A full read: the stored events are loaded and checked again (so what `archy-node sync`
    /// stored meanwhile is seen), the relays read, and the result replaces the live state.
    pub async fn full_read(&self, config: &Config) -> anyhow::Result<Option<ReadReport>> {
        let d = self.data.clone();
        let fresh = tokio::task::spawn_blocking(move || NostrState::load(&d)).await?;
        let fresh = tokio::sync::Mutex::new(fresh);
        let report = read_relays(&self.data, config, &fresh).await?;
        let counts = fresh.into_inner().counts().clone();
        let mut state = self.state.lock().await;
        // Whatever waited for a binding in the live state is dropped with its reason.
        state.end_of_read(Origin::Relay("(live)"));
        self.merge_counts(&state).await;
        // The live subscription may have accepted (and stored) events while the read ran: the
        // store holds both, so the new state is loaded from it, checked again, under the lock.
        let d = self.data.clone();
        let mut merged = tokio::task::spawn_blocking(move || NostrState::load(&d)).await?;
        merged.set_counts(counts);
        *state = merged;
        drop(state);
        *self.admission.lock().await = None;
        Ok(report)
    }

    /// The verdicts and scores of at most [`ADMISSION_MAX_AGE`] ago; when they are older they
    /// are computed again, and the caps applied with them if the state is over one.
    async fn admission(&self, config: &Config) -> anyhow::Result<Arc<Admission>> {
        let mut cached = self.admission.lock().await;
        if let Some((at, a)) = cached.as_ref()
            && at.elapsed() < ADMISSION_MAX_AGE
        {
            return Ok(a.clone());
        }
        let mut state = self.state.lock().await;
        let admission = Arc::new(Admission::compute(&self.data, config, &state)?);
        if state.over(&config.nostr.limits) {
            state.trim(&config.nostr.limits, &|k| admission.rank(k));
        }
        *cached = Some((Instant::now(), admission.clone()));
        Ok(admission)
    }

    async fn merge_counts(&self, state: &NostrState) {
        let mut live = self.live.lock().await;
        let c = state.counts();
        for (k, v) in &c.accepted {
            *live.counts.accepted.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &c.dropped {
            *live.counts.dropped.entry(k.clone()).or_default() += v;
        }
        live.counts.recent_drops = c.recent_drops.clone();
    }

    async fn write_live(&self) {
        let state = self.state.lock().await;
        let mut live = self.live.lock().await.clone();
        // The live state's counts since the last full read, added to those merged before.
        for (k, v) in &state.counts().accepted {
            *live.counts.accepted.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &state.counts().dropped {
            *live.counts.dropped.entry(k.clone()).or_default() += v;
        }
        if !state.counts().recent_drops.is_empty() {
            live.counts.recent_drops = state.counts().recent_drops.clone();
        }
        drop(state);
        live.updated = Some(Utc::now());
        live.connected = self.connected.lock().map(|c| c.clone()).unwrap_or_default();
        if let Ok(bytes) = serde_json::to_vec_pretty(&live) {
            let _ = catalog::repo::write_atomic(&LiveReport::path(&self.data), &bytes);
        }
    }

    fn set_connected(&self, url: &str, up: bool) {
        if let Ok(mut c) = self.connected.lock() {
            c.retain(|u| u != url);
            if up {
                c.push(url.to_owned());
            }
        }
    }

    /// Subscribes to every configured relay and checks events as they arrive, reconnecting
    /// with a growing pause (1 s to 60 s) when a relay goes away. Runs until aborted.
    /// Relays, timeouts and trust seeds are those of `config`.
    pub async fn live(self: Arc<Self>, config: Config) -> anyhow::Result<()> {
        let urls = relay_urls(&config)?;
        let timeout = Duration::from_secs(config.nostr.timeout_secs.max(1));
        let config = Arc::new(config);
        let tasks: Vec<_> = urls
            .into_iter()
            .map(|url| {
                let (me, config) = (self.clone(), config.clone());
                tokio::spawn(async move { me.live_relay(url, timeout, &config).await })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    }

    async fn live_relay(&self, url: String, timeout: Duration, config: &Config) {
        let fetcher = Fetcher::new(self.data.files(), config, timeout);
        let mut pause = Duration::from_secs(1);
        loop {
            let started = Instant::now();
            match self.live_session(&url, timeout, &fetcher, config).await {
                Ok(()) => tracing::info!(relay = %url, "the relay closed the subscription; reconnecting"),
                Err(e) => tracing::warn!("live subscription: {e}"),
            }
            self.set_connected(&url, false);
            self.write_live().await;
            // A subscription that lasted a while starts the back-off again.
            if started.elapsed() > Duration::from_secs(300) {
                pause = Duration::from_secs(1);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(60));
        }
    }

    async fn live_session(
        &self,
        url: &str,
        timeout: Duration,
        fetcher: &Fetcher,
        config: &Config,
    ) -> Result<(), RelayError> {
        let mut conn = Connection::connect(url, timeout).await?;
        let since = Timestamp::from_secs(Timestamp::now().as_secs().saturating_sub(60));
        // Follow lists of the seeds and of the authors held (the keys trust reached at the last
        // full read); anyone else's are not asked for.
        let authors: Vec<PublicKey> = {
            let s = self.state.lock().await;
            let origin = super::trust::origin_publishers(&self.data).unwrap_or_default();
            let seeds = super::trust::seeds(config, &s, &origin).unwrap_or_default();
            let mut authors: Vec<PublicKey> = seeds.iter().map(|s| s.key).collect();
            authors.extend(s.follow_authors().copied());
            authors.sort();
            authors.dedup();
            authors.truncate(1000);
            authors
        };
        let mut filters = vec![archy_filter(Some(since)), label_filter(Some(since))];
        if !authors.is_empty() {
            filters.push(follows_filter(&authors, Some(since)));
        }
        let wanted: HashSet<PublicKey> = authors.into_iter().collect();
        conn.subscribe("live", &filters).await?;
        self.set_connected(url, true);
        tracing::info!(relay = url, "live subscription");
        let mut last_write = Instant::now();
        let mut dirty = true;
        // Events taken from this relay in the current window.
        let mut window = (Instant::now(), RelayReport::default());
        loop {
            let frame = match conn.next_frame(Duration::from_secs(1)).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                // Quiet relays are normal; write the counts while nothing happens.
                Err(RelayError::Timeout { .. }) => {
                    if dirty {
                        self.write_live().await;
                        dirty = false;
                        last_write = Instant::now();
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Frame::Closed(sub, message) = &frame
                && sub == "live"
            {
                tracing::warn!(relay = url, "the relay closed the live subscription: {message}");
                return Ok(());
            }
            let mut pending = Vec::new();
            if window.0.elapsed() > LIVE_BUDGET_WINDOW {
                window = (Instant::now(), RelayReport::default());
            }
            {
                let mut s = self.state.lock().await;
                let budget = config.nostr.limits.events_per_relay;
                let asked = Asked { follows_of: &wanted, only_follows: false, budget };
                take_frame(&mut s, url, frame, asked, &mut pending, &mut window.1);
            }
            if pending.is_empty() {
                // Keeps the verdicts fresh and the caps applied while events arrive.
                if let Err(e) = self.admission(config).await {
                    tracing::warn!("live subscription: {e:#}");
                }
            } else {
                match self.admission(config).await {
                    Ok(admission) => fetch_and_accept(&self.state, url, pending, fetcher, &admission).await,
                    Err(e) => tracing::warn!("live subscription: releases not fetched: {e:#}"),
                }
            }
            dirty = true;
            if last_write.elapsed() > Duration::from_secs(1) {
                self.write_live().await;
                dirty = false;
                last_write = Instant::now();
            }
        }
    }
}
