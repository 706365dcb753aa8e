//! A publisher key over its life, end to end: the origin rotates and revokes publisher roles with
//! `archy repo`, publishers rotate and revoke their keys with `archy key` on a real relay, and
//! `archy-node` binaries sync, list, install, update and refuse. Every refusal names its rule.

use std::path::Path;
use std::process::Command;

use archy_nostr::nostr_sdk::{Keys, ToBech32 as _};
use catalog::envelope::SignedEnvelope;
use catalog::keys::SigningKey;
use catalog::manifest::{Limits, Manifest};
use catalog::repo::Repository;
use chrono::Utc;

use crate::util::nostr::{Publisher, World, archy, follows, listed, sync, text};
use crate::util::{archy_bin, docker, origin, run_ok};

/// Runs `archy <args>`; (exit code, stdout and stderr).
fn archy_cli(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(archy_bin()).args(args).env("ARCHY_LOG", "warn").output().expect("run archy");
    (out.status.code(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Publishes `app-b` `version` as a web app (the test image, its archive) in `role`, signed by
/// `key`, and signs a snapshot and timestamp.
fn publish_web(origin: &mut origin::Origin, role: &str, key: &SigningKey, version: &str, port: u16, archive: &[u8]) {
    let image_id = std::fs::read_to_string(origin.dir.path().join("image-id")).expect("image id");
    let toml = docker::web_app("app-b", version, &image_id, &docker::target("app-b"), port)
        .replace(&docker::publisher().did().to_string(), &key.did().to_string());
    let manifest = Manifest::from_toml_str(&toml, &Limits::default()).expect("manifest");
    let envelope = SignedEnvelope::sign(&manifest, key).expect("sign").to_bytes();
    let files = vec![
        (catalog::repo::envelope_target_path("app-b", &manifest.version), envelope, "manifest".to_owned()),
        (catalog::repo::image_target_path(&docker::target("app-b")), archive.to_vec(), "image".to_owned()),
    ];
    let now = Utc::now();
    origin.repo.add_publisher_targets(role, files, key, now).expect("publish");
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("snapshot");
    origin.write();
}

/// `archy repo <command> <folder> <args…>`, then the test's copy of the repository is read back
/// from disk.
fn repo_cli(origin: &mut origin::Origin, command: &str, args: &[&str]) -> (Option<i32>, String) {
    let folder = origin.registry_folder();
    let mut all = vec!["repo", command, path_str(&folder)];
    all.extend_from_slice(args);
    let result = archy_cli(&all);
    origin.repo = Repository::load(&origin.served(), catalog::repo::Expiry::default()).expect("reload");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_rotates_and_revokes_a_publisher_and_nodes_follow() {
    let Some(_engine) = docker::docker_or_skip() else {
        return;
    };
    let image = docker::test_image().await;
    let _cleanup = docker::Cleanup(vec!["app-b".to_owned()]);
    let archive = std::fs::read(&image.archive).expect("archive");
    let mut origin = origin::Origin::new();
    std::fs::write(origin.dir.path().join("image-id"), &image.image_id).expect("image id");
    let port = docker::free_port();
    let old = SigningKey::from_seed(origin.publisher.seed());
    publish_web(&mut origin, "acme", &old, "1.0.0", port, &archive);
    let server = origin::HttpServer::start(origin.served());
    let node = origin::Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    node.edit_config(|c| {
        c.insert("publish_ip".into(), "127.0.0.1".into());
    });
    let run = |args: &[&str]| {
        let out = Command::new(crate::util::node_bin())
            .args(args)
            .arg("--data")
            .arg(node.path())
            .env("ARCHY_LOG", "warn")
            .output()
            .expect("archy-node runs");
        (out.status.code(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
    };
    assert!(node.sync().0);
    let (code, out) = run(&["install", "app-b"]);
    assert_eq!(code, Some(0), "{out}");

    // The publisher moved to a new key; the operator rotates the role.
    let new = SigningKey::generate();
    let (code, out) = repo_cli(&mut origin, "rotate-publisher", &["--name", "acme", "--did", &new.did().to_string()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("role `acme-2`"), "{out}");

    // The old key is refused for a new version, naming the rule; the new key publishes.
    let work = tempfile::tempdir().expect("tempdir");
    let old_key = work.path().join("old.key");
    catalog::keyfile::write_new(&old_key, &old).expect("key file");
    catalog::testing::TestApp::new("app-b").version("1.2.0").write(&work.path().join("app"), &old.did());
    let (code, out) = repo_cli(&mut origin, "add", &["--key", path_str(&old_key), path_str(&work.path().join("app"))]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("publisher role `acme` is retired: the origin accepts no new version from its key"), "{out}");
    assert!(out.contains("publish with the key of role `acme-2`"), "{out}");
    publish_web(&mut origin, "acme-2", &new, "1.1.0", port, &archive);

    // The node lists both versions, each under the role (and key) that published it, and
    // updates the installed app to the new key's version: the origin's signed rotation proves
    // the new key continues the old one.
    assert!(node.sync().0);
    let apps = node.apps_json();
    let roles: Vec<(String, String)> = apps
        .iter()
        .filter(|a| a["id"] == "app-b")
        .map(|a| (a["version"].as_str().unwrap().to_owned(), a["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(roles, [("1.1.0".to_owned(), "acme-2".to_owned()), ("1.0.0".to_owned(), "acme".to_owned())]);
    let (code, out) = run(&["update", "app-b"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1.1.0"), "{out}");
    assert_eq!(docker::http_get(port, "/").as_deref(), Some("hello from archy\n"));

    // The old version still installs: its envelope was verified under the old key's role.
    let (code, out) = run(&["uninstall", "app-b"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["install", "app-b", "--version", "1.0.0"]);
    assert_eq!(code, Some(0), "{out}");

    // The old key was stolen after all: revoked without yank, its version stays listed, the
    // installed app is flagged, and a new install of it is refused, naming the rule.
    let (code, out) = repo_cli(&mut origin, "revoke-publisher", &["--name", "acme"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(node.sync().0);
    let status = text(&node.status().stdout);
    assert!(status.contains("FLAGGED: app-b 1.0.0 is signed by a revoked publisher key"), "{status}");
    assert!(status.contains("publisher role `acme` revoked by the origin"), "{status}");
    let (code, out) = run(&["uninstall", "app-b"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["install", "app-b", "--version", "1.0.0"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("publisher role `acme` revoked by the origin"), "{out}");
    assert!(out.contains("the origin no longer vouches for what that key signed"), "{out}");
    // Without a version the newest one not revoked is installed.
    let (code, out) = run(&["install", "app-b"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("installed app-b 1.1.0"), "{out}");

    // Revoked with yank, the new role's versions leave the catalog; the installed one is flagged.
    let (code, out) = repo_cli(&mut origin, "revoke-publisher", &["--name", "acme-2", "--yank"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(node.sync().0);
    let versions: Vec<String> =
        node.apps_json().iter().filter(|a| a["id"] == "app-b").map(|a| a["version"].to_string()).collect();
    assert_eq!(versions, ["\"1.0.0\""], "the yanked 1.1.0 is gone");
    let status = text(&node.status().stdout);
    assert!(status.contains("FLAGGED: app-b 1.1.0"), "{status}");
    assert!(status.contains("publisher role `acme-2` revoked and yanked by the origin"), "{status}");
    let (code, out) = run(&["update", "app-b"]);
    assert_ne!(code, Some(0), "nothing to update to: {out}");
}

/// Writes an archy Nostr key file holding `keys` (0600).
fn nostr_key_file(path: &Path, keys: &Keys) {
    let nsec = keys.secret_key().to_bech32().expect("nsec");
    catalog::keyfile::write_secret_new(path, format!("{{\"type\":\"nostr\",\"nsec\":\"{nsec}\"}}\n").as_bytes())
        .expect("nostr key file");
}

/// `archy-node trust --keys --json` of `node`.
fn key_report(node: &origin::Node) -> serde_json::Value {
    let out = archy(node, &["trust", "--keys", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn standing_of(report: &serde_json::Value, did: &str) -> String {
    report["nostr"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["did"] == did)
        .map(|k| k["standing"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "active".to_owned())
}

#[test]
fn a_stolen_key_is_revoked_and_neither_it_nor_the_thiefs_successor_is_trusted() {
    let world = World::new();
    let operator = Keys::generate();
    let work = tempfile::tempdir().expect("tempdir");
    let relay = world.relay.url();
    // The owner: a DID key file, a Nostr key followed by the nodes' operator, a release.
    let owner_key = work.path().join("owner/publisher.key");
    let owner = Publisher::new();
    catalog::keyfile::write_new(&owner_key, &owner.did).expect("owner key");
    world.relay.publish(&[
        owner.binding(),
        owner.release("hello-nostr", "1.0.0", &world.envelopes),
        follows(&operator, &[owner.key()]),
    ]);
    // The owner prepared a revocation naming a backup key, and kept it offline.
    let backup = Publisher::with_did(SigningKey::generate());
    let prepared = work.path().join("offline/revocation.json");
    let (code, out) = archy_cli(&[
        "key",
        "revoke",
        "--prepare",
        "--key",
        path_str(&owner_key),
        "--successor",
        &backup.did(),
        "--reason",
        "key stolen",
        "--out",
        path_str(&prepared),
    ]);
    assert_eq!(code, Some(0), "{out}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&prepared).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(world.relay.query(serde_json::json!({"kinds": [30078], "#t": ["archy-key"]})).is_empty(), "not posted");

    let nodes = [world.node(&[&operator]), world.node(&[&operator])];
    for node in &nodes {
        sync(node);
        assert_eq!(listed(node), [("hello-nostr".into(), "1.0.0".into(), owner.did())]);
    }

    // The thief copies the key and rotates it to their own, posting the succession and the new
    // key's binding from their Nostr key, then releases a new version under the new key.
    let thief_dir = work.path().join("thief");
    std::fs::create_dir_all(&thief_dir).unwrap();
    let thief_key = thief_dir.join("publisher.key");
    std::fs::copy(&owner_key, &thief_key).unwrap();
    let thief_nostr = Keys::generate();
    nostr_key_file(&thief_dir.join("nostr.key"), &thief_nostr);
    let thief_rotates = || {
        let nostr_key = thief_dir.join("nostr.key");
        let args =
            ["key", "rotate", "--key", path_str(&thief_key), "--nostr-key", path_str(&nostr_key), "--relay", &relay];
        let (code, out) = archy_cli(&args);
        assert_eq!(code, Some(0), "{out}");
    };
    thief_rotates();
    let thief = Publisher { did: catalog::keyfile::read(&thief_key).unwrap(), nostr: thief_nostr };
    assert_ne!(thief.did(), owner.did());
    world.relay.publish(&[thief.release("hello-nostr", "2.0.0", &world.envelopes)]);
    // Until the owner acts, the succession is followed: the thief's version continues the app
    // and inherits the owner's trust.
    for node in &nodes {
        sync(node);
        let apps = listed(node);
        assert!(apps.contains(&("hello-nostr".into(), "2.0.0".into(), thief.did())), "{apps:?}");
        assert_eq!(standing_of(&key_report(node), &owner.did()), "succeeded");
    }

    // The owner posts the prepared revocation from a fresh Nostr key (the DID key is gone).
    let owner_nostr2 = work.path().join("elsewhere/nostr.key");
    let (code, out) =
        archy_cli(&["key", "publish", path_str(&prepared), "--nostr-key", path_str(&owner_nostr2), "--relay", &relay]);
    assert_eq!(code, Some(0), "{out}");
    for node in &nodes {
        let (report, _) = sync(node);
        assert!(listed(node).is_empty(), "neither the stolen key's nor the thief's releases are offered");
        let keys = key_report(node);
        assert_eq!(standing_of(&keys, &owner.did()), "revoked");
        assert_eq!(standing_of(&keys, &thief.did()), "successor_of_revoked");
        let dropped = report.nostr.as_ref().map(|n| n.counts.dropped.clone()).unwrap_or_default();
        assert!(dropped.get("key_refused").copied().unwrap_or(0) >= 1, "{dropped:?}");
        for (did, rule) in [
            (owner.did(), "is revoked by its own key (a revocation always wins)"),
            (thief.did(), "a succession from a revoked key is ignored"),
        ] {
            let out = archy(node, &["trust", &did]);
            let said = text(&out.stdout);
            assert!(said.contains("refused by the publisher key rules") && said.contains(rule), "{said}");
        }
        let out = archy(node, &["install", "hello-nostr"]);
        assert!(!out.status.success());
        let said = text(&out.stderr);
        assert!(
            said.contains("refused by the publisher key rules: the releases of hello-nostr on Nostr were dropped"),
            "{said}"
        );
        assert!(
            said.contains("a revocation always wins") || said.contains("a succession from a revoked key is ignored"),
            "{said}"
        );
    }
    // The thief rotating again changes nothing: it is still a successor of the revoked key.
    thief_rotates();
    let thief2 = catalog::keyfile::read(&thief_key).unwrap().did().to_string();
    // The backup key named in the revocation continues the app, with the owner's trust
    // carried over to its new Nostr key.
    world.relay.publish(&[backup.binding(), backup.release("hello-nostr", "3.0.0", &world.envelopes)]);
    for node in &nodes {
        sync(node);
        assert_eq!(listed(node), [("hello-nostr".into(), "3.0.0".into(), backup.did())]);
        let keys = key_report(node);
        assert_eq!(standing_of(&keys, &thief2), "successor_of_revoked");
        let out = archy(node, &["trust", &backup.did()]);
        let said = text(&out.stdout);
        assert!(said.contains("installable: the score reaches nostr_policy.min_score"), "{said}");
    }
}

#[test]
fn a_replayed_succession_changes_nothing_and_a_revocation_of_someone_elses_did_is_refused() {
    let world = World::new();
    let work = tempfile::tempdir().expect("tempdir");
    let relay = world.relay.url();
    let alice = Publisher::new();
    let key = work.path().join("alice/publisher.key");
    catalog::keyfile::write_new(&key, &alice.did).expect("key");
    nostr_key_file(&work.path().join("alice/nostr.key"), &alice.nostr);
    let nostr_key = work.path().join("alice/nostr.key");
    world.relay.publish(&[alice.binding(), alice.release("hello-nostr", "1.0.0", &world.envelopes)]);
    // Alice rotates twice: A → B → C, each succession posted with her Nostr key.
    let mut statements = Vec::new();
    for _ in 0..2 {
        let out = run_ok(
            Command::new(archy_bin())
                .args(["--json", "key", "rotate", "--key"])
                .arg(&key)
                .arg("--nostr-key")
                .arg(&nostr_key)
                .args(["--relay", &relay]),
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        statements.push(std::path::PathBuf::from(printed["statement"].as_str().unwrap()));
    }
    let c = Publisher { did: catalog::keyfile::read(&key).unwrap(), nostr: alice.nostr.clone() };
    world.relay.publish(&[c.release("hello-nostr", "2.0.0", &world.envelopes)]);
    let node = world.node(&[]);
    sync(&node);
    // Her new release replaced the old one on the relay (one addressable event per Nostr key
    // and app, NIP-01).
    assert_eq!(listed(&node), [("hello-nostr".into(), "2.0.0".into(), c.did())]);
    let before = key_report(&node);

    // Someone replays the first succession from another Nostr key: the node holds it already.
    let replayer = work.path().join("replayer/nostr.key");
    let (code, out) =
        archy_cli(&["key", "publish", path_str(&statements[0]), "--nostr-key", path_str(&replayer), "--relay", &relay]);
    assert_eq!(code, Some(0), "{out}");
    sync(&node);
    assert_eq!(key_report(&node)["nostr"], before["nostr"], "standings unchanged");
    assert_eq!(listed(&node), [("hello-nostr".into(), "2.0.0".into(), c.did())]);

    // A revocation of alice's first DID signed by another key: `archy key publish` refuses to
    // post it, and a node that receives it anyway drops it naming the rule.
    let mallory = SigningKey::generate();
    let forged = catalog::keylife::Revocation::sign(&mallory, None, "", Utc::now()).unwrap();
    let forged =
        catalog::keylife::Statement::Revocation(catalog::keylife::Revocation { did: alice.did.did(), ..forged });
    let forged_file = work.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_bytes()).unwrap();
    let (code, out) =
        archy_cli(&["key", "publish", path_str(&forged_file), "--nostr-key", path_str(&replayer), "--relay", &relay]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("revocation is not signed by {}", alice.did())), "{out}");
    let event = archy_nostr::event::key_statement_event(&forged, &Keys::generate()).unwrap();
    world.relay.publish(&[event]);
    let (report, _) = sync(&node);
    let dropped = report.nostr.as_ref().map(|n| n.counts.dropped.clone()).unwrap_or_default();
    assert_eq!(dropped.get("bad_key_statement"), Some(&1), "{dropped:?}");
    let status = text(&node.status().stdout);
    assert!(status.contains("the revoked key must sign it"), "{status}");
    assert_eq!(standing_of(&key_report(&node), &alice.did()), "succeeded", "not revoked");
    assert_eq!(listed(&node), [("hello-nostr".into(), "2.0.0".into(), c.did())]);
}
