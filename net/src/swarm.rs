//! The swarm of one catalog: nodes find each other on an iroh-gossip topic and say what they hold
//! in signed announcements ([`crate::announce`]); each keeps a bounded table of providers.
//!
//! - **Topic.** [`topic_for_root`]: derived from the root role's keys in the trusted root, so every
//!   node that trusts the same catalog is in the same swarm, and nobody else's.
//! - **Bootstrap.** The origin's iroh endpoint (which joins the topic) and any configured peers,
//!   plus the peers the node saw last time (the table is kept on disk).
//! - **What is accepted** ([`ProviderTable::accept`]): an announcement that verifies (layout,
//!   limits, the author's signature), whose `seq` is newer than the last one from that author
//!   (replay) and not in the future, within the author's rate (a token bucket of
//!   [`BURST`] announcements refilled one per [`RATE_PERIOD`]). Anything else is dropped with a
//!   logged reason; an author that keeps flooding is banned for [`BAN`].
//! - **What is kept.** At most [`MAX_PEERS`] peers (the one seen longest ago goes first), each
//!   with at most `announce::MAX_HOLDS` files; a peer not heard from for [`PEER_TTL`] is
//!   forgotten. Memory is bounded whatever hostile peers send.
//! - **Who is dropped** ([`ProviderTable::penalize`]): a fetcher reports a peer that sent bytes
//!   that did not verify (banned), announced a file it could not serve (banned after
//!   [`STRIKES`] times), announced a catalog version the origin does not have (banned), or did
//!   not answer (forgotten until it announces again).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//!
//! use archy_net::announce::{Announcement, Holding};
//! use archy_net::swarm::{Dropped, ProviderTable};
//!
//! let topic = [4u8; 32];
//! let peer = iroh::SecretKey::from_bytes(&[5; 32]);
//! let file = blake3::hash(b"archive");
//! let now = SystemTime::now();
//! let seq = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
//! let a = Announcement {
//!     node: peer.public(),
//!     seq,
//!     catalog_version: 3,
//!     addrs: vec!["10.0.0.2:4919".parse().unwrap()],
//!     holds: vec![Holding { hash: file, complete: true }],
//! };
//! let wire = a.encode_signed(&peer, &topic);
//! let mut table = ProviderTable::default();
//! table.accept(&wire, &topic, now).unwrap();
//! assert_eq!(table.providers(&file, None).len(), 1);
//! // The same message again is a replay.
//! assert!(matches!(table.accept(&wire, &topic, now), Err(Dropped::Replayed { .. })));
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use iroh::{EndpointAddr, EndpointId, SecretKey};
use serde::{Deserialize, Serialize};

use crate::PeerAddr;
use crate::announce::{AnnounceError, Announcement, Holding, MAX_HOLDS};

/// Most peers a table keeps.
pub const MAX_PEERS: usize = 1024;
/// Most bans a table keeps (the oldest goes first).
pub const MAX_BANS: usize = 4096;
/// A peer not heard from for this long is forgotten.
pub const PEER_TTL: Duration = Duration::from_secs(180);
/// Announcements an author may send at once before the rate applies.
pub const BURST: f64 = 4.0;
/// One more announcement is allowed per this period.
pub const RATE_PERIOD: Duration = Duration::from_secs(1);
/// Announcements dropped for rate before the author is banned.
pub const FLOOD_LIMIT: u32 = 20;
/// How long a ban lasts.
pub const BAN: Duration = Duration::from_secs(3600);
/// Announced files a peer could not serve before it is banned.
pub const STRIKES: u32 = 3;
/// How far in the future an announcement may be dated (clock skew).
pub const MAX_SKEW: Duration = Duration::from_secs(120);
/// Most drop records kept for the status report.
const MAX_DROP_LOG: usize = 64;

/// The gossip topic of the catalog whose trusted root is `root_json`: derived from the root
/// role's key ids (sorted) and threshold, so it stays the same across root versions that keep
/// the root keys, and differs for any other catalog.
pub fn topic_for_root(root_json: &[u8]) -> anyhow::Result<[u8; 32]> {
    let root = catalog::metadata::SignedMetadata::<catalog::metadata::Root>::from_slice(root_json, "root")?;
    let role = root.signed.role("root").ok_or_else(|| anyhow::anyhow!("the root has no root role"))?;
    let mut ids = role.keyids.clone();
    ids.sort();
    let material = format!("{}\n{}", role.threshold, ids.join("\n"));
    Ok(blake3::derive_key("archy swarm topic v1", material.as_bytes()))
}

