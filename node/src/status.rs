//! `archy-node status`: catalog version and expiry, origin reachability, peers, evidence.

use std::path::PathBuf;

use serde::Serialize;

use crate::catalog::NodeCatalog;
use crate::data_dir::DataDir;
use crate::node_info::{NodeInfo, read_node_info};
use crate::sync::{SyncReport, last_report};

/// The trusted catalog, as of the current generation.
#[derive(Debug, Serialize)]
pub(crate) struct CatalogStatus {
    /// Generation number on disk.
    pub generation: u64,
    /// `origin` or `peer <id>`.
    pub source: String,
    /// When it was verified.
    pub synced_at: chrono::DateTime<chrono::Utc>,
    /// Root version.
    pub root_version: u64,
    /// Timestamp version.
    pub timestamp_version: u64,
    /// Snapshot version.
    pub snapshot_version: u64,
    /// Timestamp expiry.
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether that expiry has passed (the node then refuses to install until it syncs).
    pub expired: bool,
    /// Installable app versions.
    pub apps: usize,
}

/// Everything `status` shows.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    /// The data dir.
    pub data: PathBuf,
    /// The verified catalog, if any.
    pub catalog: Option<CatalogStatus>,
    /// The last sync round.
    pub last_sync: Option<SyncReport>,
    /// Configured origin HTTP URL.
    pub origin_url: Option<String>,
    /// Configured origin iroh address.
    pub origin_iroh: Option<String>,
    /// Configured peers.
    pub peers: Vec<String>,
    /// The swarm as the running node last saved it.
    pub swarm: SwarmStatus,
    /// Equivocation evidence kept.
    pub equivocation: Vec<PathBuf>,
    /// The origin's transparency log as this node knows it.
    pub log: LogStatus,
    /// The running daemon, if `node.json` names one.
    pub daemon: Option<NodeInfo>,
    /// The container engine as the running node (or the last one) saw it.
    pub engine: Option<crate::engine_watch::EngineReport>,
    /// Nostr: configured relays, the last full read, the daemon's live subscription.
    pub nostr: NostrStatus,
    /// Retired and revoked publisher keys, and the installed apps signed by a revoked one.
    pub publisher_keys: crate::key_standing::KeyReport,
}

/// The transparency-log part of `status`.
#[derive(Debug, Serialize)]
pub(crate) struct LogStatus {
    /// The log's name (its checkpoints' origin line), once a checkpoint is kept.
    pub name: Option<String>,
    /// The size of the newest checkpoint kept.
    pub size: Option<u64>,
    /// Its root hash (base64, as in the checkpoint).
    pub root: Option<String>,
    /// A proof of a split view, while the origin is refused.
    pub split_view: Option<crate::sync::log::SplitView>,
    /// The witnesses whose cosignatures on the kept checkpoint verify (`[log] witnesses` and
    /// this node), by name.
    pub witnesses: Vec<String>,
    /// This node's own witness verifier key (for other nodes' `[log] witnesses`).
    pub witness_key: Option<String>,
}

impl LogStatus {
    fn gather(data: &DataDir, config: &crate::config::Config) -> Self {
        let witnesses = crate::sync::witness::trusted_log(data)
            .and_then(|log| crate::sync::log::known(data, &log))
            .map(|kept| {
                let mut keys = crate::sync::witness::configured(config);
                keys.extend(
                    crate::sync::witness::own_vkey(data).and_then(|v| catalog::tlog::NoteKey::from_vkey(&v).ok()),
                );
                kept.cosigners(&keys).into_iter().map(|k| k.name().to_owned()).collect()
            })
            .unwrap_or_default();
        // Shown as kept; it was verified when it was kept.
        let kept = std::fs::read(data.log_dir().join("checkpoint"))
            .ok()
            .and_then(|b| catalog::tlog::Note::parse(&b).ok())
            .and_then(|n| catalog::tlog::Checkpoint::parse_text(&n.text).ok());
        Self {
            name: kept.as_ref().map(|c| c.origin.clone()),
            size: kept.as_ref().map(|c| c.size),
            root: kept.as_ref().and_then(|c| catalog::tlog::encode_hashes(&[c.root]).pop()),
            split_view: crate::sync::log::split_view(data),
            witnesses,
            witness_key: crate::sync::witness::own_vkey(data),
        }
    }
}

/// The swarm part of `status`: peers known, bans, the last drops of announcements.
#[derive(Debug, Serialize)]
pub(crate) struct SwarmStatus {
    /// Peers known (heard from within `archy_net::swarm::PEER_TTL`).
    pub peers: Vec<SwarmPeer>,
    /// Banned peers, with why.
    pub banned: Vec<archy_net::swarm::Ban>,
    /// The last dropped announcements, with why.
    pub dropped: Vec<archy_net::swarm::DropRecord>,
}

