//! The origin's transparency log with the real `archy-registry` and `archy-node` processes on
//! loopback: an honest origin's log advances with every publish and its proofs verify (here and
//! in an independent C2SP verifier); an origin that rewrites its history is caught, proven and
//! refused until the operator trusts it again.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use catalog::tlog::{NoteKey, SignedCheckpoint};
use node::sync::RefusalKind;

use crate::util::node_bin;
use crate::util::origin::*;
use crate::util::split_view::split_world;

/// The registry re-reads its folder every second: the test publishes into it from this process.
fn registry(origin: &Origin) -> RegistryProcess {
    RegistryProcess::start_with(&origin.registry_folder(), None, &["--resign-check", "1"])
}

fn log_key(origin: &Origin) -> NoteKey {
    origin.repo.root().log().expect("root").expect("the root names a log")
}

/// Waits until the registry serves the timestamp the origin wrote last.
fn wait_served(registry: &RegistryProcess, origin: &Origin) {
    let want = origin.metadata("timestamp.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let served = ureq::get(&format!("{}/metadata/timestamp.json", registry.http)).call().ok().and_then(|r| {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut body).ok().map(|_| body)
        });
        if served.as_deref() == Some(want.as_slice()) {
            return;
        }
        assert!(Instant::now() < deadline, "the registry does not serve the new timestamp");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The checkpoint the node keeps, verified with the log's key.
fn kept(node: &Node, key: &NoteKey) -> SignedCheckpoint {
    let bytes = std::fs::read(node.path().join("log/checkpoint")).expect("the node keeps a checkpoint");
    SignedCheckpoint::open(&bytes, key).expect("the kept checkpoint verifies")
}

fn log_leaves(origin: &Origin) -> usize {
    catalog::repo::log_leaves(&origin.served()).expect("leaves").len()
}

/// Runs the independent C2SP verifier (`tests/interop/c2sp_verify.py`) on `input`.
fn c2sp_verify(input: &serde_json::Value) -> (bool, String) {
    let python = std::env::var("ARCHY_INTEROP_PYTHON")
        .expect("ARCHY_INTEROP_PYTHON is not set: run the tests with `bash tests/run.sh`, which makes the venv");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/c2sp_verify.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the C2SP verifier");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), input.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("verifier");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn an_honest_origin_s_log_advances_with_every_publish_and_its_proofs_verify_independently() {
    let mut origin = Origin::with_log();
    let key = log_key(&origin);
    let registry = registry(&origin);
    let nodes = [
        Node::init(&origin.root_v1(), Some(&registry.http), &[]),
        Node::init(&origin.root_v1(), Some(&registry.http), &[]),
    ];
    for node in &nodes {
        let (ok, report) = node.sync();
        assert!(ok, "{report:?}");
    }
    let node = &nodes[0];
    let first = kept(node, &key);
    let first_timestamp = origin.metadata("timestamp.json");
    assert_eq!(first.checkpoint().size, log_leaves(&origin) as u64);

    // 100 publishes in a row; each node syncs after every tenth and its checkpoint follows.
    let mut last_size = first.checkpoint().size;
    for i in 1..=100 {
        origin.publish("app-a", &format!("1.0.{i}"));
        if i % 10 == 0 {
            wait_served(&registry, &origin);
            for node in &nodes {
                let (ok, report) = node.sync();
                assert!(ok, "publish {i}: {report:?}");
                let now = kept(node, &key);
                assert!(now.checkpoint().size > last_size, "publish {i}: the checkpoint did not advance");
                assert_eq!(now.checkpoint().size, log_leaves(&origin) as u64, "publish {i}");
            }
            last_size = log_leaves(&origin) as u64;
        }
    }
    let status = node.status_json();
    assert_eq!(status["log"]["size"], serde_json::json!(last_size), "{status}");
    assert_eq!(status["log"]["name"], serde_json::json!(catalog::testing::TEST_LOG), "{status}");
    assert!(status["log"]["split_view"].is_null(), "{status}");

    // The origin's checkpoint at its HTTP address is the one the node keeps.
    let served = ureq::get(&format!("{}/log/checkpoint", registry.http))
        .call()
        .expect("checkpoint")
        .into_string()
        .expect("text");
    assert_eq!(served, kept(node, &key).to_text());

    // An independent implementation of the C2SP formats agrees: the checkpoint's signature, a
    // witness cosignature made with archy's code, the first timestamp's inclusion, and the
    // consistency of the node's first checkpoint with its last.
    let leaf = catalog::tlog::leaf_hash(&first_timestamp);
    let proof: catalog::tlog::LogProof = ureq::get(&format!(
        "{}/metadata/{}",
        registry.http,
        catalog::repo::log_proof_name(&leaf, first.checkpoint().size)
    ))
    .call()
    .expect("proof")
    .into_json()
    .expect("json");
    let mut cosigned = SignedCheckpoint::open(proof.checkpoint.as_bytes(), &key).expect("opens");
    let witness = catalog::keys::SigningKey::generate();
    let witness_key = ed25519_dalek::SigningKey::from_bytes(&witness.seed());
    cosigned.cosign("witness.test/w1", &witness_key, 1_700_000_000).expect("cosign");
    let witness_vkey = NoteKey::witness("witness.test/w1", witness.verifying_key()).expect("key").to_vkey();
    let input = serde_json::json!({
        "checkpoint": cosigned.to_text(),
        "log_vkey": key.to_vkey(),
        "witness_vkeys": [witness_vkey],
        "witnesses_required": 1,
        "leaf": B64.encode(&first_timestamp),
        "leaf_index": proof.index,
        "inclusion": proof.inclusion,
        "old_checkpoint": first.to_text(),
        "consistency": proof.consistency.consistency,
    });
    let (ok, out) = c2sp_verify(&input);
    assert!(ok, "the C2SP verifier refused archy's log: {out}");
    // And it refuses what it must: a checkpoint with its size changed.
    let mut tampered = input.clone();
    tampered["checkpoint"] = serde_json::json!(cosigned.to_text().replacen(
        &format!("\n{last_size}\n"),
        &format!("\n{}\n", last_size + 1),
        1
    ));
    let (ok, out) = c2sp_verify(&tampered);
    assert!(!ok, "a tampered checkpoint verified: {out}");
}

