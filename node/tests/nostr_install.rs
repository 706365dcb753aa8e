//! An app found only on Nostr, installed for real: a third-party publisher announces it on a
//! relay, the node verifies it (binding, DID signature, envelope), scores the publisher, and
//! installs it through the Docker engine like an origin app. Its image is pinned by digest and
//! served by a real container registry on 127.0.0.1 (Debian's `docker-registry`, the CNCF
//! Distribution registry), since Nostr apps name their images by digest.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::docker;
use crate::util::nostr::*;
use archy_nostr::event::{self, Location};
use archy_nostr::nostr_sdk::Keys;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::TryStreamExt as _;

/// A CNCF Distribution registry process on 127.0.0.1, storing into a temporary folder.
struct ContainerRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl ContainerRegistry {
    fn start() -> Self {
        let binary = PathBuf::from("/usr/bin/docker-registry");
        assert!(
            binary.exists(),
            "{} is missing: install Debian's docker-registry (tests/run.sh does)",
            binary.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = docker::free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        // Dropping it (on a failed start too) kills and waits for the process.
        let registry = Self { child, port, _dir: dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for ContainerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes the shared test image to `registry` and returns its digest-pinned reference.
async fn push_test_image(registry: &ContainerRegistry, repo: &str) -> String {
    let docker = docker::docker().await;
    docker::test_image().await;
    let name = format!("127.0.0.1:{}/{repo}", registry.port);
    docker
        .tag_image("archy-test/busybox:1", Some(TagImageOptionsBuilder::new().repo(&name).tag("1").build()))
        .await
        .expect("tag the test image");
    let pushed: Vec<_> = docker
        .push_image(&name, Some(PushImageOptionsBuilder::new().tag("1").build()), None)
        .try_collect()
        .await
        .expect("push to the local registry");
    if let Some(error) = pushed.iter().find_map(|p| p.error_detail.clone()) {
        panic!("pushing {name}: {error:?}");
    }
    let image = docker.inspect_image(&format!("{name}:1")).await.expect("pushed image");
    let pinned = image.repo_digests.unwrap_or_default().into_iter().find(|d| d.starts_with(&name));
    pinned.unwrap_or_else(|| panic!("no digest for {name} after the push"))
}

#[test]
fn a_nostr_app_installs_through_docker_like_an_origin_app() {
    let Some(_engine) = docker::docker_or_skip() else {
        return;
    };
    let rt = runtime();
    let registry = ContainerRegistry::start();
    let reference = rt.block_on(push_test_image(&registry, "third-party/guestbook"));

    // The third party signs a manifest whose image is pinned by digest.
    let id = docker::app_id("nostr");
    let port = docker::free_port();
    let image = rt.block_on(docker::test_image()).image_id.clone();
    let toml = docker::head(&id, "1.0.0")
        + &docker::web_container("web", &image, "unused", Some(port), "").replace(
            &format!("image = {{ target = \"unused\", image_id = \"{image}\" }}"),
            &format!("image = \"{reference}\""),
        );
    assert!(toml.contains(&format!("image = \"{reference}\"")), "{toml}");
    let manifest = docker::verified(&toml);
    let third_party = Publisher::with_did(docker::publisher());

    let world = World::new();
    let url = world.envelopes.put(&manifest.envelope().to_bytes());
    let release = event::release_event(&manifest, &[Location::Url(url)], &third_party.did, &third_party.nostr).unwrap();
    let operator = Keys::generate();
    world.relay.publish(&[third_party.binding(), release, follows(&operator, &[third_party.key()])]);

    // A node that trusts the operator's key, with the real engine.
    let node = world.node(&[&operator]);
    node.edit_config(|c| {
        c.remove("docker_socket");
        c.insert("publish_ip".into(), "127.0.0.1".into());
    });
    sync(&node);
    let listed = nostr_apps(&node);
    let app = listed.iter().find(|a| a["id"] == id.as_str()).unwrap_or_else(|| panic!("{id} not listed: {listed:?}"));
    assert!(app["score"].as_f64().unwrap() > 1.0, "followed by a seed: {app}");

    let installed = archy(&node, &["install", &id]);
    let cleanup = || {
        archy(&node, &["uninstall", &id, "--purge", "--yes"]);
    };
    if !installed.status.success() {
        cleanup();
        panic!("install of the Nostr app failed: {}", text(&installed.stderr));
    }
    let page = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        docker::http_get(port, "/")
    });
    let ps = text(&archy(&node, &["ps"]).stdout);

    // The publisher's key is stolen: the owner posts a revocation, the thief a new version.
    let revocation = catalog::keylife::Statement::Revocation(
        catalog::keylife::Revocation::sign(&third_party.did, None, "key stolen", chrono::Utc::now()).unwrap(),
    );
    let v2 = docker::verified(&toml.replace("version = \"1.0.0\"", "version = \"1.1.0\""));
    let url2 = world.envelopes.put(&v2.envelope().to_bytes());
    let thiefs = event::release_event(&v2, &[Location::Url(url2)], &third_party.did, &third_party.nostr).unwrap();
    world.relay.publish(&[event::key_statement_event(&revocation, &Keys::generate()).unwrap(), thiefs]);
    sync(&node);
    let status = text(&archy(&node, &["status"]).stdout);
    let update = archy(&node, &["update", &id]);
    cleanup();
    assert!(status.contains(&format!("FLAGGED: {id} 1.0.0 is signed by a revoked publisher key")), "{status}");
    assert!(!update.status.success(), "no update from a revoked key");
    let said = text(&update.stderr);
    assert!(said.contains("refused by the publisher key rules") && said.contains("a revocation always wins"), "{said}");
    assert_eq!(page.as_deref(), Some("hello from archy\n"), "the Nostr app serves its page");
    assert!(ps.contains(&id), "`archy-node ps` lists the Nostr app: {ps}");
    let left = rt.block_on(async { docker::containers_of(&docker::docker().await, &id).await });
    assert!(left.is_empty(), "uninstall --purge removed its containers");
}
