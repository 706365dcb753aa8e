//! The snapshot and the targets roles come from peers first, the candidate last (rule 5).
//!
//! Signed metadata fixes both before they are fetched: the timestamp names the snapshot by
//! version, length and SHA-256, and the snapshot names every targets role by version
//! (docs/decisions.md D4). So they are asked of the swarm's peers that announce the same catalog
//! version first, and of the candidate the round is updating from (the origin) last. Everything
//! else (`timestamp.json`, the roots, log proofs) goes to the candidate only, so the origin still
//! decides what is newest.
//!
//! - A peer's snapshot is checked against the length and SHA-256 the timestamp signs before the
//!   update reads it (TUF 1.0 §5.5.2).
//! - A peer's role goes through every check of §5.6 (signatures of its delegator's keys, the
//!   version the snapshot names, expiry). When one fails, the update tells this layer
//!   (`Remote::refused`), the peer is dropped (and banned, unless the role was merely expired)
//!   and the update asks again: the next peer, then the candidate.
//!
//! The snapshot's pin and the list of roles are read from the bytes this layer hands to the
//! update itself. The update verifies those bytes before it asks for anything they name, so
//! nothing here is trusted that the update does not check again. A lying peer costs one request
//! and one verification per file, and never fails a round.

use std::collections::HashMap;
use std::time::Duration;

use archy_net::PeerAddr;
use archy_net::swarm::Offence;
use catalog::client::{FetchError, Remote, UpdateError, encode_role_name};
use catalog::metadata::{MetaFile, SignedMetadata, Snapshot, Timestamp};
use iroh::EndpointId;
use iroh::endpoint::Connection;
use sha2::Digest as _;

use crate::sync::swarm::{Fetcher, Received};
use crate::sync::{ProviderFailure, ProviderFailureKind};

/// Swarm peers asked for a round's snapshot and roles (besides the configured `[[peers]]`).
const PEERS: usize = 4;

/// The length and SHA-256 signed metadata gives a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pin {
    length: u64,
    sha256: [u8; 32],
}

impl Pin {
    fn of(meta: &MetaFile) -> Option<Self> {
        let hex = meta.hashes.as_ref()?.get("sha256")?.as_str()?;
        Some(Self { length: meta.length?, sha256: hex::decode(hex).ok()?.try_into().ok()? })
    }

    fn holds(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.length && <[u8; 32]>::from(sha2::Sha256::digest(bytes)) == self.sha256
    }
}

struct MetaPeer {
    addr: PeerAddr,
    conn: Option<Connection>,
    /// Dropped for the rest of the round (it failed, lied or does not have the version).
    dropped: bool,
}

/// Where a round's peers come from and how long each may take.
pub(crate) struct Swarm {
    pub handle: tokio::runtime::Handle,
    pub fetcher: Fetcher,
    pub timeout: Duration,
    /// The configured `[[peers]]`: asked too, whatever they announce (one that is at another
    /// version answers `not found` and is passed over).
    pub seeds: Vec<PeerAddr>,
}

/// A [`Remote`] that asks peers first for the files signed metadata pins by hash.
pub(crate) struct Pinned<R> {
    inner: R,
    /// The candidate's endpoint id (`None`: the origin), for [`Received`].
    via: Option<EndpointId>,
    /// `None`: the candidate is itself a peer, or there is no swarm; everything goes to it.
    swarm: Option<Swarm>,
    peers: Vec<MetaPeer>,
    /// The snapshot's length and hash, by file name.
    pins: HashMap<String, Pin>,
    /// The role files the snapshot names (`<version>.<role>.json`).
    roles: std::collections::HashSet<String>,
    /// Which peer answered a role file last (an index into `peers`).
    answered_by: HashMap<String, usize>,
    /// Bytes handed to the update, by provider.
    pub received: Received,
    /// Peers dropped for a file, with why.
    pub failures: Vec<ProviderFailure>,
}

impl<R: Remote> Pinned<R> {
    pub(super) fn new(inner: R, via: Option<EndpointId>, swarm: Option<Swarm>) -> Self {
        Self {
            inner,
            via,
            swarm,
            peers: Vec::new(),
            pins: HashMap::new(),
            roles: std::collections::HashSet::new(),
            answered_by: HashMap::new(),
            received: Received::default(),
            failures: Vec::new(),
        }
    }

    /// Reads the pins out of a timestamp or snapshot the update is about to check.
    fn learn(&mut self, name: &str, bytes: &[u8]) {
        if name == "timestamp.json" {
            let Ok(ts) = SignedMetadata::<Timestamp>::from_slice(bytes, "timestamp") else { return };
            let meta = ts.signed.snapshot_meta();
            if let Some(pin) = Pin::of(meta) {
                self.pins.insert(format!("{}.snapshot.json", meta.version), pin);
            }
            if let Some(swarm) = &self.swarm {
                let mut peers = swarm.fetcher.metadata_peers_at(ts.signed.version, PEERS);
                for seed in &swarm.seeds {
                    if !peers.iter().any(|p| p.id == seed.id) {
                        peers.push(seed.clone());
                    }
                }
                self.peers = peers.into_iter().map(|addr| MetaPeer { addr, conn: None, dropped: false }).collect();
            }
        } else if name.ends_with(".snapshot.json") {
            let Ok(snapshot) = SignedMetadata::<Snapshot>::from_slice(bytes, "snapshot") else { return };
            for (file, meta) in &snapshot.signed.meta {
                let role = file.strip_suffix(".json").unwrap_or(file);
                let name = format!("{}.{}.json", meta.version, encode_role_name(role));
                match Pin::of(meta) {
                    Some(pin) => _ = self.pins.insert(name, pin),
                    None => _ = self.roles.insert(name),
                }
            }
        }
    }