/// Why an announcement (or a peer) was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dropped {
    /// It did not parse or verify.
    #[error("{detail}")]
    Invalid {
        /// What was wrong.
        detail: String,
    },
    /// Not newer than the last one from that author.
    #[error("replayed: seq {seq} is not newer than {last}")]
    Replayed {
        /// The announcement's seq.
        seq: u64,
        /// The last accepted.
        last: u64,
    },
    /// Dated further in the future than [`MAX_SKEW`].
    #[error("dated {ahead_ms} ms in the future")]
    Future {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// Over the author's rate.
    #[error("flooding: over {BURST} announcements at once or more than one per {RATE_PERIOD:?}")]
    Flooding,
    /// The author is banned.
    #[error("banned: {reason}")]
    Banned {
        /// Why.
        reason: String,
    },
    /// The node's own announcement, relayed back.
    #[error("our own announcement")]
    Own,
}

/// What a fetcher found a peer doing wrong ([`ProviderTable::penalize`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Offence {
    /// It sent bytes that did not verify against the signed hash: banned.
    BadData,
    /// It announced a file but could not serve it.
    NotHeld,
    /// It announced a whole file and showed less of it: banned.
    FalseClaim,
    /// It announced a catalog version newer than the origin's.
    CatalogLie,
    /// It did not answer: forgotten until it announces again.
    Unreachable,
}

/// A peer in the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerEntry {
    /// Its endpoint id.
    pub id: EndpointId,
    /// Where it listens.
    pub addrs: Vec<SocketAddr>,
    /// The catalog version it trusts.
    pub catalog_version: u64,
    /// What it holds.
    #[serde(with = "holds_serde")]
    pub holds: Vec<Holding>,
    /// Its last accepted seq.
    pub seq: u64,
    /// When it was last heard from.
    pub last_seen: SystemTime,
    /// Announced files it could not serve.
    #[serde(default)]
    pub strikes: u32,
    #[serde(skip)]
    tokens: f64,
    #[serde(skip)]
    refilled: Option<SystemTime>,
    #[serde(skip)]
    flood_drops: u32,
}

/// A ban, with why and until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ban {
    /// The banned peer.
    pub id: EndpointId,
    /// Why.
    pub reason: String,
    /// Until when.
    pub until: SystemTime,
}

/// A drop, for the status report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DropRecord {
    /// The author, when the announcement got far enough to name one.
    pub peer: Option<EndpointId>,
    /// Why.
    pub reason: String,
    /// When.
    pub at: SystemTime,
}

