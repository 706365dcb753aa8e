//! Blob transfer over iroh-blobs ([`iroh_blobs::ALPN`]): fetching one file by its BLAKE3 hash from
//! one provider with every chunk verified as it streams, and serving files as blobs.
//!
//! A provider can't make the fetcher store bytes that don't hash to what signed metadata names
//! (BLAKE3 verified streaming), nor more bytes than the signed length, nor hold it with silence.
//!
//! ```
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("manifest.json");
//! std::fs::write(&file, b"verified bytes")?;
//! let hash = blake3::hash(b"verified bytes");
//!
//! // A provider serving a folder's files as blobs.
//! let loopback = "127.0.0.1:0".parse()?;
//! let endpoint = archy_net::bind_endpoint(iroh::SecretKey::from_bytes(&[3; 32]), loopback).await?;
//! let provider = archy_net::local_peer_addr(&endpoint)?;
//! let store = iroh_blobs::store::mem::MemStore::new();
//! let mut served = archy_net::FolderBlobs::default();
//! assert_eq!(served.import_new(&store, dir.path()).await?, 1);
//! let router = iroh::protocol::Router::builder(endpoint)
//!     .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&store, None))
//!     .spawn();
//!
//! // A fetcher: verified streaming into a temporary file.
//! let client = archy_net::bind_endpoint(iroh::SecretKey::from_bytes(&[4; 32]), loopback).await?;
//! let dest = dir.path().join(".part");
//! archy_net::fetch_blob(&client, &provider, hash, 14, &dest, Duration::from_secs(5), |_| {}).await?;
//! assert_eq!(std::fs::read(&dest)?, b"verified bytes");
//! // The signed length is enforced: a provider can't send more (or less).
//! let short = archy_net::fetch_blob(&client, &provider, hash, 4, &dest, Duration::from_secs(5), |_| {}).await;
//! assert!(matches!(short, Err(archy_net::BlobError::Size { .. })));
//! router.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use iroh::Endpoint;
use iroh::endpoint::Connection;

use crate::PeerAddr;

/// Why a blob fetch from one provider failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The provider could not be reached.
    #[error("connecting: {0}")]
    Connect(String),
    /// A chunk or a parent of the BLAKE3 tree did not verify against the hash: the provider
    /// sent bad bytes.
    #[error("bytes that do not verify: {0}")]
    Verify(String),
    /// The stream failed (the provider reset it, does not have the file, or went away).
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
    /// The provider kept sending, but slower than [`MIN_RATE`] allows for the whole file.
    #[error("{received} of {length} bytes after {elapsed:?}: slower than the {} KiB/s a provider must keep up", MIN_RATE / 1024)]
    TooSlow {
        /// Bytes received.
        received: u64,
        /// The signed length.
        length: u64,
        /// How long it ran.
        elapsed: Duration,
    },
    /// Writing the local file failed.
    #[error("local write: {0}")]
    Io(#[from] std::io::Error),
}

/// The slowest average rate a provider may keep up, in bytes per second: a transfer may take
/// [`deadline`] at most, so a provider that sends a chunk just before each stall timeout cannot
/// hold a fetch (and whatever waits for it) for days.
pub const MIN_RATE: u64 = 64 * 1024;

/// How long a transfer of `length` bytes may take in all: three stall periods to get going, plus
/// the file at [`MIN_RATE`].
pub fn deadline(length: u64, stall: Duration) -> Duration {
    stall * 3 + Duration::from_secs_f64(length as f64 / MIN_RATE as f64)
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
/// (while connecting or between chunks) is given up on, and so is one that has not delivered the
/// whole file by its [`deadline`]: a slow peer can't hold the node.
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
    progress: impl FnMut(u64) + Send,
) -> Result<(), BlobError> {
    let connection = connect(endpoint, provider, stall).await?;
    let result = fetch_blob_over(&connection, hash, length, dest, stall, true, progress).await;
    connection.close(0u32.into(), b"done");
    result
}

/// Opens an iroh-blobs connection to `provider`, given up on after `stall`.
pub async fn connect(endpoint: &Endpoint, provider: &PeerAddr, stall: Duration) -> Result<Connection, BlobError> {
    tokio::time::timeout(stall, endpoint.connect(provider.endpoint_addr(), iroh_blobs::ALPN))
        .await
        .map_err(|_| BlobError::Timeout(stall))?
        .map_err(|e| BlobError::Connect(e.to_string()))
}

