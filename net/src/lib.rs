//! What archy's origin, nodes and publishers speak to each other over iroh.
//!
//! - [`peer`]: a peer reached directly, [`PeerAddr`] (`<endpoint id>@<ip:port>`).
//! - [`endpoint`]: endpoints bound with relays disabled and no public discovery
//!   ([`bind_endpoint`]), with a key kept on disk so the endpoint id survives restarts.
//! - [`meta`]: the metadata protocol ([`META_ALPN`]): TUF metadata by file name, client
//!   ([`fetch_meta`]) and server ([`MetaServer`] over a [`MetaSource`]).
//! - [`blobs`]: file bytes over iroh-blobs by BLAKE3 hash, every chunk verified as it streams
//!   ([`fetch_blob`]); serving a folder's files as blobs ([`FolderBlobs`]).
//!
//! - [`announce`]: swarm announcements, signed by the node's own key, bounded.
//! - [`swarm`]: the gossip topic of a catalog and the bounded provider table ([`Swarm`]).
//! - [`ranges`]: a large file from several providers at once, in verified ranges, peers first and
//!   the origin last ([`fetch_ranges`]).
//!
//! Nothing received here is trusted: metadata goes through the TUF client workflow
//! (`catalog::client`), blobs are checked against the hash and length signed metadata names.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let endpoint = archy_net::bind_endpoint(iroh::SecretKey::from_bytes(&[7; 32]), "127.0.0.1:0".parse()?).await?;
//! let me: archy_net::PeerAddr = archy_net::local_peer_addr(&endpoint)?.to_string().parse()?;
//! assert_eq!(me.id, endpoint.id());
//! endpoint.close().await;
//! # Ok(())
//! # }
//! ```

pub mod announce;
pub mod blobs;
pub mod endpoint;
pub mod meta;
pub mod peer;
pub mod ranges;
pub mod swarm;

pub use blobs::{BlobError, FolderBlobs, MIN_RATE, deadline, fetch_blob, fetch_blob_over};
pub use endpoint::{bind_endpoint, load_or_create_secret, local_peer_addr};
pub use meta::{META_ALPN, MetaServer, MetaSource, fetch_meta, valid_meta_name};
pub use peer::PeerAddr;
pub use ranges::{Provider, RangesOutcome, fetch_ranges};
pub use swarm::{Swarm, SwarmOptions, topic_for_root};
