//! Swarm announcements: what a node holds, signed by the node's own key.
//!
//! iroh-gossip does not authenticate who wrote a message (a message is relayed by whoever
//! forwards it), so every announcement carries its author's endpoint id and an Ed25519 signature
//! by that key over a domain separator, the swarm's topic and the body. A node that forwards
//! someone else's announcement can't change it; one announcing for another node's id can't sign
//! it. The layout is fixed and bounded (docs/protocol.md, "Announcements"):
//!
//! ```text
//! "ARA1" | node id (32) | seq (u64 BE) | catalog version (u64 BE)
//!        | n addrs (u8, ≤ 4)  × { 4 | ipv4 (4) | port (u16 BE)  or  6 | ipv6 (16) | port (u16 BE) }
//!        | n holds (u8, ≤ 32) × { BLAKE3 (32) | flags (u8: bit 0 = complete, other bits 0) }
//!        | Ed25519 signature (64) over "archy-swarm-announcement-v1\0" | topic (32) | everything before it
//! ```
//!
//! `seq` is the author's clock in milliseconds when it signed: a receiver keeps the highest `seq`
//! per author and drops anything not newer (replay), and anything dated in the future.
//! Nothing in an announcement is trusted beyond "this node says so": a node that lies about what
//! it holds is found out when it can't serve it (and dropped), and a catalog version is never a
//! reason to take metadata from anyone but the origin.
//!
//! ```
//! use archy_net::announce::{Announcement, Holding};
//!
//! let key = iroh::SecretKey::from_bytes(&[9; 32]);
//! let topic = [1u8; 32];
//! let a = Announcement {
//!     node: key.public(),
//!     seq: 1_700_000_000_000,
//!     catalog_version: 12,
//!     addrs: vec!["10.0.0.2:4919".parse().unwrap()],
//!     holds: vec![Holding { hash: blake3::hash(b"archive"), complete: false }],
//! };
//! let wire = a.encode_signed(&key, &topic);
//! assert_eq!(Announcement::decode(&wire, &topic).unwrap(), a);
//! // Another topic, or one flipped bit, and the signature no longer holds.
//! assert!(Announcement::decode(&wire, &[2u8; 32]).is_err());
//! let mut bad = wire.clone();
//! bad[40] ^= 1;
//! assert!(Announcement::decode(&bad, &topic).is_err());
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use iroh::{EndpointId, SecretKey};

/// Longest announcement accepted (and the most a signed one can be: 4 IPv6 addresses, 32 holds).
pub const MAX_ANNOUNCEMENT: usize = 4 + 32 + 8 + 8 + 1 + MAX_ADDRS * 19 + 1 + MAX_HOLDS * 33 + 64;
/// Most addresses in one announcement.
pub const MAX_ADDRS: usize = 4;
/// Most files in one announcement.
pub const MAX_HOLDS: usize = 32;

const MAGIC: &[u8; 4] = b"ARA1";
const DOMAIN: &[u8] = b"archy-swarm-announcement-v1\0";
const SIGNATURE: usize = 64;
const COMPLETE: u8 = 1;

/// What a node says it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// The author: its endpoint id, whose key signs the announcement.
    pub node: EndpointId,
    /// The author's clock (Unix milliseconds) when it signed; strictly increasing per author.
    pub seq: u64,
    /// The version of the timestamp the author trusts (0: no catalog yet). A node that holds a
    /// catalog generation holds every manifest envelope that catalog lists.
    pub catalog_version: u64,
    /// Where the author listens (direct addresses only).
    pub addrs: Vec<SocketAddr>,
    /// Files (by BLAKE3) it holds whole, or is fetching and serves the verified ranges of.
    pub holds: Vec<Holding>,
}

/// One file an announcement names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The file's BLAKE3 hash.
    pub hash: blake3::Hash,
    /// Whether the author holds the whole file (otherwise it serves the ranges it has verified,
    /// which a fetcher learns by observing them over iroh-blobs).
    pub complete: bool,
}

