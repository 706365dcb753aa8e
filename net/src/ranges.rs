//! One large file from several providers at once, in verified ranges, peers first and the origin
//! last ([`fetch_ranges`]).
//!
//! The file is cut into pieces of [`PIECE`] bytes (1,024 BLAKE3 chunks). Each piece is asked of
//! one provider as an iroh-blobs range request; BLAKE3 verified streaming checks every chunk of it
//! against the signed root hash on its own, so a piece from a liar is refused without trusting
//! anything else it sent, and only verified chunks reach the store. The store is the node's
//! iroh-blobs store, which serves every verified chunk it has to other fetchers while the file
//! is still arriving: nodes fetching the same file at the same moment feed each other.
//!
//! Who is asked for what:
//! - Each peer is observed (iroh-blobs `observe`: the ranges it holds, updated as they grow) and
//!   asked only for pieces it has, the rarest among its fetchers' peers first.
//! - The origin is asked only for pieces no live peer has started (any chunk of it shown), so
//!   that with many nodes starting at once each takes different pieces from the origin and the
//!   rest from each other, and the origin sends each piece about once. When nothing has arrived
//!   for a stall period, it is also asked for pieces a peer started and did not finish; once no
//!   peer is left, for everything.
//! - A provider that sends bytes that do not verify, can't serve what it has shown, goes silent
//!   for `stall` or is slower than [`crate::MIN_RATE`] for a piece is dropped for this file (and
//!   reported, [`ProviderDrop`]); its pieces go back to the pool. The origin is dropped only like
//!   any other provider, and the fetch fails only when nobody is left.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bao_tree::{ChunkNum, ChunkRanges};
use iroh::Endpoint;
use iroh_blobs::api::Store;
use iroh_blobs::protocol::{GetRequest, ObserveRequest};

use crate::PeerAddr;

/// Bytes per piece.
pub const PIECE: u64 = 1 << 20;
const PIECE_CHUNKS: u64 = PIECE / 1024;
/// Most peers asked at once for one file.
pub const MAX_PEERS_PER_FILE: usize = 8;

/// One provider of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Where it is.
    pub addr: PeerAddr,
    /// Whether it is the origin (asked last).
    pub origin: bool,
    /// Whether it announced the whole file (a peer that then shows less lied, and is dropped).
    pub claims_complete: bool,
}

/// Why a provider was dropped for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropKind {
    /// It could not be reached, or closed the stream.
    Unreachable,
    /// It went silent, or was too slow.
    Timeout,
    /// Its bytes did not verify against the signed hash.
    BadData,
    /// It could not serve a range it had shown or announced.
    NotHeld,
    /// It announced the whole file but shows less of it.
    FalseClaim,
}

/// A provider dropped for a file, and why.
#[derive(Debug, Clone)]
pub struct ProviderDrop {
    /// The provider.
    pub provider: Provider,
    /// Why.
    pub kind: DropKind,
    /// What happened, for people.
    pub detail: String,
}

/// What a fetch received, and from whom.
#[derive(Debug, Clone, Default)]
pub struct RangesOutcome {
    /// Payload bytes received from the origin.
    pub from_origin: u64,
    /// Payload bytes received from peers.
    pub from_peers: u64,
    /// Bytes by provider endpoint id.
    pub by_provider: HashMap<iroh::EndpointId, u64>,
    /// Providers dropped on the way.
    pub dropped: Vec<ProviderDrop>,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum RangesError {
    /// Every provider was dropped before the file was whole.
    #[error("no provider delivered every range ({} dropped: {})", .0.len(), summary(.0))]
    Exhausted(Vec<ProviderDrop>),
    /// The local store failed.
    #[error("local blob store: {0}")]
    Store(String),
}

fn summary(drops: &[ProviderDrop]) -> String {
    drops.iter().map(|d| format!("{}: {:?}: {}", d.provider.addr, d.kind, d.detail)).collect::<Vec<_>>().join("; ")
}

impl DropKind {
    /// The kind of a failed range request, from what iroh-blobs reported.
    fn of_get(e: &iroh_blobs::get::GetError) -> Self {
        if crate::blobs::sent_bad_bytes(e) {
            Self::BadData
        } else if crate::blobs::lacks_data(e) {
            Self::NotHeld
        } else {
            Self::Unreachable
        }
    }
}

struct State {
    /// Pieces still to fetch.
    need: BTreeSet<u64>,
    /// Pieces being fetched now.
    inflight: BTreeSet<u64>,
    /// What each live peer has shown (chunk ranges), by provider index.
    shown: HashMap<usize, ChunkRanges>,
    outcome: RangesOutcome,
    /// Peers still working.
    live_peers: usize,
    /// Peers that announced the whole file and showed less.
    false_claims: BTreeSet<usize>,
    /// When a piece last arrived.
    progressed: std::time::Instant,
    received: u64,
}

impl State {
    fn shown_by_any_peer(&self, piece: u64, length: u64) -> bool {
        self.shown.values().any(|r| covers(r, piece, length))
    }