/// The providers a node knows: peers, what they hold, bans (see the module docs for the rules).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProviderTable {
    peers: HashMap<EndpointId, PeerEntry>,
    bans: HashMap<EndpointId, Ban>,
    #[serde(default)]
    drops: VecDeque<DropRecord>,
    /// Announcements dropped, by reason, since start.
    #[serde(skip)]
    pub dropped_total: HashMap<&'static str, u64>,
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl ProviderTable {
    /// Takes in one announcement received on `topic` at `now`, or says why it was dropped.
    /// Also logs the drop (and keeps the last few for the status report).
    pub fn accept(&mut self, wire: &[u8], topic: &[u8; 32], now: SystemTime) -> Result<Announcement, Dropped> {
        let result = self.accept_inner(wire, topic, now);
        if let Err(e) = &result {
            let peer = match e {
                Dropped::Invalid { .. } => None,
                _ => Announcement::decode(wire, topic).ok().map(|a| a.node),
            };
            self.log_drop(peer, e, now);
        }
        result
    }

    fn log_drop(&mut self, peer: Option<EndpointId>, e: &Dropped, now: SystemTime) {
        let key = match e {
            Dropped::Invalid { .. } => "invalid",
            Dropped::Replayed { .. } => "replayed",
            Dropped::Future { .. } => "future",
            Dropped::Flooding => "flooding",
            Dropped::Banned { .. } => "banned",
            Dropped::Own => return,
        };
        *self.dropped_total.entry(key).or_default() += 1;
        match peer {
            Some(p) => tracing::debug!(peer = %p.fmt_short(), "announcement dropped: {e}"),
            None => tracing::debug!("announcement dropped: {e}"),
        }
        // Bounded: a flood is one line per reason, not one per message.
        if self.drops.back().is_some_and(|d| d.peer == peer && d.reason == e.to_string()) {
            return;
        }
        if self.drops.len() == MAX_DROP_LOG {
            self.drops.pop_front();
        }
        self.drops.push_back(DropRecord { peer, reason: e.to_string(), at: now });
    }

    fn accept_inner(&mut self, wire: &[u8], topic: &[u8; 32], now: SystemTime) -> Result<Announcement, Dropped> {
        // A banned author's announcements (or forgeries in its name) are dropped before the
        // signature is checked: a banned flooder costs a lookup per message, not a verification.
        if let Some(claimed) = Announcement::claimed_author(wire)
            && let Some(ban) = self.bans.get(&claimed)
        {
            if ban.until > now {
                return Err(Dropped::Banned { reason: ban.reason.clone() });
            }
            self.bans.remove(&claimed);
        }
        let a =
            Announcement::decode(wire, topic).map_err(|e: AnnounceError| Dropped::Invalid { detail: e.to_string() })?;
        let now_ms = millis(now);
        if a.seq > now_ms + MAX_SKEW.as_millis() as u64 {
            return Err(Dropped::Future { ahead_ms: a.seq - now_ms });
        }
        if let Some(entry) = self.peers.get_mut(&a.node) {
            if a.seq <= entry.seq {
                return Err(Dropped::Replayed { seq: a.seq, last: entry.seq });
            }
            // Token bucket: BURST at once, one more per RATE_PERIOD.
            let elapsed = entry.refilled.and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
            entry.tokens = (entry.tokens + elapsed.as_secs_f64() / RATE_PERIOD.as_secs_f64()).min(BURST);
            entry.refilled = Some(now);
            if entry.tokens < 1.0 {
                entry.flood_drops += 1;
                if entry.flood_drops >= FLOOD_LIMIT {
                    let id = a.node;
                    self.ban(id, "flooding announcements".into(), now);
                }
                return Err(Dropped::Flooding);
            }
            entry.tokens -= 1.0;
            entry.seq = a.seq;
            entry.last_seen = now;
            entry.addrs = a.addrs.clone();
            entry.catalog_version = a.catalog_version;
            entry.holds = a.holds.clone();
            return Ok(a);
        }
        self.forget_stale(now);
        if self.peers.len() >= MAX_PEERS
            && let Some(oldest) = self.peers.values().min_by_key(|p| p.last_seen).map(|p| p.id)
        {
            self.peers.remove(&oldest);
        }
        self.peers.insert(
            a.node,
            PeerEntry {
                id: a.node,
                addrs: a.addrs.clone(),
                catalog_version: a.catalog_version,
                holds: a.holds.clone(),
                seq: a.seq,
                last_seen: now,
                strikes: 0,
                tokens: BURST - 1.0,
                refilled: Some(now),
                flood_drops: 0,
            },
        );
        Ok(a)
    }

    fn ban(&mut self, id: EndpointId, reason: String, now: SystemTime) {
        tracing::warn!(peer = %id, "peer banned: {reason}");
        self.peers.remove(&id);
        if self.bans.len() >= MAX_BANS
            && let Some(oldest) = self.bans.values().min_by_key(|b| b.until).map(|b| b.id)
        {
            self.bans.remove(&oldest);
        }
        let record = DropRecord { peer: Some(id), reason: reason.clone(), at: now };
        if self.drops.len() == MAX_DROP_LOG {
            self.drops.pop_front();
        }
        self.drops.push_back(record);
        self.bans.insert(id, Ban { id, reason, until: now + BAN });
    }

    /// Records what a fetcher found `id` doing (see [`Offence`]); `detail` names the file and
    /// what happened.
    pub fn penalize(&mut self, id: EndpointId, offence: Offence, detail: &str, now: SystemTime) {
        match offence {
            Offence::BadData => self.ban(id, format!("sent bytes that do not verify: {detail}"), now),
            Offence::CatalogLie => self.ban(id, format!("announced a catalog the origin does not have: {detail}"), now),
            Offence::FalseClaim => self.ban(id, format!("announced a file whole that it does not have: {detail}"), now),
            Offence::NotHeld => {
                let strikes = self.peers.get_mut(&id).map(|p| {
                    p.strikes += 1;
                    p.strikes
                });
                if strikes.is_some_and(|s| s >= STRIKES) {
                    self.ban(id, format!("announced files it could not serve ({STRIKES} times; last: {detail})"), now);
                }
            }
            Offence::Unreachable => {
                self.peers.remove(&id);
            }
        }
    }

    /// Forgets peers not heard from for [`PEER_TTL`] and bans that ran out.
    pub fn forget_stale(&mut self, now: SystemTime) {
        self.peers.retain(|_, p| now.duration_since(p.last_seen).map_or(true, |d| d < PEER_TTL));
        self.bans.retain(|_, b| b.until > now);
    }

    /// Peers that may have file `hash`: those announcing it whole, then those fetching it, then
    /// (when `catalog_version` is given, for files every catalog holder has) those trusting that
    /// catalog version. Banned peers never.
    pub fn providers(&self, hash: &blake3::Hash, catalog_version: Option<u64>) -> Vec<PeerAddr> {
        let mut ranked: Vec<(u8, &PeerEntry)> = self
            .peers
            .values()
            .filter(|p| !self.bans.contains_key(&p.id) && !p.addrs.is_empty())
            .filter_map(|p| {
                let held = p.holds.iter().find(|h| &h.hash == hash);
                match held {
                    Some(h) if h.complete => Some((0, p)),
                    Some(_) => Some((1, p)),
                    None if catalog_version.is_some_and(|v| v > 0 && p.catalog_version == v) => Some((2, p)),
                    None => None,
                }
            })
            .collect();
        // Spread the load: within a rank, a different order on every node.
        let salt = rand::random::<u64>();
        ranked.sort_by_key(|(rank, p)| {
            (*rank, *blake3::hash(&[p.id.as_bytes().as_slice(), &salt.to_le_bytes()].concat()).as_bytes())
        });
        ranked.into_iter().map(|(_, p)| PeerAddr { id: p.id, addr: p.addrs[0] }).collect()
    }

    /// Whether `id` announced `hash` whole.
    pub fn claims_complete(&self, id: &EndpointId, hash: &blake3::Hash) -> bool {
        self.peers.get(id).is_some_and(|p| p.holds.iter().any(|h| &h.hash == hash && h.complete))
    }

    /// The peers known now.
    pub fn peers(&self) -> impl Iterator<Item = &PeerEntry> {
        self.peers.values()
    }

    /// The bans in force.
    pub fn bans(&self) -> impl Iterator<Item = &Ban> {
        self.bans.values()
    }

    /// The last drops, oldest first.
    pub fn drops(&self) -> impl Iterator<Item = &DropRecord> {
        self.drops.iter()
    }

    /// Whether `id` is banned.
    pub fn is_banned(&self, id: &EndpointId) -> bool {
        self.bans.contains_key(id)
    }

    /// Peers that announced a catalog version newer than `origin_version`.
    pub fn ahead_of(&self, origin_version: u64) -> Vec<(EndpointId, u64)> {
        self.peers.values().filter(|p| p.catalog_version > origin_version).map(|p| (p.id, p.catalog_version)).collect()
    }

    /// Writes the table to `path` (atomically), for one-shot commands and the next start.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        catalog::repo::write_atomic(path, &serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    /// Reads a table written by [`ProviderTable::save`]; peers past [`PEER_TTL`] are left out. A
    /// missing, oversized or unreadable file is an empty table (it is only a hint: every byte a
    /// peer sends is verified anyway).
    pub fn load(path: &Path, now: SystemTime) -> Self {
        let too_big = std::fs::metadata(path).map_or(true, |m| m.len() > 16 << 20);
        if too_big {
            return Self::default();
        }
        let mut table: Self =
            std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        table.peers.retain(|_, p| p.holds.len() <= MAX_HOLDS);
        table.forget_stale(now);
        while table.peers.len() > MAX_PEERS {
            let Some(oldest) = table.peers.values().min_by_key(|p| p.last_seen).map(|p| p.id) else { break };
            table.peers.remove(&oldest);
        }
        table
    }
}

