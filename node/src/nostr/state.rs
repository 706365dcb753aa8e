//! What the node holds from Nostr: the checks' state ([`Discovery`]), the trust inputs
//! ([`TrustInputs`]), the accepted releases, and counts of what was accepted and dropped.
//!
//! Every event, from a relay or from the node's own store, goes through the same steps:
//! [`event_from_json`] (size, NIP-01 id, BIP-340 signature), then [`Discovery::check`] for
//! archy's kind 30078 events or [`TrustInputs::add`] for follows and labels, then, for a
//! release, the envelope (fetched by hash, or read from the local file store) through
//! [`Discovery::accept`]. An event is written to the store only after it passed; a dropped event
//! is logged with its [`Rejected`] reason and counted under [`reason_code`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use archy_nostr::discovery::{Accepted, Checked, Discovery, PendingRelease};
use archy_nostr::event::{self, Announcement, Rejected, Release, bech32_npub, event_from_json};
use archy_nostr::nostr_sdk::{Event, EventId, JsonUtil as _, Kind, PublicKey, Timestamp};
use archy_nostr::social::{KIND_LABEL, TrustInputs, label_of};
use catalog::DidKey;
use catalog::envelope::VerifiedManifest;
use catalog::manifest::Limits;
use catalog::trust::Label;
use serde::{Deserialize, Serialize};

use super::fetch::local_envelope;
use super::store::EventStore;
use crate::config::NostrLimits;
use crate::data_dir::DataDir;
use crate::files::{FileError, FileStore};

/// Most drop messages kept for `status`.
const RECENT_DROPS: usize = 20;
/// Drops logged one by one in a session before only every thousandth is.
const QUIET_AFTER: u64 = 500;
/// Most verified versions of one app by one publisher the node keeps (newest first): older
/// ones leave the listing and the store, so a publisher posting version after version cannot
/// grow the node's store or slow its listings without bound.
pub const MAX_VERSIONS_KEPT: usize = 5;

/// A short, stable name for each reason an event is dropped (the keys of the counts
/// `archy-node status` shows).
pub fn reason_code(reason: &Rejected) -> &'static str {
    match reason {
        Rejected::TooLarge { .. } => "too_large",
        Rejected::Malformed(_) => "malformed",
        Rejected::BadNostrSignature(_) => "bad_nostr_signature",
        Rejected::NotArchy(_) => "not_archy",
        Rejected::BadShape(_) => "bad_shape",
        Rejected::FromTheFuture { .. } => "from_the_future",
        Rejected::Unbound { .. } => "unbound",
        Rejected::BadDidSignature { .. } => "bad_did_signature",
        Rejected::Replayed { .. } => "replayed",
        Rejected::Conflicting { .. } => "conflicting",
        Rejected::Revoked { .. } => "revoked",
        Rejected::FetchFailed { .. } => "fetch_failed",
        Rejected::BadEnvelope { .. } => "bad_envelope",
        Rejected::Overloaded(_) => "overloaded",
        Rejected::NotAdmitted(_) => "denied",
        Rejected::BadKeyStatement(_) => "bad_key_statement",
        Rejected::KeyRefused(_) => "key_refused",
        _ => "other",
    }
}

/// An app release the node accepted from Nostr.
#[derive(Debug, Clone)]
pub struct NostrRelease {
    /// The release event.
    pub event: Event,
    /// The verified manifest from its envelope.
    pub manifest: VerifiedManifest,
    /// BLAKE3 of the envelope (its file under `files/`).
    pub hash: blake3::Hash,
    /// Envelope size.
    pub size: u64,
}

impl NostrRelease {
    /// The publisher's DID.
    pub fn did(&self) -> &DidKey {
        self.manifest.publisher()
    }

    /// The Nostr key that announced it.
    pub fn npub(&self) -> PublicKey {
        self.event.pubkey
    }
}

/// A verified release whose envelope the node does not hold: its publisher was not admitted by
/// the install policy when it was read (so nothing was fetched), or its envelope is gone from
/// the file store. Only the newest version per publisher and app is held.
#[derive(Debug, Clone)]
pub struct HeldBack {
    /// The release event (binding and DID signature verified).
    pub event: Event,
    /// What it announces.
    pub release: Release,
    /// Its `title` tag, shown in listings (the envelope, which has the real title, is not held).
    pub title: String,
}