    /// `name` from the first peer that has it (and whose bytes hold `pin`, when there is one).
    fn ask_peers(&mut self, name: &str, pin: Option<Pin>, max_length: u64) -> Option<Vec<u8>> {
        let swarm = self.swarm.as_ref()?;
        let max_length = pin.map_or(max_length, |p| p.length);
        for (index, peer) in self.peers.iter_mut().enumerate().filter(|(_, p)| !p.dropped) {
            let (id, provider) = (peer.addr.id, peer.addr.to_string());
            let fail = |kind, detail: String| ProviderFailure {
                provider: provider.clone(),
                file: name.to_owned(),
                kind,
                detail,
            };
            let result = ask(swarm, peer, name, max_length);
            match result {
                Ok(bytes) if pin.is_none_or(|pin| pin.holds(&bytes)) => {
                    self.received.add(Some(&id), bytes.len() as u64);
                    self.answered_by.insert(name.to_owned(), index);
                    return Some(bytes);
                }
                Ok(bytes) => {
                    let detail =
                        format!("{name}: {} bytes that do not match the signed length and SHA-256", bytes.len());
                    swarm.fetcher.penalize(id, Offence::BadData, &detail);
                    self.failures.push(fail(ProviderFailureKind::BadData, detail));
                    peer.dropped = true;
                }
                Err(FetchError::TooLarge { .. }) => {
                    let detail = format!("{name}: announced more than the {max_length} bytes it may have");
                    swarm.fetcher.penalize(id, Offence::BadData, &detail);
                    self.failures.push(fail(ProviderFailureKind::BadData, detail));
                    peer.dropped = true;
                }
                // It has moved on to another version: not a fault.
                Err(FetchError::NotFound) => peer.dropped = true,
                Err(e) => {
                    let kind = match e {
                        FetchError::Timeout(_) => ProviderFailureKind::Timeout,
                        _ => ProviderFailureKind::Unreachable,
                    };
                    self.failures.push(fail(kind, format!("{name}: {e}")));
                    peer.dropped = true;
                }
            }
        }
        None
    }
}

/// One metadata request to `peer` over [`archy_net::META_ALPN`], within the swarm's timeout.
fn ask(swarm: &Swarm, peer: &mut MetaPeer, name: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
    let timeout = swarm.timeout;
    let conn = match &peer.conn {
        Some(c) => c.clone(),
        None => {
            let (endpoint, addr) = (swarm.fetcher.endpoint().clone(), peer.addr.endpoint_addr());
            let conn = swarm
                .handle
                .block_on(
                    async move { tokio::time::timeout(timeout, endpoint.connect(addr, archy_net::META_ALPN)).await },
                )
                .map_err(|_| FetchError::Timeout(timeout))?
                .map_err(|e| FetchError::Other(format!("{}: {e}", peer.addr)))?;
            peer.conn = Some(conn.clone());
            conn
        }
    };
    let name = name.to_owned();
    swarm.handle.block_on(async move { archy_net::fetch_meta(&conn, &name, max_length, timeout).await })
}

impl<R: Remote> Remote for Pinned<R> {
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        self.answered_by.remove(name);
        let from_peer = match self.pins.get(name).copied() {
            Some(pin) if pin.length <= max_length => self.ask_peers(name, Some(pin), max_length),
            Some(_) => None,
            None if self.roles.contains(name) => self.ask_peers(name, None, max_length),
            None => None,
        };
        let bytes = match from_peer {
            Some(bytes) => bytes,
            None => {
                let bytes = self.inner.fetch_metadata(name, max_length)?;
                self.received.add(self.via.as_ref(), bytes.len() as u64);
                bytes
            }
        };
        self.learn(name, &bytes);
        Ok(bytes)
    }

    fn fetch_target(&mut self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let bytes = self.inner.fetch_target(path, max_length)?;
        self.received.add(self.via.as_ref(), bytes.len() as u64);
        Ok(bytes)
    }

    /// A peer's role file the update refused: the peer is dropped for the round and the update
    /// asks again. Only an honest peer can hold a role that is merely expired (the origin's copy
    /// is the same), so any other refusal bans it.
    fn refused(&mut self, name: &str, why: &UpdateError) -> bool {
        let Some(index) = self.answered_by.remove(name) else { return false };
        let Some(peer) = self.peers.get_mut(index) else { return false };
        peer.dropped = true;
        let detail = format!("{name}: {why}");
        let kind = if matches!(why, UpdateError::Expired { .. }) {
            ProviderFailureKind::Unreachable
        } else {
            if let Some(swarm) = &self.swarm {
                swarm.fetcher.penalize(peer.addr.id, Offence::BadData, &detail);
            }
            ProviderFailureKind::BadData
        };
        self.failures.push(ProviderFailure { provider: peer.addr.to_string(), file: name.to_owned(), kind, detail });
        true
    }
}