/// The iroh address of a peer at its announced addresses.
fn endpoint_addr(id: EndpointId, addrs: &[SocketAddr]) -> EndpointAddr {
    addrs.iter().fold(EndpointAddr::new(id), |a, s| a.with_ip_addr(*s))
}

mod holds_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::announce::Holding;

    #[derive(Serialize, Deserialize)]
    struct H {
        blake3: String,
        complete: bool,
    }

    pub(super) fn serialize<S: Serializer>(holds: &[Holding], s: S) -> Result<S::Ok, S::Error> {
        holds
            .iter()
            .map(|h| H { blake3: h.hash.to_hex().to_string(), complete: h.complete })
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Holding>, D::Error> {
        Vec::<H>::deserialize(d)?
            .into_iter()
            .map(|h| Ok(Holding { hash: h.blake3.parse().map_err(serde::de::Error::custom)?, complete: h.complete }))
            .collect()
    }
}

/// What this node announces.
#[derive(Debug, Default)]
struct Local {
    catalog_version: u64,
    /// Most recent first.
    holds: VecDeque<Holding>,
    seq: u64,
}

/// A node's membership in its catalog's swarm: the gossip topic, the provider table, and what
/// this node announces (see the module docs).
#[derive(Debug, Clone)]
pub struct Swarm {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    topic: [u8; 32],
    secret: SecretKey,
    endpoint: iroh::Endpoint,
    lookup: iroh::address_lookup::MemoryLookup,
    table: Mutex<ProviderTable>,
    local: Mutex<Local>,
    sender: Option<iroh_gossip::api::GossipSender>,
    announce_now: tokio::sync::Notify,
    table_path: Option<std::path::PathBuf>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    notes: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    /// Token bucket of [`NOTES_PER_SECOND`]: (tokens, last refill).
    note_budget: Mutex<(f64, std::time::Instant)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().map(std::mem::take).unwrap_or_default() {
            task.abort();
        }
    }
}