#[test]
fn an_origin_that_rewrites_its_history_is_caught_proven_and_refused_until_the_operator_trusts_it_again() {
    let mut origin = Origin::with_log();
    let key = log_key(&origin);
    let mut registry = registry(&origin);
    let node = Node::init(&origin.root_v1(), Some(&registry.http), &[]);
    assert!(node.sync().0);
    origin.publish("app-a", "1.1.0");
    wait_served(&registry, &origin);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    let known = kept(&node, &key).checkpoint().clone();
    let before = node.stored();

    // The origin drops a leaf from its log (the state the node saw first) and signs on.
    registry.terminate();
    let log = origin.served().join("log");
    let leaves = std::fs::read(log.join("leaves")).expect("leaves");
    let mut rewritten = leaves[..32].to_vec();
    rewritten.extend_from_slice(&leaves[64..]);
    std::fs::write(log.join("leaves"), rewritten).expect("rewrite");
    std::fs::remove_file(log.join("checkpoint")).expect("checkpoint");
    origin.publish("app-a", "1.2.0");
    let registry = registry_at(&origin, &registry);
    wait_served(&registry, &origin);

    let (ok, report) = node.sync();
    assert!(!ok, "a rewritten history was taken: {report:?}");
    assert!(report.refusals.iter().any(|r| r.kind == RefusalKind::SplitView && r.subject == "timestamp"), "{report:?}");
    assert_eq!(node.stored(), before, "the refused catalog changed what the node stores");
    assert_eq!(kept(&node, &key).checkpoint(), &known, "the kept checkpoint moved");
    // The proof: both signed notes, each verifying with the log's key.
    let status = node.status_json();
    let view = &status["log"]["split_view"];
    let old = SignedCheckpoint::open(view["known"].as_str().expect("known").as_bytes(), &key).expect("known verifies");
    let new = SignedCheckpoint::open(view["shown"].as_str().expect("shown").as_bytes(), &key).expect("shown verifies");
    assert_eq!(old.checkpoint(), &known);
    assert_ne!(new.checkpoint().root, known.root);
    assert!(
        std::fs::read_dir(node.path().join("evidence"))
            .expect("evidence")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("split-view-")),
        "no evidence file"
    );
    let text = String::from_utf8(node.status().stdout).expect("utf-8");
    assert!(text.contains("SPLIT VIEW"), "{text}");
    // The operator's dashboard says it too, and what to do.
    {
        let daemon = node.run();
        let (code, page) = daemon.dashboard_page("/");
        assert_eq!(code, 200, "{page}");
        assert!(page.contains("showed a split view") && page.contains("archy-node trust-origin-again"), "{page}");
    }

    // Honest from now on, the origin is still refused: the operator decides.
    origin.publish("app-a", "1.3.0");
    wait_served(&registry, &origin);
    let (ok, report) = node.sync();
    assert!(!ok && report.refusals.iter().any(|r| r.kind == RefusalKind::SplitView), "{report:?}");
    assert_eq!(node.stored(), before);

    // `trust-origin-again` shows the proof and acts only with --yes.
    let trust = |yes: bool| {
        let mut cmd = Command::new(node_bin());
        cmd.args(["trust-origin-again", "--data"]).arg(node.path());
        if yes {
            cmd.arg("--yes");
        }
        cmd.output().expect("run trust-origin-again")
    };
    let shown = trust(false);
    assert!(!shown.status.success());
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(view["known"].as_str().unwrap()) && shown.contains(view["shown"].as_str().unwrap()),
        "{shown}"
    );
    assert!(trust(true).status.success());
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert!(node.apps().iter().any(|a| a.1 == "1.3.0"), "{:?}", node.apps());
    assert_eq!(kept(&node, &key).checkpoint().size, log_leaves(&origin) as u64);
}
#[test]
fn while_the_origin_is_away_a_logged_catalog_moves_forward_through_a_peer_that_proves_it() {
    let mut origin = Origin::with_log();
    let key = log_key(&origin);
    let registry = registry(&origin);
    let ahead = Node::init(&origin.root_v1(), Some(&registry.http), &[]);
    let behind = Node::init(&origin.root_v1(), Some(&registry.http), &[]);
    for node in [&ahead, &behind] {
        let (ok, report) = node.sync();
        assert!(ok, "{report:?}");
    }
    // Publishes the behind node does not see before the origin goes away.
    for i in 1..=5 {
        origin.publish("app-a", &format!("1.0.{i}"));
    }
    wait_served(&registry, &origin);
    let (ok, report) = ahead.sync();
    assert!(ok, "{report:?}");
    let size = kept(&ahead, &key).checkpoint().size;
    assert_eq!(size, log_leaves(&origin) as u64);
    assert!(kept(&behind, &key).checkpoint().size < size);
    // The node that is ahead keeps a copy of the log's leaves: the origin's, byte for byte.
    assert_eq!(
        std::fs::read(ahead.path().join("log/leaves")).expect("the node copies the leaves"),
        std::fs::read(origin.served().join("log/leaves")).expect("the origin's leaves")
    );

    drop(registry);
    let daemon = ahead.run();
    behind.add_peer(&daemon.iroh());
    let (ok, report) = behind.sync();
    assert!(ok, "{report:?}");
    assert!(report.source.as_deref().is_some_and(|s| s.starts_with("peer ")), "{report:?}");
    assert!(!report.origin_reachable, "{report:?}");
    // The peer proved the new timestamp in the log and its consistency with what the node had
    // seen, from its copy: the node's checkpoint moved to the peer's, and its catalog with it.
    assert_eq!(kept(&behind, &key).checkpoint(), kept(&ahead, &key).checkpoint());
    assert_eq!(
        report.timestamp_version,
        ahead.status_json()["catalog"]["timestamp_version"].as_u64().expect("version")
    );
    let versions = |n: &Node| n.apps().into_iter().map(|(id, version, _)| (id, version)).collect::<Vec<_>>();
    assert_eq!(versions(&behind), versions(&ahead));
    assert!(versions(&behind).contains(&("app-a".into(), "1.0.5".into())), "{:?}", behind.apps());
    drop(daemon);
}