/// Why an announcement was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnounceError {
    /// Longer than [`MAX_ANNOUNCEMENT`].
    #[error("{0} bytes: longer than the {MAX_ANNOUNCEMENT} an announcement may have")]
    Oversized(usize),
    /// Not the layout above (wrong magic, truncated, counts over the limits, bad flags, trailing
    /// bytes, an address that can't be dialled).
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not verify under the author's key (unsigned, forged or altered).
    #[error("the signature does not verify under the author's key")]
    BadSignature,
}

impl Announcement {
    /// The body (everything the signature covers after the domain and topic).
    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_ANNOUNCEMENT);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(self.node.as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.catalog_version.to_be_bytes());
        let addrs = &self.addrs[..self.addrs.len().min(MAX_ADDRS)];
        out.push(addrs.len() as u8);
        for addr in addrs {
            match addr.ip() {
                IpAddr::V4(ip) => {
                    out.push(4);
                    out.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    out.push(6);
                    out.extend_from_slice(&ip.octets());
                }
            }
            out.extend_from_slice(&addr.port().to_be_bytes());
        }
        let holds = &self.holds[..self.holds.len().min(MAX_HOLDS)];
        out.push(holds.len() as u8);
        for h in holds {
            out.extend_from_slice(h.hash.as_bytes());
            out.push(if h.complete { COMPLETE } else { 0 });
        }
        out
    }

    /// The announcement signed by `key` for the swarm `topic`. Addresses and holds beyond the
    /// limits are left out (the first ones are kept).
    pub fn encode_signed(&self, key: &SecretKey, topic: &[u8; 32]) -> Vec<u8> {
        let mut out = self.body();
        let signature = key.sign(&signed_message(topic, &out));
        out.extend_from_slice(&signature.to_bytes());
        out
    }

    /// The node an announcement claims to come from, read without verifying anything: for
    /// dropping cheaply what would be dropped anyway once verified (its author is banned, or it
    /// claims to be this node's own).
    pub fn claimed_author(bytes: &[u8]) -> Option<EndpointId> {
        let header = bytes.get(..MAGIC.len() + 32)?;
        let (magic, node) = header.split_at(MAGIC.len());
        if magic != MAGIC {
            return None;
        }
        EndpointId::from_bytes(node.try_into().ok()?).ok()
    }

    /// Parses and verifies an announcement received on `topic`: the layout, the limits, and the
    /// author's signature. Nothing else is checked here (replay, rate: [`crate::swarm`]).
    pub fn decode(bytes: &[u8], topic: &[u8; 32]) -> Result<Self, AnnounceError> {
        if bytes.len() > MAX_ANNOUNCEMENT {
            return Err(AnnounceError::Oversized(bytes.len()));
        }
        let body_len =
            bytes.len().checked_sub(SIGNATURE).ok_or(AnnounceError::Malformed("shorter than a signature"))?;
        let (body, signature) = bytes.split_at(body_len);
        let mut r = Reader(body);
        if r.take(4)? != MAGIC {
            return Err(AnnounceError::Malformed("not an archy announcement"));
        }
        let node = EndpointId::from_bytes(&r.array()?).map_err(|_| AnnounceError::Malformed("bad node key"))?;
        let seq = u64::from_be_bytes(r.array()?);
        let catalog_version = u64::from_be_bytes(r.array()?);
        let n_addrs = r.byte()? as usize;
        if n_addrs > MAX_ADDRS {
            return Err(AnnounceError::Malformed("too many addresses"));
        }
        let mut addrs = Vec::with_capacity(n_addrs);
        for _ in 0..n_addrs {
            let ip = match r.byte()? {
                4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
                _ => return Err(AnnounceError::Malformed("unknown address family")),
            };
            let port = u16::from_be_bytes(r.array()?);
            if port == 0 || ip.is_unspecified() || ip.is_multicast() {
                return Err(AnnounceError::Malformed("an address that can't be dialled"));
            }
            addrs.push(SocketAddr::new(ip, port));
        }
        let n_holds = r.byte()? as usize;
        if n_holds > MAX_HOLDS {
            return Err(AnnounceError::Malformed("too many files"));
        }
        let mut holds = Vec::with_capacity(n_holds);
        for _ in 0..n_holds {
            let hash = blake3::Hash::from_bytes(r.array()?);
            let flags = r.byte()?;
            if flags & !COMPLETE != 0 {
                return Err(AnnounceError::Malformed("unknown flags"));
            }
            holds.push(Holding { hash, complete: flags == COMPLETE });
        }
        if !r.0.is_empty() {
            return Err(AnnounceError::Malformed("trailing bytes"));
        }
        let signature: [u8; SIGNATURE] =
            signature.try_into().map_err(|_| AnnounceError::Malformed("shorter than a signature"))?;
        node.verify(&signed_message(topic, body), &iroh::Signature::from_bytes(&signature))
            .map_err(|_| AnnounceError::BadSignature)?;
        Ok(Self { node, seq, catalog_version, addrs, holds })
    }
}

