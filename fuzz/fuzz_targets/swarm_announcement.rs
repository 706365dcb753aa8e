//! What a stranger in the swarm sends: gossip messages decoded as announcements
//! (`archy_net::announce::Announcement::decode`) and taken into a provider table
//! (`archy_net::swarm::ProviderTable::accept`).
//!
//! - As a wire message: never a panic; what decodes keeps the limits (addresses, files, length)
//!   and is dialable; the table keeps at most `MAX_PEERS` peers and `MAX_HOLDS` files each,
//!   and an author's second identical message is a replay.
//! - As the fields of an announcement signed by a fixed key: it decodes back to what was signed
//!   (the limits applied), and one flipped bit anywhere is refused.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use archy_net::announce::{Announcement, Holding, MAX_ADDRS, MAX_ANNOUNCEMENT, MAX_HOLDS};
use archy_net::swarm::{Dropped, MAX_PEERS, ProviderTable};
use libfuzzer_sys::fuzz_target;

const TOPIC: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);

    // As a wire message.
    let mut table = ProviderTable::default();
    if let Ok(a) = Announcement::decode(data, &TOPIC) {
        assert!(data.len() <= MAX_ANNOUNCEMENT);
        assert!(a.addrs.len() <= MAX_ADDRS && a.holds.len() <= MAX_HOLDS);
        assert!(a.addrs.iter().all(|s| s.port() != 0 && !s.ip().is_unspecified() && !s.ip().is_multicast()));
        if table.accept(data, &TOPIC, now).is_ok() {
            assert!(matches!(table.accept(data, &TOPIC, now), Err(Dropped::Replayed { .. })));
        }
    } else {
        assert!(table.accept(data, &TOPIC, now).is_err());
    }
    assert!(table.peers().count() <= MAX_PEERS);

    // As the fields of a signed announcement.
    let key = iroh::SecretKey::from_bytes(&[3; 32]);
    let mut bytes = data.iter().copied();
    let mut next = |n: usize| -> Vec<u8> { (&mut bytes).take(n).collect() };
    let seq = u64::from_be_bytes(next(8).try_into().unwrap_or([0; 8]));
    let catalog_version = u64::from_be_bytes(next(8).try_into().unwrap_or([0; 8]));
    let counts = next(2);
    let (n_addrs, n_holds) = (*counts.first().unwrap_or(&0) as usize % 8, *counts.get(1).unwrap_or(&0) as usize % 48);
    let addrs: Vec<SocketAddr> = (0..n_addrs)
        .map(|i| {
            let raw = next(18);
            let ip: IpAddr = if i % 2 == 0 {
                Ipv4Addr::new(10, *raw.first().unwrap_or(&1), *raw.get(1).unwrap_or(&2), raw.get(2).copied().unwrap_or(3).max(1)).into()
            } else {
                let mut octets = [0u8; 16];
                octets[0] = 0xfd;
                for (o, b) in octets[1..].iter_mut().zip(raw.iter()) {
                    *o = *b;
                }
                Ipv6Addr::from(octets).into()
            };
            SocketAddr::new(ip, u16::from(*raw.last().unwrap_or(&1)).max(1))
        })
        .collect();
    let holds: Vec<Holding> = (0..n_holds)
        .map(|i| Holding { hash: blake3::hash(&[i as u8]), complete: next(1).first().is_some_and(|b| b & 1 == 1) })
        .collect();
    let a = Announcement { node: key.public(), seq, catalog_version, addrs, holds };
    let wire = a.encode_signed(&key, &TOPIC);
    let back = Announcement::decode(&wire, &TOPIC).expect("a signed announcement decodes");
    assert_eq!(back.addrs[..], a.addrs[..a.addrs.len().min(MAX_ADDRS)]);
    assert_eq!(back.holds[..], a.holds[..a.holds.len().min(MAX_HOLDS)]);
    assert_eq!((back.node, back.seq, back.catalog_version), (a.node, a.seq, a.catalog_version));
    if let Some(&flip) = data.last() {
        let mut bad = wire.clone();
        let at = flip as usize % bad.len();
        bad[at] ^= 1 << (flip % 8);
        assert!(Announcement::decode(&bad, &TOPIC).is_err(), "a flipped bit at {at} went unnoticed");
    }
});