    /// Whether some live peer shows any chunk of `piece`: it is arriving there (from the origin,
    /// most likely), and will be whole there soon.
    fn started_at_a_peer(&self, piece: u64, length: u64) -> bool {
        let wanted = piece_range(piece, length);
        self.shown.values().any(|r| !(r.clone() & wanted.clone()).is_empty())
    }
}

fn piece_range(piece: u64, length: u64) -> ChunkRanges {
    let start = piece * PIECE_CHUNKS;
    let end = ((piece + 1) * PIECE).min(length).div_ceil(1024).max(start + 1);
    ChunkRanges::from(ChunkNum(start)..ChunkNum(end))
}

/// Whether `ranges` hold all of `piece` of a file of `length` bytes (the last piece may be short).
fn covers(ranges: &ChunkRanges, piece: u64, length: u64) -> bool {
    let wanted = piece_range(piece, length);
    (ranges.clone() & wanted.clone()) == wanted
}

/// Which pieces of `hash` the local store holds verified.
async fn local_pieces(
    store: &Store,
    hash: iroh_blobs::Hash,
    pieces: u64,
    length: u64,
) -> Result<BTreeSet<u64>, RangesError> {
    let bitfield = store.observe(hash).await.map_err(|e| RangesError::Store(e.to_string()))?;
    if bitfield.is_complete() {
        return Ok((0..pieces).collect());
    }
    Ok((0..pieces).filter(|p| covers(&bitfield.ranges, *p, length)).collect())
}

/// Fetches `hash` (of signed length `length`) into `store` from `providers` (see the module
/// docs): peers (those with `origin == false`, in the order given, at most
/// [`MAX_PEERS_PER_FILE`] at once) for the pieces they have, the origin for the rest. Pieces the
/// store already holds are not fetched again (a restarted fetch resumes). `progress` gets the
/// bytes received so far.
pub async fn fetch_ranges(
    store: &Store,
    endpoint: &Endpoint,
    hash: blake3::Hash,
    length: u64,
    providers: Vec<Provider>,
    stall: Duration,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<RangesOutcome, RangesError> {
    let bhash = iroh_blobs::Hash::from(hash);
    let pieces = length.div_ceil(PIECE).max(1);
    let have = local_pieces(store, bhash, pieces, length).await?;
    let need: BTreeSet<u64> = (0..pieces).filter(|p| !have.contains(p)).collect();
    if need.is_empty() {
        return Ok(RangesOutcome::default());
    }
    let (origins, peers): (Vec<_>, Vec<_>) = providers.into_iter().partition(|p| p.origin);
    let state = Arc::new(Mutex::new(State {
        need,
        inflight: BTreeSet::new(),
        shown: HashMap::new(),
        outcome: RangesOutcome::default(),
        live_peers: 0,
        false_claims: BTreeSet::new(),
        progressed: std::time::Instant::now(),
        received: have.len() as u64 * PIECE,
    }));
    let changed = Arc::new(tokio::sync::Notify::new());
    let ctx =
        Ctx { store: store.clone(), endpoint: endpoint.clone(), hash: bhash, length, stall, state, changed, progress };
    let mut tasks = tokio::task::JoinSet::new();
    // Peers beyond the first MAX_PEERS_PER_FILE wait in line for a dropped one's place.
    let queue = Arc::new(Mutex::new(peers.into_iter().enumerate().collect::<std::collections::VecDeque<_>>()));
    for _ in 0..MAX_PEERS_PER_FILE {
        let (ctx, queue) = (ctx.clone(), queue.clone());
        tasks.spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front();
                let Some((index, provider)) = next else { return };
                ctx.lock().live_peers += 1;
                let dropped = ctx.clone().peer_worker(index, provider).await;
                {
                    let mut s = ctx.lock();
                    s.live_peers -= 1;
                    s.shown.remove(&index);
                    if let Some(d) = dropped {
                        tracing::warn!(provider = %d.provider.addr, kind = ?d.kind, "provider dropped: {}", d.detail);
                        s.outcome.dropped.push(d);
                    }
                }
                ctx.changed.notify_waiters();
                if ctx.done() {
                    return;
                }
            }
        });
    }
    for (i, origin) in origins.into_iter().enumerate() {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            if let Some(d) = ctx.clone().origin_worker(usize::MAX - i, origin).await {
                tracing::warn!(provider = %d.provider.addr, kind = ?d.kind, "origin dropped: {}", d.detail);
                ctx.lock().outcome.dropped.push(d);
            }
            ctx.changed.notify_waiters();
        });
    }
    while tasks.join_next().await.is_some() {}
    let s = ctx.lock();
    if !s.need.is_empty() {
        return Err(RangesError::Exhausted(s.outcome.dropped.clone()));
    }
    Ok(s.outcome.clone())
}