/// A peer of the swarm.
#[derive(Debug, Serialize)]
pub(crate) struct SwarmPeer {
    /// Its endpoint id.
    pub id: String,
    /// Where it listens.
    pub addrs: Vec<std::net::SocketAddr>,
    /// The catalog version it trusts.
    pub catalog_version: u64,
    /// Files it holds (whole or arriving).
    pub holds: usize,
}

impl SwarmStatus {
    fn gather(data: &DataDir) -> Self {
        let table = archy_net::swarm::ProviderTable::load(&data.swarm_table(), std::time::SystemTime::now());
        let mut peers: Vec<SwarmPeer> = table
            .peers()
            .map(|p| SwarmPeer {
                id: p.id.to_string(),
                addrs: p.addrs.clone(),
                catalog_version: p.catalog_version,
                holds: p.holds.len(),
            })
            .collect();
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        Self { peers, banned: table.bans().cloned().collect(), dropped: table.drops().cloned().collect() }
    }
}

/// The Nostr part of `status`.
#[derive(Debug, Serialize)]
pub(crate) struct NostrStatus {
    /// Configured relays.
    pub relays: Vec<String>,
    /// Configured trust seeds.
    pub seeds: usize,
    /// `[nostr_policy] min_score`.
    pub min_score: f64,
    /// The last full read (`sync`, or `run` on its interval).
    pub last_read: Option<crate::nostr::read::ReadReport>,
    /// The running daemon's live subscription.
    pub live: Option<crate::nostr::read::LiveReport>,
}

impl Status {
    /// Reads the status from the data dir.
    pub(crate) fn gather(data: &DataDir) -> Self {
        let config = data.config().unwrap_or_default();
        let now = chrono::Utc::now();
        let catalog = NodeCatalog::open(data).ok().map(|c| {
            let s = c.state();
            CatalogStatus {
                generation: s.generation,
                source: s.source.clone(),
                synced_at: s.synced_at,
                root_version: s.root_version,
                timestamp_version: s.timestamp_version,
                snapshot_version: s.snapshot_version,
                expires: s.expires,
                expired: s.expires.is_some_and(|e| e <= now),
                apps: s.apps.len(),
            }
        });
        let mut equivocation: Vec<PathBuf> =
            std::fs::read_dir(data.evidence_dir()).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        equivocation.sort();
        Self {
            data: data.root().to_owned(),
            catalog,
            last_sync: last_report(data),
            origin_url: config.origin.url.clone(),
            origin_iroh: config.origin.iroh.as_ref().map(ToString::to_string),
            peers: config.peers.iter().map(|p| p.iroh.to_string()).collect(),
            swarm: SwarmStatus::gather(data),
            equivocation,
            log: LogStatus::gather(data, &config),
            daemon: read_node_info(data),
            engine: crate::engine_watch::EngineReport::last(data),
            nostr: NostrStatus {
                relays: config.nostr.relays.clone(),
                seeds: config.trust.seeds.len(),
                min_score: config.nostr_policy.min_score,
                last_read: crate::nostr::read::ReadReport::last(data),
                live: crate::nostr::read::LiveReport::last(data),
            },
            publisher_keys: crate::key_standing::KeyReport::gather(data),
        }
    }