/// What [`NostrState::trim`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Labels, and the authors they were from.
    pub labels: (usize, usize),
    /// Nostr keys whose bindings went.
    pub bound_keys: usize,
    /// Held-back releases.
    pub held_back: usize,
    /// Follow lists.
    pub follow_lists: usize,
}

impl Trimmed {
    /// Whether anything went.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Counts of one session (a `sync` round, or a running daemon since it started).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    /// Events accepted, by type (`binding`, `release`, `revocation`, `follow_list`, `label`).
    pub accepted: BTreeMap<String, u64>,
    /// Events dropped, by [`reason_code`].
    pub dropped: BTreeMap<String, u64>,
    /// The last drop messages, newest last.
    pub recent_drops: VecDeque<String>,
}

impl Counts {
    fn accept(&mut self, what: &str) {
        *self.accepted.entry(what.to_owned()).or_default() += 1;
    }

    /// Total events dropped.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// Where an event came from, for logs.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A relay, by URL.
    Relay(&'a str),
    /// The node's own store (re-checked on load).
    Store,
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Relay(url) => write!(f, "relay {url}"),
            Self::Store => f.write_str("the node's store"),
        }
    }
}

/// The node's verified Nostr state.
pub struct NostrState {
    data: DataDir,
    store: EventStore,
    persist: bool,
    discovery: Discovery,
    inputs: TrustInputs,
    follow_events: HashMap<PublicKey, Event>,
    endorsements: HashMap<PublicKey, BTreeSet<PublicKey>>,
    releases: BTreeMap<(DidKey, String, semver::Version), NostrRelease>,
    held_back: BTreeMap<(DidKey, String), HeldBack>,
    /// The binding events held, by posting key.
    binding_events: HashMap<PublicKey, BTreeSet<EventId>>,
    /// The label events held, by author, with their `created_at`.
    label_events: HashMap<PublicKey, BTreeMap<EventId, Timestamp>>,
    /// JSON size of each follow list held.
    follow_bytes: HashMap<PublicKey, usize>,
    revocation_count: usize,
    /// Apps whose releases were dropped because the key statements refuse their publisher, with
    /// the rule (at most [`MAX_KEY_REFUSED_APPS`]), so an install of one says why.
    key_refused: BTreeMap<String, String>,
    counts: Counts,
}

/// Most apps remembered as refused by the key statements.
pub const MAX_KEY_REFUSED_APPS: usize = 1024;

fn key_refused_path(data: &DataDir) -> std::path::PathBuf {
    data.nostr_dir().join("key-refused.json")
}

impl std::fmt::Debug for NostrState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NostrState")
            .field("data", &self.data)
            .field("releases", &self.releases.len())
            .field("follow_lists", &self.inputs.follow_lists())
            .field("labels", &self.inputs.label_count())
            .finish()
    }
}