#[derive(Clone)]
struct Ctx {
    store: Store,
    endpoint: Endpoint,
    hash: iroh_blobs::Hash,
    length: u64,
    stall: Duration,
    state: Arc<Mutex<State>>,
    changed: Arc<tokio::sync::Notify>,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
}

impl Ctx {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn done(&self) -> bool {
        let s = self.lock();
        s.need.is_empty() && s.inflight.is_empty()
    }

    async fn connect(&self, provider: &Provider) -> Result<iroh::endpoint::Connection, ProviderDrop> {
        let drop = |kind, detail: String| ProviderDrop { provider: provider.clone(), kind, detail };
        match tokio::time::timeout(self.stall, self.endpoint.connect(provider.addr.endpoint_addr(), iroh_blobs::ALPN))
            .await
        {
            Err(_) => Err(drop(DropKind::Timeout, format!("no connection within {:?}", self.stall))),
            Ok(Err(e)) => Err(drop(DropKind::Unreachable, e.to_string())),
            Ok(Ok(c)) => Ok(c),
        }
    }

    /// Waits for something to change (a piece done, a provider dropped, a peer showing more),
    /// or a short while.
    async fn wait(&self) {
        let _ = tokio::time::timeout(Duration::from_millis(250), self.changed.notified()).await;
    }

    /// Fetches `piece` from `conn`; the bytes it received, or why the provider is dropped.
    async fn get_piece(
        &self,
        conn: &iroh::endpoint::Connection,
        provider: &Provider,
        piece: u64,
    ) -> Result<u64, ProviderDrop> {
        let drop = |kind, detail: String| ProviderDrop { provider: provider.clone(), kind, detail };
        let request = GetRequest::blob_ranges(self.hash, piece_range(piece, self.length));
        let piece_len = PIECE.min(self.length - piece * PIECE);
        let deadline = crate::deadline(piece_len, self.stall);
        let get = self.store.remote().execute_get(conn.clone(), request);
        let stats = match tokio::time::timeout(deadline, get.complete()).await {
            Err(_) => return Err(drop(DropKind::Timeout, format!("piece {piece} not delivered within {deadline:?}"))),
            Ok(Err(e)) => return Err(drop(DropKind::of_get(&e), format!("piece {piece}: {e:#}"))),
            Ok(Ok(stats)) => stats,
        };
        // The provider may end the stream early (it does not have the range): what it sent is
        // verified and kept, but the piece is not whole.
        let bitfield = self.store.observe(self.hash).await.map_err(|e| drop(DropKind::Unreachable, e.to_string()))?;
        if !(bitfield.is_complete() || covers(&bitfield.ranges, piece, self.length)) {
            return Err(drop(DropKind::NotHeld, format!("piece {piece}: ended before the range was whole")));
        }
        Ok(stats.payload_bytes_read)
    }

    fn finish_piece(&self, piece: u64, provider: &Provider, result: &Result<u64, ProviderDrop>) {
        let mut s = self.lock();
        s.inflight.remove(&piece);
        match result {
            Ok(bytes) => {
                s.need.remove(&piece);
                s.progressed = std::time::Instant::now();
                if provider.origin {
                    s.outcome.from_origin += bytes;
                } else {
                    s.outcome.from_peers += bytes;
                }
                *s.outcome.by_provider.entry(provider.addr.id).or_default() += bytes;
                s.received += bytes;
                let received = s.received;
                drop(s);
                (self.progress)(received);
            }
            Err(_) => {
                s.need.insert(piece);
            }
        }
        self.changed.notify_waiters();
    }

