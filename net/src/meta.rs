//! The metadata protocol, [`META_ALPN`]: TUF metadata by file name over iroh.
//!
//! The client opens a bi-directional stream and sends one file name (`timestamp.json`,
//! `<N>.root.json`, `<V>.snapshot.json`, `<V>.<role>.json`); the server answers with one status
//! byte (found, not found, bad request) and, when found, an 8-byte big-endian length and the
//! bytes. Nothing in it is trusted: the node runs the TUF update workflow over whatever comes
//! back, and the announced length is checked against the caller's limit before the body is read.
//! The framing is read by plain functions that the stream code calls ([`decode_request`] on the
//! server, [`decode_status`] and [`decode_length`] on the client) and written by
//! [`ResponseHead::encode`], so it can be tested and fuzzed without a connection
//! (`fuzz/fuzz_targets/meta_frame.rs`).
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

/// Longest request a server reads: a name of [`MAX_NAME`] bytes and one byte of whitespace
/// around it (a longer request ends the connection unanswered).
pub const MAX_REQUEST: usize = MAX_NAME + 1;

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

/// The file name a request asks for: the request's bytes, trimmed of surrounding whitespace,
/// must be UTF-8 and a [`valid_meta_name`]. `None` is answered [`ResponseHead::BadRequest`].
pub fn decode_request(request: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(request).ok()?.trim();
    valid_meta_name(name).then_some(name)
}

/// What a server answers before the body: one status byte and, for a found file, the body's
/// length as 8 bytes big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseHead {
    /// The file follows, `length` bytes of it.
    Found {
        /// The body's length.
        length: u64,
    },
    /// The server has no such file.
    NotFound,
    /// The request was not a valid file name.
    BadRequest,
}

impl ResponseHead {
    /// The bytes of the head on the wire.
    pub fn encode(self) -> Vec<u8> {
        match self {
            Self::Found { length } => {
                let mut head = Vec::with_capacity(9);
                head.push(FOUND);
                head.extend_from_slice(&length.to_be_bytes());
                head
            }
            Self::NotFound => vec![NOT_FOUND],
            Self::BadRequest => vec![BAD_REQUEST],
        }
    }
}

/// The client's reading of an answer's status byte: `Ok` when an 8-byte length and the body
/// follow ([`decode_length`]).
pub fn decode_status(status: u8) -> Result<(), FetchError> {
    match status {
        FOUND => Ok(()),
        NOT_FOUND => Err(FetchError::NotFound),
        other => Err(FetchError::Other(format!("peer refused the request (status {other})"))),
    }
}

/// The client's reading of an answer's body length, checked against `max_length` before a
/// byte of the body is read (a peer announcing endless data gets nothing allocated).
pub fn decode_length(length: [u8; 8], max_length: u64) -> Result<usize, FetchError> {
    let length = u64::from_be_bytes(length);
    if length > max_length {
        return Err(FetchError::TooLarge { limit: max_length });
    }
    usize::try_from(length).map_err(|_| FetchError::TooLarge { limit: usize::MAX as u64 })
}

impl ProtocolHandler for MetaServer {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        loop {
            let Ok((mut send, mut recv)) = connection.accept_bi().await else { return Ok(()) };
            let request = match recv.read_to_end(MAX_REQUEST).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(peer = %connection.remote_id(), "bad meta request: {e}");
                    return Ok(());
                }
            };
            let (head, body) = match decode_request(&request) {
                None => (ResponseHead::BadRequest, None),
                Some(name) => match self.source.meta(name) {
                    None => (ResponseHead::NotFound, None),
                    Some(bytes) => (ResponseHead::Found { length: bytes.len() as u64 }, Some(bytes)),
                },
            };
            send.write_all(&head.encode()).await.map_err(AcceptError::from_err)?;
            if let Some(bytes) = body {
                send.write_all(&bytes).await.map_err(AcceptError::from_err)?;
            }
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
        decode_status(status[0])?;
        let mut length = [0u8; 8];
        recv.read_exact(&mut length).await.map_err(|e| FetchError::Other(format!("reading length: {e}")))?;
        let mut body = vec![0u8; decode_length(length, max_length)?];
        recv.read_exact(&mut body).await.map_err(|e| FetchError::Other(format!("reading body: {e}")))?;
        Ok(body)
    };
    tokio::time::timeout(timeout, work).await.unwrap_or(Err(FetchError::Timeout(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_file_name_with_optional_whitespace_around_it() {
        assert_eq!(decode_request(b"timestamp.json"), Some("timestamp.json"));
        assert_eq!(decode_request(b" 3.root.json\n"), Some("3.root.json"));
        assert_eq!(decode_request(b"7.apps%2Fnotes.json"), Some("7.apps%2Fnotes.json"));
    }

    #[test]
    fn a_request_for_anything_but_a_metadata_file_name_is_a_bad_request() {
        for request in [
            &b""[..],
            b"   ",
            b"../keys/root.json",
            b"metadata/timestamp.json",
            b".hidden.json",
            b"timestamp.json.tmp",
            b"time stamp.json",
            b"timestamp\0.json",
            b"\xfftimestamp.json",
            &[b'a'; MAX_NAME + 1],
        ] {
            assert_eq!(decode_request(request), None, "{:?}", String::from_utf8_lossy(request));
        }
        let mut longest = vec![b'a'; MAX_NAME - ".json".len()];
        longest.extend_from_slice(b".json");
        assert!(decode_request(&longest).is_some(), "a name of {MAX_NAME} bytes is valid");
    }

    #[test]
    fn a_response_head_reads_back_as_what_the_server_meant() {
        let head = ResponseHead::Found { length: 1234 }.encode();
        assert_eq!(head, [FOUND, 0, 0, 0, 0, 0, 0, 0x04, 0xd2]);
        assert!(decode_status(head[0]).is_ok());
        let length: [u8; 8] = head[1..].try_into().expect("8 bytes");
        assert_eq!(decode_length(length, 1234).expect("within the limit"), 1234);

        let not_found = ResponseHead::NotFound.encode();
        assert_eq!(not_found.len(), 1);
        assert!(matches!(decode_status(not_found[0]), Err(FetchError::NotFound)));
        let bad = ResponseHead::BadRequest.encode();
        assert_eq!(bad.len(), 1);
        assert!(matches!(decode_status(bad[0]), Err(FetchError::Other(_))));
        assert!(matches!(decode_status(0xff), Err(FetchError::Other(_))));
    }

    #[test]
    fn an_announced_length_over_the_limit_is_refused_before_the_body() {
        let length = ResponseHead::Found { length: 1025 }.encode()[1..].try_into().expect("8 bytes");
        assert!(matches!(decode_length(length, 1024), Err(FetchError::TooLarge { limit: 1024 })));
        assert!(matches!(decode_length([0xff; 8], u64::MAX - 1), Err(FetchError::TooLarge { .. })));
    }
}