/// [`fetch_blob`] over a connection the caller keeps (many small files from one provider take
/// one connection, not one each). With `sync` false the file is not fsynced (the caller makes
/// many small files durable at once, or re-fetches what a crash damaged).
pub async fn fetch_blob_over(
    connection: &Connection,
    hash: blake3::Hash,
    length: u64,
    dest: &Path,
    stall: Duration,
    sync: bool,
    mut progress: impl FnMut(u64) + Send,
) -> Result<(), BlobError> {
    let file = tokio::fs::File::create(dest).await?.into_std().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, rx));
    let received = receive_blob(connection, hash, length, stall, &tx, &mut progress).await;
    drop(tx);
    // Always waited for, also after an error, so the caller may reuse or remove `dest`.
    let written = writer.await.map_err(|e| BlobError::Io(std::io::Error::other(e)))?;
    received?;
    let file = written?;
    if sync {
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(|e| BlobError::Io(std::io::Error::other(e)))??;
    }
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
    let started = tokio::time::Instant::now();
    let overall = tokio::time::sleep(deadline(length, stall));
    tokio::pin!(overall);
    // One stall timer, re-armed per item (not one per chunk).
    let stalled = tokio::time::sleep(stall);
    tokio::pin!(stalled);
    loop {
        stalled.as_mut().reset(tokio::time::Instant::now() + stall);
        let item = tokio::select! {
            biased;
            item = items.next() => item,
            () = &mut stalled => return Err(BlobError::Timeout(stall)),
            () = &mut overall => {
                return Err(BlobError::TooSlow { received: written, length, elapsed: started.elapsed() });
            }
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
            Some(GetBlobItem::Error(e)) if sent_bad_bytes(&e) => return Err(BlobError::Verify(e.to_string())),
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

/// Serves the files of a folder as blobs: each regular file (recursively; names starting with
/// `.` are temporary and skipped) is added to an iroh-blobs store by reference, not copied, and
/// remembered, so a folder that grows is imported again cheaply.
///
/// Only import files whose bytes were verified (or are the origin's own): a blob is served under
/// the BLAKE3 of what the file holds, so a fetcher still verifies every chunk.
#[derive(Debug, Default)]
pub struct FolderBlobs {
    imported: HashSet<PathBuf>,
}

impl FolderBlobs {
    /// Adds the files under `dir` not imported before to `store`; returns how many were added.
    /// A missing folder has nothing to serve yet.
    pub async fn import_new(&mut self, store: &iroh_blobs::api::Store, dir: &Path) -> anyhow::Result<usize> {
        let mut added = 0;
        let mut stack = vec![dir.to_owned()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_name().to_string_lossy().starts_with('.') || self.imported.contains(&path) {
                    continue;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                    continue;
                }
                store
                    .blobs()
                    .add_path_with_opts(iroh_blobs::api::blobs::AddPathOptions {
                        path: path.clone(),
                        format: iroh_blobs::BlobFormat::Raw,
                        mode: iroh_blobs::api::blobs::ImportMode::TryReference,
                    })
                    .with_tag()
                    .await
                    .map_err(|e| anyhow::anyhow!("blob store, importing {}: {e}", path.display()))?;
                self.imported.insert(path);
                added += 1;
            }
        }
        Ok(added)
    }
}

/// Whether a failed get means the provider's bytes did not verify (BLAKE3 verified streaming:
/// a leaf or parent hash of the tree mismatched), rather than a stream that ended or broke.
pub(crate) fn sent_bad_bytes(e: &iroh_blobs::get::GetError) -> bool {
    use iroh_blobs::get::fsm::DecodeError;
    matches!(
        e,
        iroh_blobs::get::GetError::Decode {
            source: DecodeError::LeafHashMismatch { .. } | DecodeError::ParentHashMismatch { .. },
            ..
        }
    )
}

/// Whether a failed get means the provider does not have (all of) what was asked.
pub(crate) fn lacks_data(e: &iroh_blobs::get::GetError) -> bool {
    use iroh_blobs::get::fsm::{AtBlobHeaderNextError, DecodeError};
    matches!(
        e,
        iroh_blobs::get::GetError::Decode {
            source: DecodeError::ChunkNotFound { .. }
                | DecodeError::LeafNotFound { .. }
                | DecodeError::ParentNotFound { .. },
            ..
        } | iroh_blobs::get::GetError::AtBlobHeaderNext { source: AtBlobHeaderNextError::NotFound { .. }, .. }
    )
}
