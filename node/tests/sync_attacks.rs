//! The attack suite: one test per attack on catalog sync, against the real `archy-node` binary
//! with origins on real HTTP and peers on real iroh endpoints, all on loopback. Each asserts
//! that the node refuses, says why, and that what it stored is unchanged.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::util::origin::*;
use catalog::keys::SigningKey;
use catalog::metadata::{Root, SignedMetadata, Targets, Timestamp};
use chrono::{TimeDelta, Utc};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use node::sync::{ProviderFailureKind, RefusalKind};

/// An origin with `app-a 1.0.0` served over HTTP and a node that has synced it.
fn synced() -> (Origin, HttpServer, Node) {
    let origin = Origin::new();
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    let (ok, report) = node.sync();
    assert!(ok, "first sync: {report:?}");
    assert_eq!(node.apps().len(), 1);
    (origin, server, node)
}

fn sign<T: catalog::metadata::Role + serde::Serialize>(signed: T, keys: &[&SigningKey]) -> Vec<u8> {
    SignedMetadata::sign(signed, keys).expect("sign").to_bytes()
}

fn timestamp_of(origin: &Origin) -> Timestamp {
    SignedMetadata::<Timestamp>::from_slice(&origin.metadata("timestamp.json"), "timestamp").expect("ts").signed
}

/// A timestamp naming `snapshot_bytes` as snapshot version `snapshot_version`.
fn timestamp_for(base: &Timestamp, version: u64, snapshot_version: u64, snapshot_bytes: &[u8]) -> Timestamp {
    use sha2::Digest as _;
    let mut ts = base.clone();
    ts.version = version;
    let meta = ts.meta.get_mut("snapshot.json").expect("snapshot meta");
    meta.version = snapshot_version;
    meta.length = Some(snapshot_bytes.len() as u64);
    let mut hashes = serde_json::Map::new();
    hashes.insert("sha256".into(), hex::encode(sha2::Sha256::digest(snapshot_bytes)).into());
    meta.hashes = Some(hashes);
    ts
}

/// Whether the round dropped `provider` for a file, for `kind`.
fn dropped(report: &Report, provider: &archy_net::PeerAddr, kind: ProviderFailureKind) -> bool {
    report.provider_failures.iter().any(|f| f.provider == provider.to_string() && f.kind == kind)
}

/// Whether the round refused `subject` (a role or a target path) by the rule `kind`.
fn refused_by(report: &Report, kind: RefusalKind, subject: &str) -> bool {
    report.refusals.iter().any(|r| r.kind == kind && r.subject == subject)
}

fn assert_refused(
    node: &Node,
    before: &std::collections::BTreeMap<String, Vec<u8>>,
    kind: RefusalKind,
    subject: &str,
) -> Report {
    let (ok, report) = node.sync();
    assert!(!ok, "the node accepted it: {report:?}");
    assert!(refused_by(&report, kind, subject), "not refused as {kind:?} of `{subject}`: {:#?}", report.refusals);
    assert!(node.stored() == *before, "stored state changed");
    report
}

// --- arbitrary software -------------------------------------------------------------------

#[test]
fn arbitrary_software_metadata_signed_by_an_unknown_key_is_refused() {
    let (mut origin, server, node) = synced();
    let before = node.stored();
    origin.publish("app-b", "1.0.0");
    // An attacker re-signs the publisher's new role with its own key.
    let name = format!("{}.acme.json", origin.repo.delegated("acme").expect("acme").version);
    let role = SignedMetadata::<Targets>::from_slice(&origin.metadata(&name), "acme").expect("role").signed;
    server.answer(&format!("/metadata/{name}"), Answer::Bytes(sign(role, &[&SigningKey::generate()])));
    assert_refused(&node, &before, RefusalKind::Signatures, "acme");
    assert!(!node.apps().iter().any(|a| a.0 == "app-b"));
}

#[test]
fn arbitrary_software_manifest_bytes_other_than_signed_are_refused() {
    let (mut origin, server, node) = synced();
    let before = node.stored();
    origin.publish("app-b", "1.0.0");
    let file = &origin.repo.delegated("acme").expect("acme").targets["apps/app-b/1.0.0.json"];
    let sha = file.hashes["sha256"].as_str().expect("sha").to_owned();
    // Validly signed by the publisher, but not the bytes the metadata names.
    let other = envelope("app-b", "1.0.0", &origin.publisher).into_iter().chain(*b" ").collect();
    server.answer(&format!("/targets/apps/app-b/{sha}.1.0.0.json"), Answer::Bytes(other));
    assert_refused(&node, &before, RefusalKind::TooLarge, "apps/app-b/1.0.0.json");
}

