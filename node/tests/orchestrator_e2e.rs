//! End to end through the `archy-node` binary: an origin repository holding a signed manifest
//! and its image archive, served over HTTP on 127.0.0.1; `archy-node init` and `sync`; then
//! `archy-node install` takes the app from the synced catalog (archive fetched and verified by
//! the sync, `docker load`ed, image id checked) and its page answers from the host.

use std::process::Command;

use crate::util::{docker, origin};
use catalog::envelope::SignedEnvelope;
use catalog::manifest::{Limits, Manifest};
use chrono::Utc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_from_the_synced_catalog_with_the_cli() {
    let Some(_engine) = docker::docker_or_skip() else {
        return;
    };
    let docker = docker::docker().await;
    let image = docker::test_image().await;
    // The origin delegates `app-b` to its test publisher.
    let id = "app-b";
    let _cleanup = docker::Cleanup(vec![id.to_owned()]);
    let mut origin = origin::Origin::new();
    let port = docker::free_port();
    let toml = docker::web_app(id, "1.0.0", &image.image_id, &docker::target(id), port)
        .replace(&docker::publisher().did().to_string(), &origin.publisher.did().to_string());
    let manifest = Manifest::from_toml_str(&toml, &Limits::default()).expect("manifest");
    let envelope = SignedEnvelope::sign(&manifest, &origin.publisher).expect("sign").to_bytes();
    let archive = std::fs::read(&image.archive).unwrap();
    let files = vec![
        (catalog::repo::envelope_target_path(id, &manifest.version), envelope, "manifest".to_owned()),
        (catalog::repo::image_target_path(&docker::target(id)), archive, "image".to_owned()),
    ];
    let now = Utc::now();
    origin.repo.add_publisher_targets("acme", files, &origin.publisher, now).expect("publish");
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("snapshot");
    origin.write();
    let server = origin::HttpServer::start(origin.served());

    let node = origin::Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    let (synced, report) = node.sync();
    assert!(synced, "{report:?}");
    node.edit_config(|c| {
        c.insert("publish_ip".into(), "127.0.0.1".into());
    });

    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_archy-node"))
            .args(args)
            .arg("--data")
            .arg(node.path())
            .output()
            .expect("archy-node runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), text)
    };
    let (code, out) = run(&["install", id]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("installed app-b 1.0.0"), "{out}");
    assert_eq!(docker::http_get(port, "/").as_deref(), Some("hello from archy\n"));
    let (code, out) = run(&["ps"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("app-b") && out.contains("healthy"), "{out}");
    let (code, out) = run(&["logs", id, "--tail", "5"]);
    assert_eq!(code, Some(0), "{out}");

    // A version the catalog does not have is refused by name.
    let (code, out) = run(&["update", id, "--to", "9.9.9"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("9.9.9"), "{out}");

    let (code, out) = run(&["uninstall", id, "--purge", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(docker::containers_of(&docker, id).await.is_empty());
    assert!(docker::volumes_of(&docker, id).await.is_empty());
}