/// What the signature covers: a domain separator (no other archy signature can be replayed as
/// an announcement), the topic (nor one swarm's announcement in another), the body.
fn signed_message(topic: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(DOMAIN.len() + 32 + body.len());
    msg.extend_from_slice(DOMAIN);
    msg.extend_from_slice(topic);
    msg.extend_from_slice(body);
    msg
}

/// Bounds-checked reading of the body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AnnounceError> {
        if self.0.len() < n {
            return Err(AnnounceError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], AnnounceError> {
        self.take(N)?.try_into().map_err(|_| AnnounceError::Malformed("truncated"))
    }

    fn byte(&mut self) -> Result<u8, AnnounceError> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SecretKey) -> Announcement {
        Announcement {
            node: key.public(),
            seq: 5,
            catalog_version: 3,
            addrs: vec!["10.1.2.3:7".parse().expect("addr"), "[fd00::1]:9".parse().expect("addr")],
            holds: vec![
                Holding { hash: blake3::hash(b"a"), complete: true },
                Holding { hash: blake3::hash(b"b"), complete: false },
            ],
        }
    }

    #[test]
    fn a_signed_announcement_round_trips_and_nothing_else_is_accepted() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let topic = [7; 32];
        let a = sample(&key);
        let wire = a.encode_signed(&key, &topic);
        assert_eq!(Announcement::decode(&wire, &topic), Ok(a.clone()));

        // Signed by another key but naming this node: forged.
        let forged = a.encode_signed(&SecretKey::from_bytes(&[2; 32]), &topic);
        assert_eq!(Announcement::decode(&forged, &topic), Err(AnnounceError::BadSignature));
        // No signature at all.
        assert!(Announcement::decode(&wire[..wire.len() - 64], &topic).is_err());
        // Every truncation is refused, never a panic.
        for n in 0..wire.len() {
            assert!(Announcement::decode(&wire[..n], &topic).is_err(), "{n} bytes accepted");
        }
        // Oversized.
        assert_eq!(
            Announcement::decode(&vec![0; MAX_ANNOUNCEMENT + 1], &topic),
            Err(AnnounceError::Oversized(MAX_ANNOUNCEMENT + 1))
        );
    }

    #[test]
    fn the_limits_bound_what_is_signed() {
        let key = SecretKey::from_bytes(&[1; 32]);
        let topic = [7; 32];
        let mut a = sample(&key);
        a.addrs = (1..10).map(|i| SocketAddr::new(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i).into(), 1)).collect();
        a.holds = (0..100u32).map(|i| Holding { hash: blake3::hash(&i.to_be_bytes()), complete: true }).collect();
        let wire = a.encode_signed(&key, &topic);
        assert_eq!(wire.len(), MAX_ANNOUNCEMENT);
        let back = Announcement::decode(&wire, &topic).expect("a full announcement decodes");
        assert_eq!((back.addrs.len(), back.holds.len()), (MAX_ADDRS, MAX_HOLDS));
    }
}