/// How a node takes part in the swarm.
#[derive(Debug, Clone)]
pub struct SwarmOptions {
    /// Announce at least this often (and at once when what the node holds changes).
    pub announce_every: Duration,
    /// Where the provider table is kept (read at start, written after changes).
    pub table_path: Option<std::path::PathBuf>,
    /// Whether this node announces at all (the origin only relays and bootstraps).
    pub announce: bool,
    /// Where log checkpoints gossiped on the topic go ([`NOTE_MAGIC`]; at most
    /// [`NOTES_PER_SECOND`] a second, the rest dropped), when this member witnesses the log.
    pub notes: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
}

impl Default for SwarmOptions {
    fn default() -> Self {
        Self { announce_every: Duration::from_secs(30), table_path: None, announce: true, notes: None }
    }
}

/// The first bytes of a gossiped log checkpoint (a C2SP signed note, `catalog::tlog`, at most
/// `catalog::tlog::MAX_NOTE` bytes after these). Its signatures are the log's and its witnesses',
/// so it needs no announcement signature; the receiver checks them.
pub const NOTE_MAGIC: &[u8; 4] = b"ARW1";

/// Gossiped checkpoints passed on per second at most (with a burst of as many); the rest are
/// dropped before anything is parsed, so a flood costs O(1) memory. Gossip drops repeats of one
/// message itself, so this bounds distinct notes: a swarm of honest witnesses sends one per
/// member per change, far below it.
pub const NOTES_PER_SECOND: f64 = 64.0;