#[test]
fn a_log_started_on_a_running_catalog_is_required_from_the_root_that_names_it() {
    let mut origin = Origin::new();
    let registry = registry(&origin);
    let node = Node::init(&origin.root_v1(), Some(&registry.http), &[]);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert!(!node.path().join("log/checkpoint").exists());

    // Root v2 names a log (what `archy repo add-log` does); the running registry serves it.
    let key = catalog::keys::SigningKey::generate();
    let now = chrono::Utc::now();
    let log = origin.repo.start_log(catalog::testing::TEST_LOG, &key, &[&origin.root_key], now).expect("start the log");
    origin.log_key = Some(key);
    origin.registry_folder();
    origin.publish("app-a", "1.0.1");
    wait_served(&registry, &origin);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert_eq!(kept(&node, &log).checkpoint().size, log_leaves(&origin) as u64);
    let status = node.status_json();
    assert_eq!(status["catalog"]["root_version"], 2, "{status}");
    assert_eq!(status["log"]["name"], serde_json::json!(catalog::testing::TEST_LOG), "{status}");

    // From that root on, a timestamp without its proof is refused: the next publish is served,
    // but the log is moved away, so the registry proves nothing.
    let before = node.status_json()["catalog"].clone();
    origin.publish("app-a", "1.0.2");
    std::fs::rename(origin.served().join("log"), origin.dir.path().join("log-away")).expect("move the log");
    wait_served(&registry, &origin);
    let (ok, report) = node.sync();
    assert!(!ok, "{report:?}");
    assert!(report.refusals.iter().any(|r| r.kind == RefusalKind::Log), "{report:?}");
    assert_eq!(node.status_json()["catalog"], before);
}

