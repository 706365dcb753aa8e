//! What origins and nodes speak to each other over iroh.
//!
//! - Endpoints are built with relays disabled and no public discovery: peers are reached at the
//!   direct addresses they are configured with ([`PeerAddr`], `<endpoint id>@<ip:port>`).
//! - File bytes travel over iroh-blobs ([`iroh_blobs::ALPN`]) by their BLAKE3 hash; the fetcher
//!   ([`fetch_blob`]) verifies every chunk as it streams (BLAKE3 verified streaming), so a provider
//!   can't make us store bytes that don't hash to what signed metadata names.
//! - Metadata travels over a small request/response protocol, [`META_ALPN`]: the client sends one
//!   file name (`timestamp.json`, `<N>.root.json`, `<V>.snapshot.json`, `<V>.<role>.json`), the
//!   server answers with the bytes it has. Nothing in it is trusted: the node runs the TUF update
//!   workflow over whatever comes back.

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use catalog::client::FetchError;
use iroh::endpoint::{Connection, presets};
use iroh::protocol::{AcceptError, ProtocolHandler};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMode, SecretKey};

/// ALPN of the metadata protocol.
pub const META_ALPN: &[u8] = b"/archy/meta/1";

/// Longest file name a metadata request may carry.
const MAX_NAME: usize = 255;

/// Response status: the bytes follow.
const FOUND: u8 = 0;
/// Response status: the server has no such file.
const NOT_FOUND: u8 = 1;
/// Response status: the request was not a valid file name.
const BAD_REQUEST: u8 = 2;

/// A peer reached directly: its endpoint id and a socket address, written `<id>@<ip:port>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    /// The peer's endpoint id (its public key).
    pub id: EndpointId,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PeerAddr {
    /// The iroh address to dial.
    pub fn endpoint_addr(&self) -> EndpointAddr {
        EndpointAddr::new(self.id).with_ip_addr(self.addr)
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

impl FromStr for PeerAddr {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, addr) = s.split_once('@').context("a peer address is `<endpoint id>@<ip:port>`")?;
        let id = EndpointId::from_str(id).map_err(|e| anyhow::anyhow!("bad endpoint id `{id}`: {e}"))?;
        let addr = addr.parse().with_context(|| format!("bad socket address `{addr}`"))?;
        Ok(Self { id, addr })
    }
}

impl serde::Serialize for PeerAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PeerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Loads the endpoint's secret key from `path`, creating it (0600) on first use, so the
/// endpoint id stays the same across restarts.
pub fn load_or_create_secret(path: &Path) -> anyhow::Result<SecretKey> {
    // iroh endpoint keys are Ed25519, so they are kept in archy's key file format (0600).
    if !path.exists() {
        catalog::keyfile::write_new(path, &catalog::keys::SigningKey::generate())?;
    }
    let key = catalog::keyfile::read(path)?;
    Ok(SecretKey::from_bytes(&key.seed()))
}

/// Binds an iroh endpoint on `bind` with relays disabled and no address lookup: only direct
/// addresses, never traffic to public infrastructure.
pub async fn bind_endpoint(secret: SecretKey, bind: SocketAddr) -> anyhow::Result<Endpoint> {
    let endpoint = Endpoint::builder(presets::Minimal)
        .secret_key(secret)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr(bind)
        .map_err(|e| anyhow::anyhow!("bad bind address {bind}: {e}"))?
        .bind()
        .await
        .map_err(|e| anyhow::anyhow!("binding iroh endpoint on {bind}: {e}"))?;
    Ok(endpoint)
}

/// The address peers can dial: the endpoint id with its first bound socket.
pub fn local_peer_addr(endpoint: &Endpoint) -> anyhow::Result<PeerAddr> {
    let addr = endpoint.bound_sockets().into_iter().next().context("the endpoint has no bound socket")?;
    Ok(PeerAddr { id: endpoint.id(), addr })
}

/// Where a [`MetaServer`] finds the files it serves.
pub trait MetaSource: Send + Sync + std::fmt::Debug + 'static {
    /// The bytes of metadata file `name`, if this side has them.
    fn meta(&self, name: &str) -> Option<Bytes>;
}

/// Serves [`META_ALPN`] requests from a [`MetaSource`].
#[derive(Debug, Clone)]
pub struct MetaServer {
    source: Arc<dyn MetaSource>,
}

