//! `archy-node status`: catalog version and expiry, origin reachability, peers, evidence.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::NodeCatalog;
use crate::config::Config;
use crate::sync::{SyncReport, last_report};

/// The trusted catalog, as of the current generation.
#[derive(Debug, Serialize)]
pub struct CatalogStatus {
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
pub struct Status {
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
    /// Equivocation evidence kept.
    pub equivocation: Vec<PathBuf>,
    /// The running daemon, if `node.json` names one.
    pub daemon: Option<crate::daemon::NodeInfo>,
}

impl Status {
    /// Reads the status from the data dir.
    pub fn gather(data: &Path) -> Self {
        let config = Config::load(data).unwrap_or_default();
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
        let mut equivocation: Vec<PathBuf> = std::fs::read_dir(data.join("evidence"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        equivocation.sort();
        Self {
            data: data.to_owned(),
            catalog,
            last_sync: last_report(data),
            origin_url: config.origin.url.clone(),
            origin_iroh: config.origin.iroh.as_ref().map(ToString::to_string),
            peers: config.peers.iter().map(|p| p.iroh.to_string()).collect(),
            equivocation,
            daemon: crate::daemon::read_node_info(data),
        }
    }

    /// Human-readable form.
    pub fn render(&self) -> String {
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
        if self.equivocation.is_empty() {
            line("equivocation: none seen".into());
        } else {
            line(format!("EQUIVOCATION: {} conflicting signed timestamps kept:", self.equivocation.len()));
            for p in &self.equivocation {
                line(format!("  {}", p.display()));
            }
        }
        match &self.daemon {
            Some(d) => line(format!("daemon: pid {} api {} iroh {}", d.pid, d.api, d.iroh)),
            None => line("daemon: not running".into()),
        }
        out
    }
}
