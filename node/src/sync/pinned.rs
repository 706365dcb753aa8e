//! Metadata pinned by hash comes from peers first, the candidate last (rule 5).
//!
//! The timestamp names the snapshot by version, length and SHA-256 (TUF 1.0 §4.6), so while the
//! origin is the round's candidate the snapshot is asked of the swarm's peers that announce the
//! catalog version of the origin's timestamp first, checked against that length and hash before
//! the update reads it (§5.5.2), and asked of the origin last. A role file the snapshot pins the
//! same way (§4.4 METAFILES allows it; archy's snapshots name roles by version only, D4) is
//! treated alike. Everything else (`timestamp.json`, the roots, roles pinned by version only, log
//! proofs) goes to the candidate only: the origin decides what is newest, and a role pinned by
//! version only could be another file its role key signed at that version, which the origin
//! never served (docs/decisions.md D42).
//!
//! The pins are read from the timestamp and snapshot this layer hands to the update itself. The
//! update checks them before it asks for anything they pin, so a pin only names what the update
//! checks again. A timestamp of the trusted version with other bytes (equivocation: the update
//! keeps the trusted one) pins nothing. A lying peer costs one request and is banned; it never
//! fails a round.

use std::collections::HashMap;
use std::time::Duration;

use archy_net::PeerAddr;
use archy_net::swarm::Offence;
use catalog::client::{FetchError, Remote, encode_role_name};
use catalog::metadata::{MetaFile, SignedMetadata, Snapshot, Timestamp};
use iroh::EndpointId;
use iroh::endpoint::Connection;
use sha2::Digest as _;

use crate::sync::swarm::{Fetcher, Received};
use crate::sync::{ProviderFailure, ProviderFailureKind};

/// Swarm peers asked for a round's pinned metadata (besides the configured `[[peers]]`).
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
    /// The lengths and hashes signed metadata gives files, by file name.
    pins: HashMap<String, Pin>,
    /// The trusted timestamp the round starts from.
    trusted_timestamp: Option<Vec<u8>>,
    /// Bytes handed to the update, by provider.
    pub received: Received,
    /// Peers dropped for a file, with why.
    pub failures: Vec<ProviderFailure>,
}

impl<R: Remote> Pinned<R> {
    /// `trusted_timestamp`: the bytes of the timestamp the node trusts now, if any.
    pub(super) fn new(
        inner: R,
        via: Option<EndpointId>,
        swarm: Option<Swarm>,
        trusted_timestamp: Option<Vec<u8>>,
    ) -> Self {
        Self {
            inner,
            via,
            swarm,
            peers: Vec::new(),
            pins: HashMap::new(),
            trusted_timestamp,
            received: Received::default(),
            failures: Vec::new(),
        }
    }

    /// Reads the pins out of a timestamp or snapshot the update is about to check.
    fn learn(&mut self, name: &str, bytes: &[u8]) {
        if name == "timestamp.json" {
            let Ok(ts) = SignedMetadata::<Timestamp>::from_slice(bytes, "timestamp") else { return };
            let trusted = self.trusted_timestamp.as_deref();
            let trusted_version = trusted
                .and_then(|t| SignedMetadata::<Timestamp>::from_slice(t, "timestamp").ok())
                .map(|t| t.signed.version);
            if trusted_version == Some(ts.signed.version) && trusted != Some(bytes) {
                return; // Equivocation (§5.4.3): the update keeps the trusted one.
            }
            let meta = ts.signed.snapshot_meta();
            if let Some(pin) = Pin::of(meta) {
                self.pins.insert(format!("{}.snapshot.json", meta.version), pin);
            }
            if let Some(swarm) = &self.swarm {
                let mut peers = swarm.fetcher.metadata_peers_at(ts.signed.version, PEERS);
                for seed in &swarm.seeds {
                    if !peers.iter().any(|p| p.id == seed.id) && !swarm.fetcher.is_banned(&seed.id) {
                        peers.push(seed.clone());
                    }
                }
                self.peers = peers.into_iter().map(|addr| MetaPeer { addr, conn: None, dropped: false }).collect();
            }
        } else if name.ends_with(".snapshot.json") {
            let Ok(snapshot) = SignedMetadata::<Snapshot>::from_slice(bytes, "snapshot") else { return };
            for (file, meta) in &snapshot.signed.meta {
                let role = file.strip_suffix(".json").unwrap_or(file);
                if let Some(pin) = Pin::of(meta) {
                    self.pins.insert(format!("{}.{}.json", meta.version, encode_role_name(role)), pin);
                }
            }
        }
    }

    /// `name` from the first peer whose bytes hold `pin`.
    fn ask_peers(&mut self, name: &str, pin: Pin) -> Option<Vec<u8>> {
        let swarm = self.swarm.as_ref()?;
        let max_length = pin.length;
        for peer in self.peers.iter_mut().filter(|p| !p.dropped) {
            let (id, provider) = (peer.addr.id, peer.addr.to_string());
            let fail = |kind, detail: String| ProviderFailure {
                provider: provider.clone(),
                file: name.to_owned(),
                kind,
                detail,
            };
            let result = ask(swarm, peer, name, max_length);
            match result {
                Ok(bytes) if pin.holds(&bytes) => {
                    self.received.add(Some(&id), bytes.len() as u64);
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
                    let detail = format!("{name}: announced more than the signed {max_length} bytes");
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
        let from_peer = match self.pins.get(name).copied() {
            Some(pin) if pin.length <= max_length => self.ask_peers(name, pin),
            _ => None,
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
}