impl Swarm {
    /// Joins the swarm `topic` on `gossip` (whose protocol the caller serves on `endpoint`),
    /// bootstrapping from `bootstrap` and the peers of a table kept at `options.table_path`.
    /// Returns at once; the swarm forms in the background.
    pub async fn join(
        endpoint: &iroh::Endpoint,
        secret: SecretKey,
        gossip: &iroh_gossip::net::Gossip,
        topic: [u8; 32],
        bootstrap: &[PeerAddr],
        options: SwarmOptions,
    ) -> anyhow::Result<Self> {
        let now = SystemTime::now();
        let table = options.table_path.as_deref().map(|p| ProviderTable::load(p, now)).unwrap_or_default();
        let lookup = iroh::address_lookup::MemoryLookup::new();
        endpoint.address_lookup().map_err(|e| anyhow::anyhow!("the endpoint is closed: {e}"))?.add(lookup.clone());
        let mut ids = Vec::new();
        for peer in bootstrap {
            lookup.add_endpoint_info(peer.endpoint_addr());
            ids.push(peer.id);
        }
        for peer in table.peers() {
            lookup.add_endpoint_info(endpoint_addr(peer.id, &peer.addrs));
            ids.push(peer.id);
        }
        ids.retain(|id| *id != endpoint.id());
        ids.sort();
        ids.dedup();
        let topic_id = iroh_gossip::TopicId::from_bytes(topic);
        let (sender, receiver) =
            gossip.subscribe(topic_id, ids).await.map_err(|e| anyhow::anyhow!("joining the swarm topic: {e}"))?.split();
        let inner = Arc::new(Inner {
            topic,
            secret,
            endpoint: endpoint.clone(),
            lookup,
            table: Mutex::new(table),
            local: Mutex::new(Local::default()),
            sender: Some(sender),
            announce_now: tokio::sync::Notify::new(),
            table_path: options.table_path.clone(),
            tasks: Mutex::new(Vec::new()),
            notes: options.notes.clone(),
            note_budget: Mutex::new((NOTES_PER_SECOND, std::time::Instant::now())),
        });
        let weak = Arc::downgrade(&inner);
        let receive = tokio::spawn(receive_loop(weak.clone(), receiver));
        let mut tasks = vec![receive];
        if options.announce {
            tasks.push(tokio::spawn(announce_loop(weak, options.announce_every)));
        }
        *inner.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = tasks;
        Ok(Self { inner })
    }

    /// The topic.
    pub fn topic(&self) -> [u8; 32] {
        self.inner.topic
    }

    /// Sets the catalog version this node announces (announced at once when it changes).
    pub fn set_catalog_version(&self, version: u64) {
        let mut local = self.inner.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if local.catalog_version != version {
            local.catalog_version = version;
            self.inner.announce_now.notify_one();
        }
    }

    /// Adds (or updates) a file this node holds whole or is fetching; announced at once. The
    /// most recent [`MAX_HOLDS`] are announced.
    pub fn hold(&self, hash: blake3::Hash, complete: bool) {
        let mut local = self.inner.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if local.holds.front().is_some_and(|h| h.hash == hash && h.complete == complete) {
            return;
        }
        local.holds.retain(|h| h.hash != hash);
        local.holds.push_front(Holding { hash, complete });
        local.holds.truncate(MAX_HOLDS);
        self.inner.announce_now.notify_one();
    }