/// The registry started again on the same folder and HTTP address.
fn registry_at(origin: &Origin, before: &RegistryProcess) -> RegistryProcess {
    RegistryProcess::start_with(&origin.registry_folder(), Some(before.http_addr()), &["--resign-check", "1"])
}

fn witnessing_node(origin_http: &str, root: &Path, peers: &[archy_net::PeerAddr]) -> Node {
    let node = Node::init(root, Some(origin_http), peers);
    node.edit_config(|c| {
        c.insert("swarm".into(), toml::toml! { announce_secs = 1 }.into());
    });
    node
}

#[test]
fn an_origin_showing_two_halves_two_histories_is_caught_by_every_node_on_separate_hosts() {
    let _one = crate::util::netns::ONE_LAB_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut world = split_world("tsv", 6);
    let key = log_key(&world.origin);
    // The same catalog version, two states: `oa` shows one to n1–n3, `ob` the other to n4–n6.
    world.fork_now();
    world.until_every_node_holds_the_proof(Duration::from_secs(120));
    // A node may have taken its own view in the round before the other half's checkpoint
    // reached it; from the proof on, it takes nothing more, installs nothing, and the origin
    // turning honest again changes nothing until the operator decides.
    let after: Vec<serde_json::Value> = world.nodes.iter().map(|n| n.status()["catalog"].clone()).collect();
    world.publish_honestly("app-a", "1.2.0");
    for (n, before) in world.nodes.iter().zip(&after) {
        let status = n.status();
        // Two checkpoints the log signed that can't both be true (the same size with two roots,
        // or a consistency proof showing the larger does not begin with the smaller): a proof
        // anyone with the root checks on its own.
        let view: node::sync::log::SplitView =
            serde_json::from_value(status["log"]["split_view"].clone()).expect("a split view");
        view.verify(&key).unwrap_or_else(|e| panic!("{}: the proof proves nothing: {e}: {status}", n.host.name));
        // Neither view was taken, and no round takes anything from the origin now.
        let report = n.sync();
        assert!(
            report["refusals"].as_array().is_some_and(|r| r.iter().any(|r| r["kind"] == "split_view")),
            "{}: {report}",
            n.host.name
        );
        assert_eq!(&n.status()["catalog"], before, "{}: the catalog moved after the proof", n.host.name);
        let install =
            Command::new(node_bin()).args(["install", "app-a", "--data"]).arg(n.path()).output().expect("install");
        let stderr = String::from_utf8_lossy(&install.stderr);
        assert!(!install.status.success() && stderr.contains("split view"), "{}: install: {stderr}", n.host.name);
    }
}

