//! The adversary of archy's swarm tests (`node/tests/swarm.rs`): a peer that joins a catalog's
//! swarm and misbehaves in one way. It is not part of `archy-node`; the tests run it in a network
//! namespace of its own, as one more host.
//!
//! ```text
//! swarm_adversary --mode MODE --root ROOT.json --bind IP:PORT --bootstrap ID@IP:PORT --file FILE --version N [--upstream ID@IP:PORT]
//! ```
//!
//! `--upstream` is where `tamper` takes the files it changes (the origin; `--bootstrap` when not
//! given).
//!
//! - `corrupt`: announces FILE whole and serves it with bytes flipped in every answer to a range
//!   request (what it shows of its ranges is honest, the bytes are not);
//! - `phantom`: announces FILE whole and holds none of it;
//! - `flood`: sends valid announcements as fast as it can, and announcements naming other nodes
//!   that it signs with its own key (forged);
//! - `liar`: announces catalog version N + 1000, which the origin does not have;
//! - `tamper`: announces catalog version N and answers metadata requests with the origin's file
//!   of that name, one byte changed (the right length, the wrong hash);
//! - `notes`: gossips the log checkpoints (signed notes) FILE holds, a JSON array of texts, over
//!   and over: a peer replaying what it saw.
//!
//! It prints `ready <endpoint id>@<ip:port>` once it serves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use archy_net::PeerAddr;
use archy_net::announce::{Announcement, Holding};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};

struct Args {
    mode: String,
    root: PathBuf,
    bind: SocketAddr,
    bootstrap: PeerAddr,
    file: PathBuf,
    version: u64,
    upstream: Option<PeerAddr>,
}

fn args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut mode, mut root, mut bind, mut bootstrap, mut file, mut version) = (None, None, None, None, None, None);
    let mut upstream = None;
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => mode = Some(value),
            "--root" => root = Some(value.into()),
            "--bind" => bind = Some(value.parse()?),
            "--bootstrap" => bootstrap = Some(value.parse()?),
            "--file" => file = Some(value.into()),
            "--version" => version = Some(value.parse()?),
            "--upstream" => upstream = Some(value.parse()?),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let need = |name: &str| anyhow::anyhow!("--{name} is required");
    Ok(Args {
        mode: mode.ok_or_else(|| need("mode"))?,
        root: root.ok_or_else(|| need("root"))?,
        bind: bind.ok_or_else(|| need("bind"))?,
        bootstrap: bootstrap.ok_or_else(|| need("bootstrap"))?,
        file: file.ok_or_else(|| need("file"))?,
        version: version.ok_or_else(|| need("version"))?,
        upstream,
    })
}

/// Proxies iroh-blobs requests to an honest provider, flipping bytes in what range requests get.
#[derive(Debug, Clone)]
struct Corrupting {
    upstream: PeerAddr,
    client: iroh::Endpoint,
}

impl ProtocolHandler for Corrupting {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let upstream = self
            .client
            .connect(self.upstream.endpoint_addr(), iroh_blobs::ALPN)
            .await
            .map_err(AcceptError::from_err)?;
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok((mut us, mut ur)) = upstream.open_bi().await else { return };
                // The first byte is the request type: 0 is a get (ranges), 1 an observation.
                let mut kind = [0u8; 1];
                if recv.read_exact(&mut kind).await.is_err() || us.write_all(&kind).await.is_err() {
                    return;
                }
                let forward = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 << 10];
                    while let Ok(Some(n)) = recv.read(&mut buf).await {
                        if us.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    let _ = us.finish();
                });
                let mut buf = vec![0u8; 64 << 10];
                let mut sent = 0u64;
                while let Ok(Some(n)) = ur.read(&mut buf).await {
                    if kind[0] == 0 {
                        // Past the size header and the first hash pair: one flipped byte in
                        // every 64 KiB.
                        for (i, b) in buf[..n].iter_mut().enumerate() {
                            let at = sent + i as u64;
                            if at >= 200 && at % (64 << 10) == 200 {
                                *b ^= 0x55;
                            }
                        }
                    }
                    sent += n as u64;
                    if send.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = send.finish();
                forward.abort();
            });
        }
        Ok(())
    }
}

/// Answers metadata requests with the upstream's bytes, one byte changed.
#[derive(Debug, Clone)]
struct Tampering {
    upstream: PeerAddr,
    client: iroh::Endpoint,
}