#[test]
fn arbitrary_software_envelope_signed_by_another_publisher_is_not_offered() {
    let (mut origin, _server, node) = synced();
    // The publisher's role lists an envelope signed by someone else's key.
    let stranger = SigningKey::generate();
    let bytes = envelope("app-b", "1.0.0", &stranger);
    let now = Utc::now();
    origin
        .repo
        .add_publisher_targets(
            "acme",
            vec![("apps/app-b/1.0.0.json".into(), bytes, "manifest".into())],
            &origin.publisher,
            now,
        )
        .expect("add");
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("publish");
    origin.write();
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert!(refused_by(&report, RefusalKind::Envelope, "apps/app-b/1.0.0.json"), "{:#?}", report.refusals);
    let apps = node.apps();
    assert!(apps.iter().any(|a| a.0 == "app-a"));
    assert!(!apps.iter().any(|a| a.0 == "app-b"), "a manifest signed by another key is offered: {apps:?}");
}

// --- rollback -----------------------------------------------------------------------------

#[test]
fn rollback_to_an_older_timestamp_is_refused() {
    let (mut origin, server, node) = synced();
    let old = origin.metadata("timestamp.json");
    origin.publish("app-b", "1.0.0");
    assert!(node.sync().0);
    let before = node.stored();
    server.answer("/metadata/timestamp.json", Answer::Bytes(old));
    assert_refused(&node, &before, RefusalKind::Rollback, "timestamp");
}

#[test]
fn rollback_to_an_older_snapshot_is_refused() {
    let (mut origin, server, node) = synced();
    let old_snapshot_version = origin.repo.snapshot().version;
    let old_snapshot = origin.metadata(&format!("{old_snapshot_version}.snapshot.json"));
    origin.publish("app-b", "1.0.0");
    assert!(node.sync().0);
    let before = node.stored();
    // A new timestamp, properly signed, naming the old snapshot.
    let ts = timestamp_of(&origin);
    let forged = timestamp_for(&ts, ts.version + 1, old_snapshot_version, &old_snapshot);
    server.answer("/metadata/timestamp.json", Answer::Bytes(sign(forged, &[&origin.timestamp_key])));
    assert_refused(&node, &before, RefusalKind::Rollback, "snapshot");
}

#[test]
fn rollback_to_older_targets_is_refused() {
    let (mut origin, server, node) = synced();
    origin.publish("app-b", "1.0.0");
    assert!(node.sync().0);
    let before = node.stored();
    // A new snapshot, properly signed, naming an older version of the publisher's role.
    let mut snap = origin.repo.snapshot().clone();
    snap.version += 1;
    snap.meta.get_mut("acme.json").expect("acme").version -= 1;
    let snap_bytes = sign(snap.clone(), &[&origin.snapshot_key]);
    let ts = timestamp_of(&origin);
    let forged = timestamp_for(&ts, ts.version + 1, snap.version, &snap_bytes);
    server.answer(&format!("/metadata/{}.snapshot.json", snap.version), Answer::Bytes(snap_bytes));
    server.answer("/metadata/timestamp.json", Answer::Bytes(sign(forged, &[&origin.timestamp_key])));
    assert_refused(&node, &before, RefusalKind::Rollback, "acme.json");
}

// --- indefinite freeze --------------------------------------------------------------------

#[test]
fn freeze_expired_timestamp_is_refused() {
    let (origin, server, node) = synced();
    let before = node.stored();
    let mut ts = timestamp_of(&origin);
    ts.version += 1;
    ts.expires = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now") - TimeDelta::hours(1);
    server.answer("/metadata/timestamp.json", Answer::Bytes(sign(ts, &[&origin.timestamp_key])));
    assert_refused(&node, &before, RefusalKind::Expired, "timestamp");
}

