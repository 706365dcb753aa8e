//! The metadata protocol, [`META_ALPN`]: TUF metadata by file name over iroh.
//!
//! The client opens a bi-directional stream and sends one file name (`timestamp.json`,
//! `<N>.root.json`, `<V>.snapshot.json`, `<V>.<role>.json`); the server answers with one status
//! byte (found, not found, bad request) and, when found, an 8-byte big-endian length and the
//! bytes. Nothing in it is trusted: the node runs the TUF update workflow over whatever comes
//! back, and the announced length is checked against the caller's limit before the body is read.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use archy_net::{META_ALPN, MetaServer, MetaSource};
//! use catalog::client::FetchError;
//!
//! #[derive(Debug)]
//! struct OneFile;
//! impl MetaSource for OneFile {
//!     fn meta(&self, name: &str) -> Option<bytes::Bytes> {
//!         (name == "timestamp.json").then(|| bytes::Bytes::from_static(b"{}"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let loopback = "127.0.0.1:0".parse()?;
//! let server = archy_net::bind_endpoint(iroh::SecretKey::from_bytes(&[1; 32]), loopback).await?;
//! let server_addr = archy_net::local_peer_addr(&server)?;
//! let router = iroh::protocol::Router::builder(server).accept(META_ALPN, MetaServer::new(Arc::new(OneFile))).spawn();
//!
//! let client = archy_net::bind_endpoint(iroh::SecretKey::from_bytes(&[2; 32]), loopback).await?;
//! let conn = client.connect(server_addr.endpoint_addr(), META_ALPN).await?;
//! let timeout = Duration::from_secs(5);
//! assert_eq!(archy_net::fetch_meta(&conn, "timestamp.json", 1024, timeout).await?, b"{}");
//! assert!(matches!(archy_net::fetch_meta(&conn, "1.root.json", 1024, timeout).await, Err(FetchError::NotFound)));
//! assert!(matches!(archy_net::fetch_meta(&conn, "timestamp.json", 1, timeout).await, Err(FetchError::TooLarge { .. })));
//! router.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use catalog::client::FetchError;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};

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