impl NostrState {
    fn empty(data: &DataDir) -> Self {
        Self {
            data: data.clone(),
            store: EventStore::new(data),
            persist: false,
            discovery: Discovery::new(),
            inputs: TrustInputs::new(),
            follow_events: HashMap::new(),
            endorsements: HashMap::new(),
            releases: BTreeMap::new(),
            held_back: BTreeMap::new(),
            binding_events: HashMap::new(),
            label_events: HashMap::new(),
            follow_bytes: HashMap::new(),
            revocation_count: 0,
            key_refused: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    /// Loads the stored events of `data`, running every check on them again: bindings first,
    /// then revocations, then releases in version order (their envelopes read from the local
    /// file store; a release whose envelope is not there is held back), then follows and labels.
    /// A stored event that no longer passes is left out and logged; nothing stored is taken on
    /// trust. New events are written from then on.
    pub fn load(data: &DataDir) -> Self {
        let mut state = Self::empty(data);
        state.key_refused = std::fs::read(key_refused_path(data))
            .ok()
            .and_then(|b| serde_json::from_slice::<BTreeMap<String, String>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .take(MAX_KEY_REFUSED_APPS)
            .map(|(app, why)| (printable(&app, 64), printable(&why, 400)))
            .collect();
        let mut events = Vec::new();
        for file in state.store.read_all() {
            let parsed = file.text.map_err(Rejected::Malformed).and_then(|t| event_from_json(&t));
            match parsed {
                Ok(e) => events.push(e),
                Err(reason) => state.drop_event(Origin::Store, Some(&file.name), &reason),
            }
        }
        // Bindings, key statements (which know the bound keys then), revocations, then releases
        // oldest version first, then the rest: the order in which none has to wait for another.
        let rank = |e: &Event| -> (u8, Option<semver::Version>, u64) {
            match event::parse(e) {
                Ok(Announcement::Binding(_)) => (0, None, e.created_at.as_secs()),
                Ok(Announcement::KeyStatement(_)) => (1, None, e.created_at.as_secs()),
                Ok(Announcement::Revocation(_)) => (2, None, e.created_at.as_secs()),
                Ok(Announcement::Release(r)) => (3, Some(r.version), e.created_at.as_secs()),
                Err(_) => (4, None, e.created_at.as_secs()),
            }
        };
        events.sort_by_cached_key(rank);
        for e in events {
            for pending in state.check(Origin::Store, e) {
                let hash = pending.release.hash.to_hex().to_string();
                match local_envelope(&data.files(), &pending.release.hash, pending.release.size) {
                    Ok(bytes) => state.accept(Origin::Store, pending, Ok(bytes)),
                    Err(e @ FileError::Damaged { .. }) => {
                        let reason = Rejected::BadEnvelope { hash, reason: e.to_string() };
                        state.drop_event(Origin::Store, Some(&pending.event.id.to_hex()), &reason);
                    }
                    // Held back when it was read, or its envelope is gone: the next read of the
                    // relays decides again whether to fetch it.
                    Err(_) => state.hold_back(pending),
                }
            }
        }
        for e in state.discovery.take_parked() {
            let reason = unbound_reason(&e);
            state.drop_event(Origin::Store, Some(&e.id.to_hex()), &reason);
        }
        state.persist = true;
        state.counts = Counts::default();
        state
    }

    /// The data dir.
    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// The checks' state (bindings, revocations).
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// Follows and labels.
    pub fn inputs(&self) -> &TrustInputs {
        &self.inputs
    }

    /// Counts since the state was loaded.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Replaces the counts (a state reloaded from the store keeps the counts of the read that
    /// preceded it).
    pub fn set_counts(&mut self, counts: Counts) {
        self.counts = counts;
    }

    /// Number of verified bindings held.
    pub fn binding_count(&self) -> usize {
        self.binding_events.values().map(BTreeSet::len).sum()
    }

    /// Releases held back (newest per publisher and app), not revoked.
    pub fn held_back(&self) -> impl Iterator<Item = &HeldBack> {
        self.held_back
            .values()
            .filter(|h| !self.discovery.is_revoked(&h.release.did, &h.release.app, &h.release.version))
    }

    /// Number of verified revocations held.
    pub fn revocation_count(&self) -> usize {
        self.revocation_count
    }

    /// The authors whose follow lists are held.
    pub fn follow_authors(&self) -> impl Iterator<Item = &PublicKey> {
        self.follow_events.keys()
    }

    /// The follows of `author`, if its list is held.
    pub fn follows_of(&self, author: &PublicKey) -> Vec<PublicKey> {
        self.follow_events.get(author).map(|e| e.tags.public_keys().copied().collect()).unwrap_or_default()
    }

    /// The keys `author` endorses with `archy` labels.
    pub fn endorsed_by(&self, author: &PublicKey) -> Vec<PublicKey> {
        self.endorsements.get(author).map(|k| k.iter().copied().collect()).unwrap_or_default()
    }

    /// Accepted releases that are not revoked, by publisher DID, app id and version.
    pub fn releases(&self) -> impl Iterator<Item = &NostrRelease> {
        self.releases.values().filter(|r| {
            let m = r.manifest.manifest();
            !self.discovery.is_revoked(r.did(), &m.id, &m.version)
        })
    }

    /// Records a dropped event: logged as a warning and counted by reason. The message quotes
    /// what a stranger sent, so it is cut short and its control characters escaped first.
    pub fn drop_event(&mut self, from: Origin<'_>, id: Option<&str>, reason: &Rejected) {
        let code = reason_code(reason);
        // A flood is counted, not logged event by event: after the first few hundred drops of a
        // session only every thousandth is logged.
        let total = self.counts.dropped_total();
        if total >= QUIET_AFTER && !total.is_multiple_of(1000) {
            *self.counts.dropped.entry(code.to_owned()).or_default() += 1;
            return;
        }
        let id = id.map_or_else(|| "?".to_owned(), |i| printable(i, 64));
        let reason = printable(&reason.to_string(), 400);
        tracing::warn!(from = %from, event = %id, reason = code, "dropped a Nostr event: {reason}");
        *self.counts.dropped.entry(code.to_owned()).or_default() += 1;
        if self.counts.recent_drops.len() == RECENT_DROPS {
            self.counts.recent_drops.pop_front();
        }
        self.counts.recent_drops.push_back(format!("{code}: {reason} (event {id} from {from})"));
    }

    /// Step 1 for raw relay JSON: the parsed event, or `None` when it was dropped.
    pub fn parse_raw(&mut self, from: Origin<'_>, json: &str) -> Option<Event> {
        match event_from_json(json) {
            Ok(e) => Some(e),
            Err(reason) => {
                let id = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(|s| s.chars().take(64).collect::<String>()));
                self.drop_event(from, id.as_deref(), &reason);
                None
            }
        }
    }

    /// Steps 1–4 for one event (and the events that waited for it, if it is a binding).
    /// Returns the releases that passed and wait for their envelopes.
    pub fn check(&mut self, from: Origin<'_>, event: Event) -> Vec<PendingRelease> {
        let mut pending = Vec::new();
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let kind = event.kind;
            if kind == Kind::ContactList || kind.as_u16() == KIND_LABEL {
                self.add_trust_input(from, &event);
                continue;
            }
            let already_bound = match event::parse(&event) {
                Ok(Announcement::Binding(b)) => self.discovery.is_bound(&event.pubkey, &b.did),
                Ok(Announcement::Revocation(r)) => self.discovery.is_revoked(&r.did, &r.app, &r.version),
                _ => false,
            };
            match self.discovery.check(&event) {
                Ok(Checked::Binding { did, npub, unparked }) => {
                    if !already_bound {
                        tracing::info!(%did, npub = %bech32_npub(&npub), "verified DID binding");
                        self.keep(&event, "binding");
                    }
                    self.binding_events.entry(npub).or_default().insert(event.id);
                    queue.extend(unparked);
                }
                Ok(Checked::Revocation { did, app, version }) => {
                    if !already_bound {
                        tracing::info!(%did, %app, %version, "verified revocation");
                        self.keep(&event, "revocation");
                        self.revocation_count += 1;
                    }
                }
                Ok(Checked::KeyStatement { statement, new }) => {
                    if new {
                        tracing::info!(kind = statement.kind(), did = %statement.subject(), "verified key statement");
                        self.keep(&event, "key_statement");
                        self.drop_refused(from);
                    }
                }
                Ok(Checked::Release(p)) => pending.push(p),
                Ok(Checked::Known | Checked::Parked(_)) => {}
                Ok(_) => {}
                Err(reason) => {
                    if let (Rejected::KeyRefused(why), Ok(Announcement::Release(r))) = (&reason, event::parse(&event)) {
                        self.note_key_refused(r.app.as_str(), why);
                    }
                    self.drop_event(from, Some(&event.id.to_hex()), &reason)
                }
            }
        }
        pending
    }

    fn add_trust_input(&mut self, from: Origin<'_>, event: &Event) {
        match self.inputs.add(event) {
            Ok(true) if event.kind == Kind::ContactList => {
                if let Some(old) = self.follow_events.insert(event.pubkey, event.clone())
                    && self.persist
                    && old.id != event.id
                {
                    self.store.remove(&old);
                }
                self.follow_bytes.insert(event.pubkey, event.as_json().len());
                self.keep(event, "follow_list");
            }
            Ok(true) => {
                if label_of(event) == Some(Label::Endorse) {
                    let targets = event.tags.public_keys().copied().take(archy_nostr::social::MAX_LABEL_TARGETS);
                    self.endorsements.entry(event.pubkey).or_default().extend(targets);
                }
                self.label_events.entry(event.pubkey).or_default().insert(event.id, event.created_at);
                self.keep(event, "label");
            }
            // An older follow list, or a label outside the `archy` namespace: nothing to hold.
            Ok(false) => {}
            Err(reason) => self.drop_event(from, Some(&event.id.to_hex()), &reason),
        }
    }

    fn keep(&mut self, event: &Event, what: &str) {
        self.counts.accept(what);
        if self.persist
            && let Err(e) = self.store.put(event)
        {
            tracing::error!(event = %event.id, "storing a verified Nostr event: {e:#}");
        }
    }

    /// Step 5: the envelope of a pending release (or why it could not be had). On success the
    /// envelope is stored in the file store, then the event.
    pub fn accept(&mut self, from: Origin<'_>, pending: PendingRelease, bytes: Result<Vec<u8>, Rejected>) {
        let id = pending.event.id.to_hex();
        let accepted = bytes.and_then(|b| {
            let accepted = self.discovery.accept(pending, &b, &Limits::default())?;
            Ok((accepted, b))
        });
        match accepted {
            Ok((Accepted { event, release, manifest, .. }, bytes)) => {
                if self.persist
                    && let Err(e) = store_envelope(&self.data.files(), &release.hash, &bytes)
                {
                    tracing::error!(event = %event.id, "storing an envelope: {e:#}");
                    return;
                }
                let m = manifest.manifest();
                tracing::info!(app = %m.id, version = %m.version, did = %m.publisher, "accepted a Nostr release");
                let key = (m.publisher.clone(), m.id.to_string(), m.version.clone());
                let held = (key.0.clone(), key.1.clone());
                if let Some(h) = self.held_back.get(&held)
                    && h.release.version <= key.2
                    && let Some(h) = self.held_back.remove(&held)
                    && self.persist
                    && h.event.id != event.id
                {
                    self.store.remove(&h.event);
                }
                self.keep(&event, "release");
                let (did, app) = (key.0.clone(), key.1.clone());
                self.releases.insert(key, NostrRelease { event, manifest, hash: release.hash, size: release.size });
                self.prune_versions(&did, &app);
            }
            Err(reason) => self.drop_event(from, Some(&id), &reason),
        }
    }

    /// Holds a verified release back without its envelope: the install policy does not admit
    /// its publisher (nothing is fetched for it), or its envelope is not in the file store. Only
    /// the newest version per publisher and app is held; [`Self::trim`] caps how many.
    pub fn hold_back(&mut self, pending: PendingRelease) {
        let PendingRelease { event, release } = pending;
        let key = (release.did.clone(), release.app.to_string());
        let fetched_newer = self
            .releases
            .range((key.0.clone(), key.1.clone(), release.version.clone())..)
            .any(|((d, a, _), _)| *d == key.0 && *a == key.1);
        let held_newer = self.held_back.get(&key).is_some_and(|h| h.release.version >= release.version);
        if fetched_newer || held_newer {
            return;
        }
        let title = event
            .tags
            .iter()
            .map(|t| t.as_slice())
            .find(|t| t.first().map(String::as_str) == Some("title"))
            .and_then(|t| t.get(1))
            .map_or_else(|| release.app.to_string(), |t| printable(t, 80));
        if let Some(old) = self.held_back.insert(key, HeldBack { event: event.clone(), release, title })
            && self.persist
        {
            self.store.remove(&old.event);
        }
        self.keep(&event, "held_back");
    }

    /// Whether any cap of `limits` is exceeded.
    pub fn over(&self, limits: &NostrLimits) -> bool {
        self.inputs.label_count() > limits.labels
            || self.binding_events.len() > limits.bound_keys
            || self.held_back.len() > limits.held_back
            || self.follow_bytes.values().sum::<usize>() > limits.follow_list_bytes()
    }

    /// Brings what is held under `limits`, the least-trusted data first: labels by author,
    /// bindings by Nostr key, held-back releases by the key that announced them, follow lists
    /// by author. `rank` is a key's trust (higher is kept longer; `f64::INFINITY` is never
    /// evicted); the keys bound to a publisher whose releases the node holds are never evicted
    /// either. Ties go oldest first. Evictions are counted as dropped (`evicted`) and logged.
    pub fn trim(&mut self, limits: &NostrLimits, rank: &dyn Fn(&PublicKey) -> f64) -> Trimmed {
        let holding: HashSet<PublicKey> =
            self.releases.values().flat_map(|r| self.discovery.npubs_of(r.did())).collect();
        let rank = |k: &PublicKey| if holding.contains(k) { f64::INFINITY } else { rank(k) };
        let mut out = Trimmed::default();

        // Labels, whole authors at a time.
        let count = self.inputs.label_count();
        if count > limits.labels {
            let per_author = self.inputs.labels_per_author();
            let newest = |a: &PublicKey| {
                self.label_events.get(a).and_then(|e| e.values().max().copied()).unwrap_or(Timestamp::zero())
            };
            let order = evict_order(per_author.into_iter().map(|(a, n)| (rank(&a), newest(&a), a, n)));
            let (gone, _) = take_until(order, count - limits.labels);
            if !gone.is_empty() {
                let removed = self.inputs.forget_labels_of(&gone);
                for author in &gone {
                    self.endorsements.remove(author);
                    for id in self.label_events.remove(author).unwrap_or_default().into_keys() {
                        self.store.remove_id(KIND_LABEL, &id);
                    }
                }
                out.labels = (removed, gone.len());
            }
        }

        // Bindings, whole keys at a time (their held-back releases go with them).
        if self.binding_events.len() > limits.bound_keys {
            let excess = self.binding_events.len() - limits.bound_keys;
            let order = evict_order(self.binding_events.keys().map(|k| (rank(k), Timestamp::zero(), *k, 1)));
            let (gone, _) = take_until(order, excess);
            if !gone.is_empty() {
                self.discovery.forget_bindings_of(&gone);
                for key in &gone {
                    for id in self.binding_events.remove(key).unwrap_or_default() {
                        self.store.remove_id(archy_nostr::event::KIND_APP_DATA, &id);
                    }
                }
                let orphaned: Vec<_> = self
                    .held_back
                    .iter()
                    .filter(|(_, h)| gone.contains(&h.event.pubkey))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in orphaned {
                    if let Some(h) = self.held_back.remove(&key) {
                        self.store.remove(&h.event);
                        out.held_back += 1;
                    }
                }
                out.bound_keys = gone.len();
            }
        }

        // Held-back releases.
        if self.held_back.len() > limits.held_back {
            let excess = self.held_back.len() - limits.held_back;
            let mut order: Vec<_> = self
                .held_back
                .iter()
                .map(|(k, h)| (rank(&h.event.pubkey), h.event.created_at, k.clone()))
                .filter(|(r, ..)| r.is_finite())
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (_, _, key) in order.into_iter().take(excess) {
                if let Some(h) = self.held_back.remove(&key) {
                    self.store.remove(&h.event);
                    out.held_back += 1;
                }
            }
        }

        // Follow lists, by bytes.
        let bytes: usize = self.follow_bytes.values().sum();
        if bytes > limits.follow_list_bytes() {
            let order =
                evict_order(self.follow_events.iter().map(|(k, e)| (rank(k), e.created_at, *k, self.follow_bytes[k])));
            let (gone, _) = take_until(order, bytes - limits.follow_list_bytes());
            for author in &gone {
                self.inputs.forget_follows_of(author);
                self.follow_bytes.remove(author);
                if let Some(e) = self.follow_events.remove(author) {
                    self.store.remove(&e);
                }
            }
            out.follow_lists = gone.len();
        }

        if !out.is_empty() {
            tracing::warn!(
                labels = out.labels.0,
                label_authors = out.labels.1,
                bound_keys = out.bound_keys,
                held_back = out.held_back,
                follow_lists = out.follow_lists,
                "the node's Nostr caps were reached: evicted the least-trusted data"
            );
            let n = out.labels.0 + out.bound_keys + out.held_back + out.follow_lists;
            *self.counts.dropped.entry("evicted".to_owned()).or_default() += n as u64;
        }
        out
    }

    /// Keeps the [`MAX_VERSIONS_KEPT`] newest versions of `app` by `did`, removing older ones
    /// from the listing and the store.
    fn prune_versions(&mut self, did: &DidKey, app: &str) {
        let versions: Vec<_> =
            self.releases.keys().filter(|(d, a, _)| d == did && a == app).map(|(_, _, v)| v.clone()).collect();
        // BTreeMap keys are in version order: the first ones are the oldest.
        for old in versions.iter().take(versions.len().saturating_sub(MAX_VERSIONS_KEPT)) {
            if let Some(release) = self.releases.remove(&(did.clone(), app.to_owned(), old.clone()))
                && self.persist
            {
                self.store.remove(&release.event);
            }
        }
    }

    /// Drops the releases (fetched or held back) of every DID the key statements now refuse:
    /// out of the listing and the store, each counted and logged with the rule.
    fn drop_refused(&mut self, from: Origin<'_>) {
        let refused = |d: &DidKey| self.discovery.check_standing(d).err();
        let releases: Vec<_> =
            self.releases.iter().filter_map(|(k, r)| Some((k.clone(), r.event.clone(), refused(r.did())?))).collect();
        let held: Vec<_> = self
            .held_back
            .iter()
            .filter_map(|(k, h)| Some((k.clone(), h.event.clone(), refused(&h.release.did)?)))
            .collect();
        for (key, event, reason) in releases {
            self.releases.remove(&key);
            self.note_key_refused(&key.1, &reason.to_string());
            self.forget(from, &event, &reason);
        }
        for (key, event, reason) in held {
            self.held_back.remove(&key);
            self.note_key_refused(&key.1, &reason.to_string());
            self.forget(from, &event, &reason);
        }
    }

    /// Remembers why `app`'s releases were dropped, in `<data>/nostr/key-refused.json` too: the
    /// dropped events leave the store, and an install of the app later still names the rule.
    fn note_key_refused(&mut self, app: &str, why: &str) {
        let why = why.trim_start_matches("refused: ").to_owned();
        if self.key_refused.get(app) == Some(&why)
            || (self.key_refused.len() >= MAX_KEY_REFUSED_APPS && !self.key_refused.contains_key(app))
        {
            return;
        }
        self.key_refused.insert(app.to_owned(), why);
        if self.persist {
            let path = key_refused_path(&self.data);
            let written = serde_json::to_vec_pretty(&self.key_refused)
                .map_err(anyhow::Error::new)
                .and_then(|bytes| Ok(catalog::repo::write_atomic(&path, &bytes)?));
            if let Err(e) = written {
                tracing::error!("writing {}: {e:#}", path.display());
            }
        }
    }

    /// Why releases of `app` were dropped by the key statements, if they were.
    pub fn key_refused(&self, app: &str) -> Option<&str> {
        self.key_refused.get(app).map(String::as_str)
    }

    fn forget(&mut self, from: Origin<'_>, event: &Event, reason: &Rejected) {
        if self.persist {
            self.store.remove(event);
        }
        self.drop_event(from, Some(&event.id.to_hex()), reason);
    }

    /// The Nostr keys bound to `did` or to any key whose apps it continues (its predecessors by
    /// succession, or a revoked key that named it): a succession carries the binding over.
    pub fn lineage_npubs(&self, did: &DidKey) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> =
            self.discovery.lineage().lineage_of(did).iter().flat_map(|d| self.discovery.npubs_of(d)).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// How many publisher key statements are held.
    pub fn key_statement_count(&self) -> usize {
        self.discovery.lineage().len()
    }

    /// Ends a full read: events still waiting for a binding are dropped as unbound.
    pub fn end_of_read(&mut self, from: Origin<'_>) {
        for e in self.discovery.take_parked() {
            let reason = unbound_reason(&e);
            self.drop_event(from, Some(&e.id.to_hex()), &reason);
        }
    }
}

/// Candidates for eviction, `(rank, age, key, size)`, least trusted and oldest first; keys
/// ranked `f64::INFINITY` are never candidates.
fn evict_order(items: impl Iterator<Item = (f64, Timestamp, PublicKey, usize)>) -> Vec<(PublicKey, usize)> {
    let mut v: Vec<_> = items.filter(|(r, ..)| r.is_finite()).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    v.into_iter().map(|(_, _, k, n)| (k, n)).collect()
}

/// The first keys of `order` whose sizes add up to at least `excess`, and that sum.
fn take_until(order: Vec<(PublicKey, usize)>, excess: usize) -> (HashSet<PublicKey>, usize) {
    let mut gone = HashSet::new();
    let mut freed = 0;
    for (key, n) in order {
        if freed >= excess {
            break;
        }
        gone.insert(key);
        freed += n;
    }
    (gone, freed)
}

/// `text` cut to `max` characters, control characters escaped (for logs and `status`).
pub fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// Writes verified envelope bytes to `files/<blake3>`, replacing a file there that no longer
/// holds them (a damaged store repairs itself on the next read).
fn store_envelope(files: &FileStore, hash: &blake3::Hash, bytes: &[u8]) -> anyhow::Result<()> {
    // Reading re-hashes and removes a damaged file, so `put` writes the bytes afresh.
    if local_envelope(files, hash, bytes.len() as u64).is_err() {
        files.put(hash.to_hex().as_str(), bytes)?;
    }
    Ok(())
}

fn unbound_reason(event: &Event) -> Rejected {
    let did = match event::parse(event) {
        Ok(Announcement::Release(r)) => r.did.to_string(),
        Ok(Announcement::Revocation(r)) => r.did.to_string(),
        _ => "?".into(),
    };
    Rejected::Unbound { did, npub: bech32_npub(&event.pubkey) }
}