impl MetaServer {
    /// A server answering from `source`.
    pub fn new(source: Arc<dyn MetaSource>) -> Self {
        Self { source }
    }
}

/// A metadata file name as the TUF layout has them: no path separators, nothing hidden.
pub fn valid_meta_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name.ends_with(".json")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'%' | b'~'))
}

impl ProtocolHandler for MetaServer {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        loop {
            let Ok((mut send, mut recv)) = connection.accept_bi().await else { return Ok(()) };
            let request = match recv.read_to_end(MAX_NAME + 1).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(peer = %connection.remote_id(), "bad meta request: {e}");
                    return Ok(());
                }
            };
            let name = String::from_utf8_lossy(&request).trim().to_owned();
            let mut response = Vec::with_capacity(9);
            match (valid_meta_name(&name), valid_meta_name(&name).then(|| self.source.meta(&name)).flatten()) {
                (false, _) => response.push(BAD_REQUEST),
                (true, None) => response.push(NOT_FOUND),
                (true, Some(bytes)) => {
                    response.push(FOUND);
                    response.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
                    send.write_all(&response).await.map_err(AcceptError::from_err)?;
                    send.write_all(&bytes).await.map_err(AcceptError::from_err)?;
                    send.finish().map_err(AcceptError::from_err)?;
                    continue;
                }
            }
            send.write_all(&response).await.map_err(AcceptError::from_err)?;
            send.finish().map_err(AcceptError::from_err)?;
        }
    }
}

/// Asks a peer for metadata file `name` over an open connection, reading at most `max_length`
/// bytes and giving up after `timeout`.
pub async fn fetch_meta(
    connection: &Connection,
    name: &str,
    max_length: u64,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let work = async {
        let (mut send, mut recv) = connection.open_bi().await.map_err(|e| FetchError::Other(e.to_string()))?;
        send.write_all(name.as_bytes()).await.map_err(|e| FetchError::Other(e.to_string()))?;
        send.finish().map_err(|e| FetchError::Other(e.to_string()))?;
        let mut status = [0u8; 1];
        recv.read_exact(&mut status).await.map_err(|e| FetchError::Other(format!("reading status: {e}")))?;
        match status[0] {
            FOUND => {}
            NOT_FOUND => return Err(FetchError::NotFound),
            other => return Err(FetchError::Other(format!("peer refused the request (status {other})"))),
        }
        let mut len = [0u8; 8];
        recv.read_exact(&mut len).await.map_err(|e| FetchError::Other(format!("reading length: {e}")))?;
        let len = u64::from_be_bytes(len);
        // Endless data: the announced length is checked before a byte of the body is read.
        if len > max_length {
            return Err(FetchError::TooLarge { limit: max_length });
        }
        let mut body = vec![0u8; len as usize];
        recv.read_exact(&mut body).await.map_err(|e| FetchError::Other(format!("reading body: {e}")))?;
        Ok(body)
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(FetchError::Other(format!("no answer within {timeout:?}"))))
}

/// Why a blob fetch from one provider failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The provider could not be reached.
    #[error("connecting: {0}")]
    Connect(String),
    /// The stream failed, or a chunk did not verify against the BLAKE3 hash.
    #[error("transfer: {0}")]
    Transfer(String),
    /// The provider announced a size other than the signed length.
    #[error("size {found} differs from the signed length {expected}")]
    Size {
        /// The signed length.
        expected: u64,
        /// What the provider sent.
        found: u64,
    },
    /// The provider did not finish in time.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// Writing the local file failed.
    #[error("local write: {0}")]
    Io(#[from] std::io::Error),
}

/// Verified chunks are handed to the writer thread in batches of about this many bytes (one
/// wake-up and one `writev` per batch, not per 16 KiB chunk).
const WRITE_BATCH: usize = 1 << 20;
/// Batches queued for the writer thread before the network side waits for it.
const WRITE_QUEUE: usize = 16;
/// The writer starts writeback (`fdatasync`) each time this much more is written, so the
/// final `fsync` finds little left to do.
const SYNC_EVERY: u64 = 8 << 20;