    /// Runs `f` on the provider table.
    pub fn with_table<T>(&self, f: impl FnOnce(&mut ProviderTable) -> T) -> T {
        let mut table = self.inner.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut table)
    }

    /// Peers that may have `hash` (see [`ProviderTable::providers`]); their addresses are made
    /// known to the endpoint.
    pub fn providers(&self, hash: &blake3::Hash, catalog_version: Option<u64>) -> Vec<PeerAddr> {
        let providers = self.with_table(|t| t.providers(hash, catalog_version));
        for p in &providers {
            self.inner.lookup.add_endpoint_info(p.endpoint_addr());
        }
        providers
    }

    /// Reports a peer's offence (see [`ProviderTable::penalize`]).
    pub fn penalize(&self, id: EndpointId, offence: Offence, detail: &str) {
        self.with_table(|t| t.penalize(id, offence, detail, SystemTime::now()));
        self.save();
    }

    /// Writes the table to its path, if it has one.
    pub fn save(&self) {
        if let Some(path) = &self.inner.table_path {
            let result = self.with_table(|t| t.save(path));
            if let Err(e) = result {
                tracing::warn!("saving the provider table: {e:#}");
            }
        }
    }

    /// Gossips a log checkpoint (a signed note) on the topic.
    pub async fn broadcast_note(&self, note: &[u8]) -> anyhow::Result<()> {
        let Some(sender) = &self.inner.sender else { return Ok(()) };
        let mut wire = NOTE_MAGIC.to_vec();
        wire.extend_from_slice(note);
        sender.broadcast(wire.into()).await.map_err(|e| anyhow::anyhow!("gossip: {e}"))
    }

    /// Passes a gossiped checkpoint on, within [`NOTES_PER_SECOND`] and the channel's room.
    fn pass_note(&self, note: bytes::Bytes) {
        let Some(notes) = &self.inner.notes else { return };
        if note.len() > catalog::tlog::MAX_NOTE {
            tracing::debug!(bytes = note.len(), "gossiped checkpoint dropped: oversized");
            return;
        }
        {
            let mut budget = self.inner.note_budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = std::time::Instant::now();
            budget.0 = (budget.0 + now.duration_since(budget.1).as_secs_f64() * NOTES_PER_SECOND).min(NOTES_PER_SECOND);
            budget.1 = now;
            if budget.0 < 1.0 {
                tracing::debug!("gossiped checkpoint dropped: over {NOTES_PER_SECOND} a second");
                return;
            }
            budget.0 -= 1.0;
        }
        if notes.try_send(note).is_err() {
            tracing::debug!("gossiped checkpoint dropped: the witness is busy");
        }
    }

    /// Sends one announcement now.
    async fn announce(&self) -> anyhow::Result<()> {
        let Some(sender) = &self.inner.sender else { return Ok(()) };
        let addrs: Vec<SocketAddr> =
            self.inner.endpoint.bound_sockets().into_iter().filter(|a| !a.ip().is_unspecified()).collect();
        let wire = {
            let mut local = self.inner.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Strictly increasing even when the clock is not.
            local.seq = millis(SystemTime::now()).max(local.seq + 1);
            let a = Announcement {
                node: self.inner.secret.public(),
                seq: local.seq,
                catalog_version: local.catalog_version,
                addrs,
                holds: local.holds.iter().copied().collect(),
            };
            a.encode_signed(&self.inner.secret, &self.inner.topic)
        };
        sender.broadcast(wire.into()).await.map_err(|e| anyhow::anyhow!("gossip: {e}"))
    }
}

async fn receive_loop(inner: std::sync::Weak<Inner>, mut receiver: iroh_gossip::api::GossipReceiver) {
    use n0_future::StreamExt as _;
    while let Some(event) = receiver.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let swarm = Swarm { inner };
        match event {
            Ok(iroh_gossip::api::Event::Received(message)) if message.content.starts_with(NOTE_MAGIC) => {
                swarm.pass_note(message.content.slice(NOTE_MAGIC.len()..));
            }
            Ok(iroh_gossip::api::Event::Received(message)) => {
                let me = swarm.inner.secret.public();
                let (accepted, changed) = swarm.with_table(|t| {
                    let now = SystemTime::now();
                    let before = (t.peers().count(), t.bans().count());
                    // Ours (or a forgery in our name): dropped either way, unverified.
                    let accepted = if Announcement::claimed_author(&message.content) == Some(me) {
                        Err(Dropped::Own)
                    } else {
                        t.accept(&message.content, &swarm.inner.topic, now)
                    };
                    let after = (t.peers().count(), t.bans().count());
                    (accepted, after.0 > before.0 || after.1 != before.1)
                });
                if let Ok(a) = accepted {
                    swarm.inner.lookup.add_endpoint_info(endpoint_addr(a.node, &a.addrs));
                }
                // A peer seen for the first time, or one banned for flooding, is written out at
                // once (status, one-shot commands); the rest with the announcements.
                if changed {
                    swarm.save();
                }
            }
            Ok(iroh_gossip::api::Event::NeighborUp(id)) => {
                tracing::debug!(peer = %id.fmt_short(), "swarm neighbour up");
                // A new neighbour learns what we hold at once.
                swarm.inner.announce_now.notify_one();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("swarm topic: {e}");
                return;
            }
        }
    }
}

async fn announce_loop(inner: std::sync::Weak<Inner>, every: Duration) {
    let mut last_saved = SystemTime::UNIX_EPOCH;
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let notified = {
            let n = strong.announce_now.notified();
            tokio::select! {
                () = n => true,
                () = tokio::time::sleep(every) => false,
            }
        };
        let swarm = Swarm { inner: strong };
        if notified {
            // Changes often come in bursts (a fetch moving along): at most one announcement per
            // RATE_PERIOD, within every peer's budget.
            tokio::time::sleep(RATE_PERIOD).await;
        }
        if let Err(e) = swarm.announce().await {
            tracing::debug!("announcing: {e:#}");
        }
        swarm.with_table(|t| t.forget_stale(SystemTime::now()));
        if SystemTime::now().duration_since(last_saved).unwrap_or_default() >= Duration::from_secs(2) {
            swarm.save();
            last_saved = SystemTime::now();
        }
    }
}