impl ProtocolHandler for Tampering {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let upstream = self
            .client
            .connect(self.upstream.endpoint_addr(), archy_net::META_ALPN)
            .await
            .map_err(AcceptError::from_err)?;
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let Ok(request) = recv.read_to_end(archy_net::meta::MAX_REQUEST).await else { return Ok(()) };
            let Some(name) = archy_net::meta::decode_request(&request) else { return Ok(()) };
            let answer = archy_net::fetch_meta(&upstream, name, 64 << 20, Duration::from_secs(10)).await;
            let (head, body) = match answer {
                Ok(mut bytes) => {
                    let middle = bytes.len() / 2;
                    if let Some(b) = bytes.get_mut(middle) {
                        *b ^= 0x20;
                    }
                    (archy_net::meta::ResponseHead::Found { length: bytes.len() as u64 }, bytes)
                }
                Err(_) => (archy_net::meta::ResponseHead::NotFound, Vec::new()),
            };
            send.write_all(&head.encode()).await.map_err(AcceptError::from_err)?;
            send.write_all(&body).await.map_err(AcceptError::from_err)?;
            send.finish().map_err(AcceptError::from_err)?;
        }
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let secret = iroh::SecretKey::generate();
    let endpoint = archy_net::bind_endpoint(secret.clone(), args.bind).await?;
    let me = archy_net::local_peer_addr(&endpoint)?;
    let topic = archy_net::topic_for_root(&std::fs::read(&args.root)?)?;
    let bytes = std::fs::read(&args.file)?;
    let notes: Vec<String> = if args.mode == "notes" { serde_json::from_slice(&bytes)? } else { Vec::new() };
    let hash = blake3::hash(&bytes);

    // An honest provider of the file in this process, for the proxy to corrupt.
    let store = iroh_blobs::store::mem::MemStore::new();
    if args.mode == "corrupt" {
        store.add_bytes(bytes).with_tag().await?;
    }
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let upstream = archy_net::bind_endpoint(iroh::SecretKey::generate(), loopback).await?;
    let upstream_addr = archy_net::local_peer_addr(&upstream)?;
    let _upstream =
        Router::builder(upstream).accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&store, None)).spawn();

    let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
    let builder = Router::builder(endpoint.clone()).accept(iroh_gossip::ALPN, gossip.clone());
    let _router = if args.mode == "corrupt" {
        let client = archy_net::bind_endpoint(iroh::SecretKey::generate(), loopback).await?;
        builder.accept(iroh_blobs::ALPN, Corrupting { upstream: upstream_addr, client }).spawn()
    } else if args.mode == "tamper" {
        // It reaches the origin from its own host's address.
        let client = archy_net::bind_endpoint(iroh::SecretKey::generate(), SocketAddr::new(args.bind.ip(), 0)).await?;
        builder
            .accept(
                archy_net::META_ALPN,
                Tampering { upstream: args.upstream.clone().unwrap_or_else(|| args.bootstrap.clone()), client },
            )
            .spawn()
    } else {
        builder.accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&store, None)).spawn()
    };
    let lookup = iroh::address_lookup::MemoryLookup::new();
    endpoint.address_lookup().map_err(|e| anyhow::anyhow!("{e}"))?.add(lookup.clone());
    lookup.add_endpoint_info(args.bootstrap.endpoint_addr());
    let (sender, mut receiver) =
        gossip.subscribe(iroh_gossip::TopicId::from_bytes(topic), vec![args.bootstrap.id]).await?.split();
    tokio::spawn(async move {
        use futures_util::StreamExt as _;
        while receiver.next().await.is_some() {}
    });
    println!("ready {me}");

    let holds = vec![Holding { hash, complete: true }];
    let announce = |seq: u64, version: u64, holds: Vec<Holding>| {
        Announcement { node: secret.public(), seq, catalog_version: version, addrs: vec![me.addr], holds }
            .encode_signed(&secret, &topic)
    };
    let mut seq = now_ms();
    loop {
        seq = now_ms().max(seq + 1);
        let wire = match args.mode.as_str() {
            "corrupt" | "phantom" => announce(seq, args.version, holds.clone()),
            "liar" => announce(seq, args.version + 1000, Vec::new()),
            "tamper" => announce(seq, args.version, Vec::new()),
            "notes" => {
                for note in &notes {
                    let mut wire = archy_net::swarm::NOTE_MAGIC.to_vec();
                    wire.extend_from_slice(note.as_bytes());
                    let _ = sender.broadcast(wire.into()).await;
                }
                announce(seq, args.version, Vec::new())
            }
            "flood" => {
                // Another node's id, signed with this key: a forgery.
                let forged = Announcement {
                    node: iroh::SecretKey::generate().public(),
                    seq,
                    catalog_version: args.version,
                    addrs: vec![me.addr],
                    holds: holds.clone(),
                }
                .encode_signed(&secret, &topic);
                let _ = sender.broadcast(forged.into()).await;
                announce(seq, args.version, Vec::new())
            }
            other => anyhow::bail!("unknown mode {other}"),
        };
        let _ = sender.broadcast(wire.into()).await;
        let pause = if args.mode == "flood" { Duration::from_millis(5) } else { Duration::from_millis(800) };
        tokio::time::sleep(pause).await;
    }
}