#[test]
fn running_nodes_cosign_each_others_checkpoints_and_a_witness_policy_counts_them() {
    let origin = Origin::with_log();
    let key = log_key(&origin);
    let registry = registry(&origin);
    let n1 = witnessing_node(&registry.http, &origin.root_v1(), &[]);
    let n2 = witnessing_node(&registry.http, &origin.root_v1(), &[]);
    let d1 = n1.run();
    n2.add_peer(&d1.iroh());
    let d2 = n2.run();
    let vkey2 = n2.status_json()["log"]["witness_key"].as_str().expect("n2 has a witness key").to_owned();
    let name2 = vkey2.split('+').next().expect("name").to_owned();
    n1.edit_config(|c| {
        c.insert(
            "log".into(),
            toml::toml! { witnesses = [(vkey2.clone())]
            min_witnesses = 1 }
            .into(),
        );
    });
    // n1's kept checkpoint gathers n2's cosignature (and its own).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = n1.status_json();
        let names: Vec<&str> = status["log"]["witnesses"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if names.contains(&name2.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "n2's cosignature never reached n1: {status}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let cosigned = kept(&n1, &key);
    let n2_key = NoteKey::from_vkey(&vkey2).expect("vkey");
    assert!(cosigned.note().cosigned_at(&n2_key).is_some());
    let text = String::from_utf8(n1.status().stdout).expect("utf-8");
    assert!(text.contains(&name2), "{text}");
    drop((d1, d2));
}

#[test]
fn a_restart_keeps_the_newest_checkpoint_and_a_peer_replaying_old_ones_changes_nothing() {
    let mut origin = Origin::with_log();
    let key = log_key(&origin);
    let registry = registry(&origin);
    let node = witnessing_node(&registry.http, &origin.root_v1(), &[]);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    let mut seen = vec![kept(&node, &key).to_text()];
    for i in 1..=3 {
        origin.publish("app-a", &format!("1.0.{i}"));
        wait_served(&registry, &origin);
        let (ok, report) = node.sync();
        assert!(ok, "{report:?}");
        seen.push(kept(&node, &key).to_text());
    }
    let newest = kept(&node, &key);
    assert_eq!(newest.checkpoint().size, log_leaves(&origin) as u64);

    // A peer gossips every checkpoint the log signed so far, the old ones first, and last the
    // newest cosigned by a witness the node names: once that cosignature shows in `status`, the
    // node has read the old ones too.
    let witness = ed25519_dalek::SigningKey::from_bytes(&[21; 32]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let mut cosigned = newest.clone();
    cosigned.cosign("witness.test/w1", &witness, now).expect("cosign");
    let vkey = NoteKey::witness("witness.test/w1", witness.verifying_key()).expect("key").to_vkey();
    node.edit_config(|c| {
        c.insert("log".into(), toml::toml! { witnesses = [(vkey.clone())] }.into());
    });
    seen.pop();
    seen.push(cosigned.to_text());
    let notes = origin.dir.path().join("notes.json");
    std::fs::write(&notes, serde_json::to_vec(&seen).expect("json")).expect("write");
    let daemon = node.run();
    let mut replayer = Command::new(crate::util::swarm_hosts::adversary_bin());
    replayer
        .args(["--mode", "notes", "--root"])
        .arg(origin.root_v1())
        .args(["--bind", "127.0.0.1:0", "--bootstrap", &daemon.iroh().to_string(), "--version", "0", "--file"])
        .arg(&notes);
    let _replayer = crate::util::swarm_hosts::start_adversary(replayer);
    let witnesses = |status: &serde_json::Value| status["log"]["witnesses"].to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !witnesses(&node.status_json()).contains("witness.test/w1") {
        assert!(Instant::now() < deadline, "the replayed notes never reached the node: {}", node.status_json());
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    // Nothing moved: the same tree, no split view, nothing pending.
    assert_eq!(kept(&node, &key).checkpoint(), newest.checkpoint());
    let status = node.status_json();
    assert!(status["log"]["split_view"].is_null(), "{status}");
    assert!(!node.path().join("log/pending").exists());

    // A restart keeps the checkpoint, with the witness's cosignature, and the node goes on along
    // the log.
    drop(daemon);
    let _daemon = node.run();
    assert_eq!(kept(&node, &key).checkpoint(), newest.checkpoint());
    assert!(witnesses(&node.status_json()).contains("witness.test/w1"));
    origin.publish("app-a", "1.0.9");
    wait_served(&registry, &origin);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert_eq!(kept(&node, &key).checkpoint().size, log_leaves(&origin) as u64);
}