/// A swarm member that only relays and bootstraps (the origin): joins `topic` and drains it.
pub async fn relay_only(
    endpoint: &iroh::Endpoint,
    gossip: &iroh_gossip::net::Gossip,
    topic: [u8; 32],
) -> anyhow::Result<Swarm> {
    Swarm::join(
        endpoint,
        SecretKey::generate(),
        gossip,
        topic,
        &[],
        SwarmOptions { announce: false, ..SwarmOptions::default() },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce(key: &SecretKey, seq: u64, version: u64, holds: Vec<Holding>) -> Vec<u8> {
        Announcement {
            node: key.public(),
            seq,
            catalog_version: version,
            addrs: vec!["10.0.0.9:1".parse().expect("addr")],
            holds,
        }
        .encode_signed(key, &[1; 32])
    }

    #[test]
    fn floods_replays_and_offences_are_dropped_and_memory_stays_bounded() {
        let topic = [1; 32];
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let base = millis(t0);
        let mut table = ProviderTable::default();
        let flooder = SecretKey::from_bytes(&[2; 32]);
        // BURST at once are fine, then one per second; a flood gets the author banned.
        let mut accepted = 0;
        for i in 0..(BURST as u64 + FLOOD_LIMIT as u64 + 5) {
            if table.accept(&announce(&flooder, base + i, 1, vec![]), &topic, t0).is_ok() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, BURST as usize);
        assert!(table.is_banned(&flooder.public()));
        assert!(matches!(
            table.accept(&announce(&flooder, base + 999, 1, vec![]), &topic, t0),
            Err(Dropped::Banned { .. })
        ));
        // Dated in the future.
        let other = SecretKey::from_bytes(&[3; 32]);
        assert!(matches!(
            table.accept(&announce(&other, base + 10 * 60_000, 1, vec![]), &topic, t0),
            Err(Dropped::Future { .. })
        ));
        // Many authors: never more than MAX_PEERS kept.
        for i in 0..(MAX_PEERS + 50) as u32 {
            let mut seed = [9u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            let key = SecretKey::from_bytes(&seed);
            table.accept(&announce(&key, base, 1, vec![]), &topic, t0).expect("a fresh author");
        }
        assert_eq!(table.peers().count(), MAX_PEERS);
        // Unheard-of peers are forgotten.
        table.forget_stale(t0 + PEER_TTL + Duration::from_secs(1));
        assert_eq!(table.peers().count(), 0);
    }

    #[test]
    fn providers_rank_whole_files_first_and_offenders_go() {
        let topic = [1; 32];
        let now = SystemTime::now();
        let seq = millis(now);
        let file = blake3::hash(b"f");
        let (whole, partial, same_catalog) =
            (SecretKey::from_bytes(&[4; 32]), SecretKey::from_bytes(&[5; 32]), SecretKey::from_bytes(&[6; 32]));
        let mut table = ProviderTable::default();
        table
            .accept(&announce(&partial, seq, 7, vec![Holding { hash: file, complete: false }]), &topic, now)
            .expect("ok");
        table.accept(&announce(&whole, seq, 7, vec![Holding { hash: file, complete: true }]), &topic, now).expect("ok");
        table.accept(&announce(&same_catalog, seq, 7, vec![]), &topic, now).expect("ok");
        let ids: Vec<_> = table.providers(&file, Some(7)).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![whole.public(), partial.public(), same_catalog.public()]);
        assert_eq!(table.providers(&file, None).len(), 2);
        table.penalize(whole.public(), Offence::BadData, "f: hash mismatch", now);
        for _ in 0..STRIKES {
            table.penalize(partial.public(), Offence::NotHeld, "f", now);
        }
        let ids: Vec<_> = table.providers(&file, Some(7)).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![same_catalog.public()]);
        let reasons: Vec<_> = table.bans().map(|b| b.reason.clone()).collect();
        assert!(reasons.iter().any(|r| r.contains("do not verify")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("could not serve")), "{reasons:?}");
    }
}