/// Fetches the blob `hash` of signed length `length` from one provider into `dest` (a
/// temporary file the caller renames once it is complete). Every chunk is verified against
/// `hash` by iroh-blobs' BLAKE3 verified streaming before it is written, and no more than
/// `length` bytes are accepted (endless data). A provider that sends nothing for `stall`
/// (while connecting or between chunks) is given up on: a slow peer can't hold the node.
/// `progress` is called with the bytes received so far.
///
/// Verified chunks go to a writer thread (blocking file I/O, large writes, writeback started
/// as it goes) while the next ones arrive, so the disk does not slow the transfer down. When
/// this returns, that thread has finished: nothing writes to `dest` any more.
pub async fn fetch_blob(
    endpoint: &Endpoint,
    provider: &PeerAddr,
    hash: blake3::Hash,
    length: u64,
    dest: &Path,
    stall: Duration,
    mut progress: impl FnMut(u64) + Send,
) -> Result<(), BlobError> {
    let connection = tokio::time::timeout(stall, endpoint.connect(provider.endpoint_addr(), iroh_blobs::ALPN))
        .await
        .map_err(|_| BlobError::Timeout(stall))?
        .map_err(|e| BlobError::Connect(e.to_string()))?;
    let file = tokio::fs::File::create(dest).await?.into_std().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, rx));
    let received = receive_blob(&connection, hash, length, stall, &tx, &mut progress).await;
    drop(tx);
    // Always waited for, also after an error, so the caller may reuse or remove `dest`.
    let written = writer.await.map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
    received?;
    let file = written?;
    tokio::task::spawn_blocking(move || file.sync_all())
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))??;
    connection.close(0u32.into(), b"done");
    Ok(())
}

/// The network side of [`fetch_blob`]: streams the verified leaves of `hash` into `tx`.
async fn receive_blob(
    connection: &Connection,
    hash: blake3::Hash,
    length: u64,
    stall: Duration,
    tx: &tokio::sync::mpsc::Sender<Vec<Bytes>>,
    progress: &mut (impl FnMut(u64) + Send),
) -> Result<(), BlobError> {
    use iroh_blobs::get::request::GetBlobItem;
    use n0_future::StreamExt as _;
    let mut items = iroh_blobs::get::request::get_blob(connection.clone(), iroh_blobs::Hash::from(hash));
    let mut written = 0u64;
    let (mut batch, mut batched) = (Vec::new(), 0usize);
    // One timer, re-armed per item (not one per chunk).
    let deadline = tokio::time::sleep(stall);
    tokio::pin!(deadline);
    loop {
        deadline.as_mut().reset(tokio::time::Instant::now() + stall);
        let item = tokio::select! {
            biased;
            item = items.next() => item,
            () = &mut deadline => return Err(BlobError::Timeout(stall)),
        };
        match item {
            Some(GetBlobItem::Item(bao_tree::io::BaoContentItem::Leaf(leaf))) => {
                let end = leaf.offset + leaf.data.len() as u64;
                if leaf.offset != written || end > length {
                    return Err(BlobError::Size { expected: length, found: end });
                }
                written = end;
                batched += leaf.data.len();
                batch.push(leaf.data);
                if batched >= WRITE_BATCH {
                    batched = 0;
                    // The writer only stops early on a write error, which `fetch_blob` reports.
                    if tx.send(std::mem::take(&mut batch)).await.is_err() {
                        return Ok(());
                    }
                }
                progress(written);
            }
            Some(GetBlobItem::Item(_)) => {}
            Some(GetBlobItem::Done(_)) => {
                if !batch.is_empty() {
                    let _ = tx.send(batch).await;
                }
                break;
            }
            Some(GetBlobItem::Error(e)) => return Err(BlobError::Transfer(e.to_string())),
            None => return Err(BlobError::Transfer("stream ended early".into())),
        }
    }
    if written != length {
        return Err(BlobError::Size { expected: length, found: written });
    }
    Ok(())
}

/// The writer thread of [`fetch_blob`]: writes the batches in order, until the channel closes.
fn write_chunks(
    mut file: std::fs::File,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Bytes>>,
) -> std::io::Result<std::fs::File> {
    use std::io::{IoSlice, Write as _};
    let (mut written, mut synced) = (0u64, 0u64);
    while let Some(batch) = rx.blocking_recv() {
        // `writev` straight from the received buffers (`write_all_vectored` is not stable).
        let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = file.write_vectored(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            written += n as u64;
            IoSlice::advance_slices(&mut rest, n);
        }
        if written - synced >= SYNC_EVERY {
            file.sync_data()?;
            synced = written;
        }
    }
    Ok(file)
}
