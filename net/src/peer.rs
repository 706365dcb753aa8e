//! Peer addresses: an endpoint id and the socket it listens on, written `<endpoint id>@<ip:port>`.
//!
//! archy never looks peers up through public discovery or relays: a peer is dialled at the
//! direct address it is configured with.
//!
//! ```
//! use archy_net::PeerAddr;
//!
//! let text = "ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6@127.0.0.1:4919";
//! let peer: PeerAddr = text.parse().expect("a peer address");
//! assert_eq!(peer.addr.port(), 4919);
//! assert_eq!(peer.to_string(), text);
//! assert!("127.0.0.1:4919".parse::<PeerAddr>().is_err());
//! ```

use std::net::SocketAddr;
use std::str::FromStr;

use anyhow::Context as _;
use iroh::{EndpointAddr, EndpointId};

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