#[test]
fn freeze_nothing_is_installed_from_a_catalog_that_has_expired() {
    let (origin, server, node) = synced();
    // A valid timestamp that expires in a few seconds, taken while it is fresh…
    let mut ts = timestamp_of(&origin);
    ts.version += 1;
    let expires = chrono::DateTime::from_timestamp(Utc::now().timestamp() + 3, 0).expect("soon");
    ts.expires = expires;
    server.answer("/metadata/timestamp.json", Answer::Bytes(sign(ts, &[&origin.timestamp_key])));
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    // …then the origin goes quiet (a freeze) and the catalog expires on the node.
    while Utc::now() <= expires + TimeDelta::seconds(1) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = std::process::Command::new(crate::util::node_bin())
        .args(["install", "app-a", "--source", "origin", "--data"])
        .arg(node.path())
        .output()
        .expect("archy-node install");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let when = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(stderr.contains(&format!("expired at {when}")) && stderr.contains("archy-node sync"), "{stderr}");
    assert!(!node.path().join("orchestrator/apps/app-a").exists(), "desired state was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn freeze_peer_replaying_an_old_unexpired_timestamp_while_the_origin_is_down_is_refused() {
    let (mut origin, _server, node) = synced();
    // A peer that stopped at today's catalog (still unexpired)...
    let stale = FakeMeta::from_dir(&origin.served());
    origin.publish("app-b", "1.0.0");
    assert!(node.sync().0);
    let peer = TestPeer::start(stale).await;
    // ...replays it while the origin is down.
    node.set_origin(&dead_url());
    node.add_peer(&peer.addr);
    let before = node.stored();
    let report = assert_refused(&node, &before, RefusalKind::Rollback, "timestamp");
    assert!(!report.origin_reachable);
}

// --- endless data -------------------------------------------------------------------------

#[test]
fn endless_metadata_is_cut_at_its_limit() {
    let (_origin, server, node) = synced();
    let before = node.stored();
    server.answer("/metadata/timestamp.json", Answer::Endless);
    assert_refused(&node, &before, RefusalKind::TooLarge, "timestamp.json");
}

#[test]
fn endless_file_is_cut_at_its_signed_length() {
    let (mut origin, server, node) = synced();
    let before = node.stored();
    origin.publish("app-b", "1.0.0");
    let file = &origin.repo.delegated("acme").expect("acme").targets["apps/app-b/1.0.0.json"];
    let sha = file.hashes["sha256"].as_str().expect("sha").to_owned();
    server.answer(&format!("/targets/apps/app-b/{sha}.1.0.0.json"), Answer::Endless);
    assert_refused(&node, &before, RefusalKind::TooLarge, "apps/app-b/1.0.0.json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endless_metadata_from_a_peer_is_refused_before_it_is_read() {
    let (origin, _server, node) = synced();
    let meta = FakeMeta::from_dir(&origin.served());
    meta.set("timestamp.json", vec![b' '; 50 << 20]);
    let peer = TestPeer::start(meta).await;
    node.set_origin(&dead_url());
    node.add_peer(&peer.addr);
    let before = node.stored();
    assert_refused(&node, &before, RefusalKind::TooLarge, "timestamp.json");
}

// --- mix-and-match ------------------------------------------------------------------------

#[test]
fn mix_and_match_role_version_not_in_the_signed_snapshot_is_refused() {
    let (mut origin, server, node) = synced();
    let before = node.stored();
    origin.publish("app-b", "1.0.0");
    // The publisher's role as the snapshot names it (v2) is swapped for another version, signed
    // by the publisher, that the snapshot does not name.
    let current = origin.repo.delegated("acme").expect("acme").clone();
    let mut other = current.clone();
    other.version += 5;
    let name = format!("{}.acme.json", current.version);
    server.answer(&format!("/metadata/{name}"), Answer::Bytes(sign(other, &[&origin.publisher])));
    assert_refused(&node, &before, RefusalKind::VersionMismatch, "acme");
}

// --- malicious peers ----------------------------------------------------------------------

/// A blobs provider that relays requests to an honest one and tampers with the answer.
#[derive(Debug, Clone)]
struct Tamper {
    upstream: archy_net::PeerAddr,
    client: iroh::Endpoint,
    /// Flip a byte of the answer (corrupt chunk) …
    flip: bool,
    /// … or ask upstream for another hash (wrong file for the hash) …
    swap: Option<([u8; 32], [u8; 32])>,
    /// … or send the answer 32 KiB at a time with this pause between (always within the stall
    /// timeout, far below the minimum rate).
    trickle: Option<std::time::Duration>,
}

impl ProtocolHandler for Tamper {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let mut request = recv.read_to_end(1 << 20).await.map_err(AcceptError::from_err)?;
            if let Some((from, to)) = self.swap
                && let Some(at) = request.windows(32).position(|w| w == from)
            {
                request[at..at + 32].copy_from_slice(&to);
            }
            let up = self
                .client
                .connect(self.upstream.endpoint_addr(), iroh_blobs::ALPN)
                .await
                .map_err(AcceptError::from_err)?;
            let (mut us, mut ur) = up.open_bi().await.map_err(AcceptError::from_err)?;
            us.write_all(&request).await.map_err(AcceptError::from_err)?;
            us.finish().map_err(AcceptError::from_err)?;
            let mut answer = ur.read_to_end(64 << 20).await.map_err(AcceptError::from_err)?;
            if self.flip {
                let at = answer.len() - 7;
                answer[at] ^= 0x55;
            }
            match self.trickle {
                Some(pause) => {
                    for piece in answer.chunks(32 << 10) {
                        send.write_all(piece).await.map_err(AcceptError::from_err)?;
                        tokio::time::sleep(pause).await;
                    }
                }
                None => send.write_all(&answer).await.map_err(AcceptError::from_err)?,
            }
            send.finish().map_err(AcceptError::from_err)?;
        }
        Ok(())
    }
}