    /// Human-readable form.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        match &self.catalog {
            Some(c) => {
                line(format!(
                    "catalog: timestamp v{}, snapshot v{}, root v{}, {} app versions (generation {})",
                    c.timestamp_version, c.snapshot_version, c.root_version, c.apps, c.generation
                ));
                let expiry = c.expires.map_or("never".into(), |e| e.to_rfc3339());
                line(format!("  expires: {expiry}{}", if c.expired { "  EXPIRED: sync to refresh" } else { "" }));
                line(format!("  from:    {} at {}", c.source, c.synced_at.to_rfc3339()));
            }
            None => line("catalog: none yet (run `archy-node sync`)".into()),
        }
        match &self.last_sync {
            Some(r) => {
                let at = r.at.map_or(String::new(), |a| a.to_rfc3339());
                line(format!(
                    "last sync: {at}: origin {}; {}",
                    if r.origin_reachable { "reachable" } else { "UNREACHABLE" },
                    match &r.source {
                        Some(s) if r.changed => format!("new catalog from {s}"),
                        Some(s) => format!("up to date ({s})"),
                        None => "catalog kept (nothing verified this round)".into(),
                    }
                ));
                for e in &r.errors {
                    line(format!("  - {e}"));
                }
            }
            None => line("last sync: never".into()),
        }
        line(format!(
            "origin: {}",
            [self.origin_url.clone(), self.origin_iroh.clone()].into_iter().flatten().collect::<Vec<_>>().join(", ")
        ));
        if self.peers.is_empty() {
            line("peers: none configured".into());
        } else {
            line(format!("peers: {}", self.peers.join(", ")));
        }
        line(format!("swarm: {} peers known, {} banned", self.swarm.peers.len(), self.swarm.banned.len()));
        for b in &self.swarm.banned {
            line(format!("  banned {}: {}", b.id, b.reason));
        }
        if let Some(r) = &self.last_sync {
            let mut by: Vec<_> = r.received.by_provider.iter().filter(|(k, _)| *k != "origin").collect();
            by.sort_by(|a, b| b.1.cmp(a.1));
            let peers = by.iter().map(|(k, v)| format!("{}: {v}", &k[..k.len().min(10)])).collect::<Vec<_>>();
            line(format!(
                "  last round received {} bytes from the origin, {} from peers{}",
                r.received.from_origin,
                r.received.from_peers,
                if peers.is_empty() { String::new() } else { format!(" ({})", peers.join(", ")) }
            ));
        }
        if self.equivocation.is_empty() {
            line("equivocation: none seen".into());
        } else {
            line(format!("EQUIVOCATION: {} conflicting signed timestamps kept:", self.equivocation.len()));
            for p in &self.equivocation {
                line(format!("  {}", p.display()));
            }
        }
        match (&self.log.name, self.log.size) {
            (Some(name), Some(size)) => {
                line(format!("log: {name}, {size} catalog states (checkpoint kept)"));
                line(format!(
                    "  cosigned by {} witnesses: {}",
                    self.log.witnesses.len(),
                    self.log.witnesses.join(", ")
                ));
            }
            _ => line("log: none kept (the root names no log, or no round has taken one)".into()),
        }
        if let Some(v) = &self.log.split_view {
            line(format!(
                "SPLIT VIEW: the origin's log signed two inconsistent checkpoints ({}), seen {} from {}",
                v.why,
                v.seen_at.to_rfc3339(),
                v.from
            ));
            line("  new catalogs are refused; the proof (both signed notes) is kept under evidence/".into());
            line("  once you have dealt with the origin: `archy-node trust-origin-again`".into());
        }
        match &self.daemon {
            Some(d) => line(format!("daemon: pid {} api {} iroh {}", d.pid, d.api, d.iroh)),
            None => line("daemon: not running".into()),
        }
        match (&self.engine, &self.daemon) {
            (Some(e), Some(_)) => line(e.describe()),
            (Some(e), None) => line(format!("{} (as last seen by the node)", e.describe())),
            (None, _) => {}
        }
        for l in self.nostr.render() {
            line(l);
        }
        let keys = self.publisher_keys.render();
        if !keys.is_empty() {
            line("publisher keys:".into());
        }
        for l in keys {
            line(format!("  {l}"));
        }
        out
    }
}

fn counts_line(counts: &crate::nostr::state::Counts) -> Vec<String> {
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        }
    };
    let mut out =
        vec![format!("    accepted: {}", join(&counts.accepted)), format!("    dropped:  {}", join(&counts.dropped))];
    for d in &counts.recent_drops {
        out.push(format!("      - {d}"));
    }
    out
}

impl NostrStatus {
    /// Human-readable lines.
    pub(crate) fn render(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.relays.is_empty() {
            out.push("nostr: no relays configured (`archy-node init --relay ws://…`)".to_owned());
            return out;
        }
        out.push(format!(
            "nostr: relays {}; {} trust seeds; min_score {}",
            self.relays.join(", "),
            self.seeds,
            crate::nostr::policy::format_score(self.min_score)
        ));
        match &self.last_read {
            Some(r) => {
                let at = r.at.map_or(String::new(), |a| a.to_rfc3339());
                out.push(format!(
                    "  last read: {at}: holding {} releases ({} more held back), {} bindings, {} revocations, {} follow lists, {} labels",
                    r.held.releases, r.held.held_back, r.held.bindings, r.held.revocations, r.held.follow_lists, r.held.labels
                ));
                for relay in &r.relays {
                    match &relay.error {
                        Some(e) => out.push(format!("    relay {}: {} events; {e}", relay.url, relay.events)),
                        None => out.push(format!("    relay {}: {} events", relay.url, relay.events)),
                    }
                }
                out.extend(counts_line(&r.counts));
            }
            None => out.push("  last read: never (run `archy-node sync`)".to_owned()),
        }
        if let Some(live) = &self.live {
            let since = live.since.map_or(String::new(), |a| a.to_rfc3339());
            out.push(format!(
                "  live (since {since}): subscribed to {}",
                if live.connected.is_empty() { "no relay".to_owned() } else { live.connected.join(", ") }
            ));
            out.extend(counts_line(&live.counts));
        }
        out
    }
}