    /// A peer: observe what it has, take the rarest of those pieces. Returns why it was dropped,
    /// or `None` when the file is whole.
    async fn peer_worker(self, index: usize, provider: Provider) -> Option<ProviderDrop> {
        use n0_future::StreamExt as _;
        let conn = match self.connect(&provider).await {
            Ok(c) => c,
            Err(d) => return Some(d),
        };
        // What the peer has, kept current by its updates.
        let observer = {
            let (ctx, conn, provider_claims) = (self.clone(), conn.clone(), provider.claims_complete);
            tokio::spawn(async move {
                let mut updates = ctx.store.remote().observe(conn, ObserveRequest::new(ctx.hash));
                let mut shown = ChunkRanges::empty();
                let mut first = true;
                while let Some(Ok(update)) = updates.next().await {
                    if std::mem::take(&mut first) && provider_claims && !update.is_complete() {
                        ctx.lock().false_claims.insert(index);
                        ctx.changed.notify_waiters();
                        return;
                    }
                    if update.is_complete() {
                        shown = ChunkRanges::all();
                    } else {
                        shown |= update.ranges.clone();
                    }
                    ctx.lock().shown.insert(index, shown.clone());
                    ctx.changed.notify_waiters();
                }
            })
        };
        let result = loop {
            if self.done() {
                break None;
            }
            if self.lock().false_claims.contains(&index) {
                break Some(ProviderDrop {
                    provider: provider.clone(),
                    kind: DropKind::FalseClaim,
                    detail: "announced the whole file but shows less of it".into(),
                });
            }
            let pick = {
                let mut s = self.lock();
                let shown = s.shown.get(&index).cloned().unwrap_or_default();
                // Rarest first: the piece fewest live peers have shown.
                let pick = s
                    .need
                    .iter()
                    .filter(|p| !s.inflight.contains(p) && covers(&shown, **p, self.length))
                    .min_by_key(|p| {
                        (s.shown.values().filter(|r| covers(r, **p, self.length)).count(), rand::random::<u16>())
                    })
                    .copied();
                if let Some(p) = pick {
                    s.need.remove(&p);
                    s.inflight.insert(p);
                }
                pick
            };
            let Some(piece) = pick else {
                // Nothing it shows is needed, and nothing has arrived for a while: it makes way
                // for the next peer in line (not an offence: it may never have had the file).
                if self.lock().progressed.elapsed() > self.stall * 3 {
                    break None;
                }
                if observer.is_finished() && !self.lock().shown.contains_key(&index) {
                    break Some(ProviderDrop {
                        provider: provider.clone(),
                        kind: DropKind::Unreachable,
                        detail: "closed the observation of its ranges".into(),
                    });
                }
                self.wait().await;
                continue;
            };
            let result = self.get_piece(&conn, &provider, piece).await;
            self.finish_piece(piece, &provider, &result);
            if let Err(d) = result {
                break Some(d);
            }
        };
        observer.abort();
        conn.close(0u32.into(), b"done");
        result
    }

    /// The origin: only pieces no live peer has shown (everything once no peer is left).
    async fn origin_worker(self, _index: usize, provider: Provider) -> Option<ProviderDrop> {
        let mut conn: Option<iroh::endpoint::Connection> = None;
        loop {
            if self.done() {
                return None;
            }
            let pick = {
                let mut s = self.lock();
                // Pieces no peer has started; once nothing has arrived for a stall period, also
                // pieces a peer started but has not finished (it may never).
                let stuck = s.progressed.elapsed() > self.stall;
                let candidates: Vec<u64> = s
                    .need
                    .iter()
                    .filter(|p| !s.inflight.contains(p))
                    .filter(|p| {
                        if stuck {
                            !s.shown_by_any_peer(**p, self.length)
                        } else {
                            !s.started_at_a_peer(**p, self.length)
                        }
                    })
                    .copied()
                    .collect();
                // A random one: origins serving many nodes at once hand each a different piece.
                let pick = (!candidates.is_empty()).then(|| candidates[rand::random_range(0..candidates.len())]);
                if let Some(p) = pick {
                    s.need.remove(&p);
                    s.inflight.insert(p);
                }
                pick
            };
            let Some(piece) = pick else {
                self.wait().await;
                continue;
            };
            let c = match &conn {
                Some(c) => c.clone(),
                None => match self.connect(&provider).await {
                    Ok(c) => {
                        conn = Some(c.clone());
                        c
                    }
                    Err(d) => {
                        self.finish_piece(piece, &provider, &Err(d.clone()));
                        return Some(d);
                    }
                },
            };
            let result = self.get_piece(&c, &provider, piece).await;
            self.finish_piece(piece, &provider, &result);
            if let Err(d) = result {
                return Some(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_file_and_nothing_past_it() {
        let length = 2 * PIECE + 5;
        assert_eq!(length.div_ceil(PIECE), 3);
        let last = piece_range(2, length);
        assert_eq!(last, ChunkRanges::from(ChunkNum(2048)..ChunkNum(2049)));
        assert!(covers(&ChunkRanges::all(), 2, length));
        assert!(covers(&ChunkRanges::from(ChunkNum(2048)..), 2, length));
        assert!(covers(&ChunkRanges::from(ChunkNum(1024)..ChunkNum(2048)), 1, length));
        assert!(!covers(&ChunkRanges::from(ChunkNum(1024)..ChunkNum(2000)), 1, length));
        assert!(!covers(&ChunkRanges::from(ChunkNum(0)..ChunkNum(1024)), 1, length));
    }
}