/// Origin down; node trusting the origin's root, with `peers`; the origin has published `app-b`
/// since the node last synced, so the node needs its manifest from a provider.
async fn origin_down_with_new_app() -> (Origin, HttpServer, Node, Arc<FakeMeta>) {
    let (mut origin, server, node) = synced();
    origin.publish("app-b", "1.0.0");
    node.set_origin(&dead_url());
    let meta = FakeMeta::from_dir(&origin.served());
    (origin, server, node, meta)
}

async fn client_endpoint() -> iroh::Endpoint {
    let secret = iroh::SecretKey::from_bytes(&SigningKey::generate().seed());
    archy_net::bind_endpoint(secret, "127.0.0.1:0".parse().expect("addr")).await.expect("endpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malicious_peer_corrupt_chunk_is_dropped_and_the_next_provider_serves() {
    let (origin, _server, node, meta) = origin_down_with_new_app().await;
    let honest = TestPeer::start(meta.clone()).await;
    honest.add_targets(&origin.served()).await;
    let evil = TestPeer::start_with(
        meta,
        Some(Tamper {
            upstream: honest.addr.clone(),
            client: client_endpoint().await,
            flip: true,
            swap: None,
            trickle: None,
        }),
    )
    .await;
    node.add_peer(&evil.addr);
    node.add_peer(&honest.addr);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert!(dropped(&report, &evil.addr, ProviderFailureKind::BadData), "{:?}", report.provider_failures);
    assert!(node.apps().iter().any(|a| a.0 == "app-b"), "the honest provider's bytes were not taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malicious_peer_sending_another_file_for_the_hash_is_dropped() {
    let (origin, _server, node, meta) = origin_down_with_new_app().await;
    let honest = TestPeer::start(meta.clone()).await;
    honest.add_targets(&origin.served()).await;
    let wanted = origin.repo.delegated("acme").expect("acme").targets["apps/app-b/1.0.0.json"].blake3().expect("b3");
    let other = origin.repo.delegated("acme").expect("acme").targets["apps/app-a/1.0.0.json"].blake3().expect("b3");
    let evil = TestPeer::start_with(
        meta,
        Some(Tamper {
            upstream: honest.addr.clone(),
            client: client_endpoint().await,
            flip: false,
            swap: Some((wanted, other)),
            trickle: None,
        }),
    )
    .await;
    // Only the evil provider: nothing may be stored.
    node.add_peer(&evil.addr);
    let before = node.stored();
    let report = assert_refused(&node, &before, RefusalKind::FilesUnavailable, "");
    assert!(dropped(&report, &evil.addr, ProviderFailureKind::BadData), "{:?}", report.provider_failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malicious_peer_equivocating_timestamp_is_kept_as_evidence() {
    let (origin, _server, node) = synced();
    let before = node.stored();
    // The same version, validly signed, different content: two histories.
    let mut ts = timestamp_of(&origin);
    ts.expires += TimeDelta::hours(1);
    let meta = FakeMeta::from_dir(&origin.served());
    meta.set("timestamp.json", sign(ts, &[&origin.timestamp_key]));
    let peer = TestPeer::start(meta).await;
    node.set_origin(&dead_url());
    node.add_peer(&peer.addr);
    let (_, report) = node.sync();
    assert_eq!(report.equivocation.len(), 1, "{report:?}");
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report.equivocation[0]).expect("evidence")).expect("json");
    assert_eq!(evidence["version"], serde_json::json!(timestamp_of(&origin).version));
    assert_ne!(evidence["trusted"], evidence["conflicting"]);
    assert_eq!(node.status_json()["equivocation"].as_array().expect("list").len(), 1);
    assert!(node.stored() == before, "the equivocating timestamp replaced the trusted one");
    // The operator's dashboard says so in a red banner, naming the evidence.
    let daemon = node.run();
    let (status, page) = daemon.dashboard_page("/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("class=\"banner danger\" role=\"alert\""), "{page}");
    assert!(page.contains("two different catalogs for the same version"), "{page}");
    let file = report.equivocation[0].file_name().expect("file").to_string_lossy().into_owned();
    assert!(page.contains(&file), "the banner names the evidence {file}:\n{page}");
}

// --- keys and thresholds ------------------------------------------------------------------

#[test]
fn unknown_key_signing_the_timestamp_is_refused() {
    let (origin, server, node) = synced();
    let before = node.stored();
    let mut ts = timestamp_of(&origin);
    ts.version += 1;
    server.answer("/metadata/timestamp.json", Answer::Bytes(sign(ts, &[&SigningKey::generate()])));
    assert_refused(&node, &before, RefusalKind::Signatures, "timestamp");
}

#[test]
fn revoked_timestamp_key_is_refused_after_rotation() {
    let (mut origin, server, node) = synced();
    let old_key = origin.timestamp_key.clone();
    let new_key = SigningKey::generate();
    let now = Utc::now();
    origin.repo.rotate("timestamp", &[new_key.public_key()], 1, &[&origin.root_key], now).expect("rotate");
    origin.timestamp_key = new_key;
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("publish");
    origin.write();
    assert!(node.sync().0, "rotation accepted");
    let before = node.stored();
    let mut ts = timestamp_of(&origin);
    ts.version += 1;
    server.answer("/metadata/timestamp.json", Answer::Bytes(sign(ts, &[&old_key])));
    assert_refused(&node, &before, RefusalKind::Signatures, "timestamp");
}

#[test]
fn threshold_not_met_is_refused() {
    let (mut origin, _server, node) = synced();
    let before = node.stored();
    let (k1, k2) = (SigningKey::generate(), SigningKey::generate());
    let now = Utc::now();
    origin.repo.rotate("timestamp", &[k1.public_key(), k2.public_key()], 2, &[&origin.root_key], now).expect("rotate");
    // Signed by one of the two required timestamp keys.
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &k1, now).expect("publish");
    origin.write();
    assert_refused(&node, &before, RefusalKind::Signatures, "timestamp");
}

// --- root rotation ------------------------------------------------------------------------

#[test]
fn root_rotation_valid_chain_is_followed() {
    let (mut origin, _server, node) = synced();
    let now = Utc::now();
    for _ in 0..2 {
        let next = SigningKey::generate();
        origin.repo.rotate("root", &[next.public_key()], 1, &[&origin.root_key, &next], now).expect("rotate");
        origin.root_key = next;
    }
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("publish");
    origin.write();
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert_eq!(node.status_json()["catalog"]["root_version"], serde_json::json!(3));
}

#[test]
fn root_rotation_broken_chain_is_refused() {
    let (mut origin, server, node) = synced();
    let before = node.stored();
    let now = Utc::now();
    let next = SigningKey::generate();
    origin.repo.rotate("root", &[next.public_key()], 1, &[&origin.root_key, &next], now).expect("rotate");
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("publish");
    origin.write();
    // Version 2 signed by the new key only: the old root never approved it (§5.3.4).
    let v2 = SignedMetadata::<Root>::from_slice(&origin.metadata("2.root.json"), "root").expect("v2").signed;
    server.answer("/metadata/2.root.json", Answer::Bytes(sign(v2, &[&next])));
    assert_refused(&node, &before, RefusalKind::Signatures, "root");
}

// --- slow peers ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_peer_times_out_and_the_next_peer_serves() {
    let (origin, _server, node, meta) = origin_down_with_new_app().await;
    node.set_timeout(2);
    let silent = FakeMeta::from_dir(&origin.served());
    silent.silent.store(true, Ordering::Relaxed);
    let slow = TestPeer::start(silent).await;
    let good = TestPeer::start(meta).await;
    good.add_targets(&origin.served()).await;
    node.add_peer(&slow.addr);
    node.add_peer(&good.addr);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert_eq!(report.source.as_deref(), Some(format!("peer {}", good.addr.id).as_str()));
    let slow_source = format!("peer {}", slow.addr.id);
    let unreachable = report.refusals.iter().any(|r| r.kind == RefusalKind::Unreachable && r.source == slow_source);
    assert!(unreachable, "{:#?}", report.refusals);
    assert!(node.apps().iter().any(|a| a.0 == "app-b"));
}

/// A blobs provider that accepts and then says nothing.
#[derive(Debug, Clone)]
struct Silent;

impl ProtocolHandler for Silent {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let _keep = connection;
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_loris_provider_is_cut_at_the_overall_deadline() {
    // A 1 MiB image archive in the catalog, fetched with the origin down from one peer that
    // sends a piece just before every stall timeout.
    let (mut origin, _server, node) = synced();
    let image: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(31) % 251) as u8).collect();
    let hash = blake3::hash(&image).to_hex().to_string();
    let now = Utc::now();
    let targets = vec![("images/app-a/big.tar".to_owned(), image, "image".to_owned())];
    origin.repo.add_publisher_targets("acme", targets, &origin.publisher, now).expect("add image");
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("publish");
    origin.write();
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    node.set_origin(&dead_url());
    node.set_timeout(2);
    let meta = FakeMeta::from_dir(&origin.served());
    let honest = TestPeer::start(meta.clone()).await;
    honest.add_targets(&origin.served()).await;
    let pause = std::time::Duration::from_millis(1500);
    let tamper = Tamper {
        upstream: honest.addr.clone(),
        client: client_endpoint().await,
        flip: false,
        swap: None,
        trickle: Some(pause),
    };
    let slow = TestPeer::start_with(meta, Some(tamper)).await;
    node.add_peer(&slow.addr);
    let data = node.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::util::node_bin())
            .args(["fetch", "images/app-a/big.tar", "--data"])
            .arg(&data)
            .output()
            .expect("archy-node fetch")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&slow.addr.to_string()) && stderr.contains("slower than the 64 KiB/s"), "{stderr}");
    assert!(!node.path().join("files").join(&hash).exists(), "a partial file was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_blob_provider_is_dropped_for_the_next() {
    let (origin, _server, node, meta) = origin_down_with_new_app().await;
    node.set_timeout(2);
    let slow = TestPeer::start_with(meta.clone(), Some(Silent)).await;
    let good = TestPeer::start(meta).await;
    good.add_targets(&origin.served()).await;
    node.add_peer(&slow.addr);
    node.add_peer(&good.addr);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert!(dropped(&report, &slow.addr, ProviderFailureKind::Timeout), "{:?}", report.provider_failures);
    assert!(node.apps().iter().any(|a| a.0 == "app-b"));
}

// --- state on disk ------------------------------------------------------------------------

#[test]
fn a_half_written_generation_is_never_used() {
    let (mut origin, _server, node) = synced();
    let before = node.apps();
    // What a crash in the middle of writing the next generation leaves behind.
    let catalog = node.path().join("catalog");
    std::fs::create_dir_all(catalog.join("gen-000099")).expect("dir");
    std::fs::write(catalog.join("gen-000099/timestamp.json"), b"{\"half\":").expect("partial");
    std::os::unix::fs::symlink("gen-000099", catalog.join("current.tmp")).expect("stray link");
    assert_eq!(node.apps(), before, "a restarted node reads its last complete catalog");
    origin.publish("app-b", "1.0.0");
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert!(node.apps().iter().any(|a| a.0 == "app-b"));
}
