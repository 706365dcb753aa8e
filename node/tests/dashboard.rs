//! The node's dashboard in a real browser: a real origin over HTTP with `hello-web` (the test
//! image as an archive), `archy-node run`, the real Docker engine, and
//! `tests/interop/browser_dashboard.py` driving Debian's chromium (headless, through
//! chromium-driver and selenium) the way an operator would: a wrong token is refused, the token
//! and a one-time link sign in, `hello-web` is installed by clicking and its progress is watched
//! until it is healthy, the app answers, then stop, start, the trust policy and uninstall. The
//! screenshots go under the test's output folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use catalog::envelope::SignedEnvelope;
use catalog::manifest::{Limits, Manifest};
use chrono::Utc;

use crate::util::docker;
use crate::util::node_bin;
use crate::util::origin::{HttpServer, Node, Origin};

const APP: &str = "hello-web";

/// Publishes `hello-web` (the test web app, its image archive) in a role of its own. It also
/// mounts `shared` read-only, which the node's policy must be asked to grant.
fn publish_hello_web(origin: &mut Origin, image: &docker::TestImage, port: u16, shared: &Path) {
    let now = Utc::now();
    let key = catalog::keys::SigningKey::generate();
    let did = key.did();
    origin.repo.add_publisher("samples", &did, &[APP], &origin.targets_key, now).expect("role");
    let toml = docker::web_app(APP, "0.1.0", &image.image_id, &docker::target(APP), port)
        .replace(&docker::publisher().did().to_string(), &did.to_string())
        .replace("title = \"Test app\"", "title = \"Hello Web\"");
    let host = shared.display();
    let toml = toml
        .replacen(
            "\n[[volumes]]",
            &format!(
                "\npermissions = [{{ kind = \"host_path\", host = \"{host}\", target = \"/www/shared\", read_only = true }}]\n\n[[volumes]]"
            ),
            1,
        )
        .replacen(
            "\n[containers.healthcheck]",
            &format!("binds = [{{ host = \"{host}\", target = \"/www/shared\", read_only = true }}]\n\n[containers.healthcheck]"),
            1,
        );
    let manifest = Manifest::from_toml_str(&toml, &Limits::default()).expect("manifest");
    let envelope = SignedEnvelope::sign(&manifest, &key).expect("sign").to_bytes();
    let archive = std::fs::read(&image.archive).expect("archive");
    let files = vec![
        (catalog::repo::envelope_target_path(APP, &manifest.version), envelope, "manifest".to_owned()),
        (catalog::repo::image_target_path(&docker::target(APP)), archive, "image".to_owned()),
    ];
    origin.repo.add_publisher_targets("samples", files, &key, now).expect("publish");
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).expect("snapshot");
    origin.write();
}

/// Removes whatever the node made on the engine (containers, networks, volumes labelled with its
/// node id) when dropped, whatever the test's outcome.
struct NodeCleanup(PathBuf);

impl Drop for NodeCleanup {
    fn drop(&mut self) {
        let Ok(id) = std::fs::read_to_string(self.0.join("orchestrator/node-id")) else { return };
        let label = format!("label=archy.node={}", id.trim());
        for (list, remove) in [
            (&["ps", "-aq", "--filter"][..], &["rm", "-f"][..]),
            (&["network", "ls", "-q", "--filter"][..], &["network", "rm"][..]),
            (&["volume", "ls", "-q", "--filter"][..], &["volume", "rm", "-f"][..]),
        ] {
            let Ok(out) = Command::new("docker").args(list).arg(&label).output() else { continue };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(remove).args(&ids).output();
            }
        }
    }
}

fn containers(node: &Node) -> String {
    let node_id = std::fs::read_to_string(node.path().join("orchestrator/node-id")).expect("node id");
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=archy.app={APP}"), "--filter"])
        .arg(format!("label=archy.node={}", node_id.trim()))
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let python = std::env::var("ARCHY_INTEROP_PYTHON")
        .expect("ARCHY_INTEROP_PYTHON is not set: run the tests with `bash tests/run.sh`, which makes the venv");
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: `bash tests/run.sh` installs chromium and chromium-driver"
        );
    }
    let Some(_engine) = docker::docker_or_skip() else { return };
    // An image of its own, saved as an archive and taken off the engine: the install fetches,
    // loads and checks it (the shared test image is already on the engine).
    let engine = docker::docker().await;
    let nonce = docker::app_id("dashboard");
    let tag = format!("archy-test/{nonce}:1");
    let image_id = docker::build_image(&engine, &tag, &nonce).await;
    let work = tempfile::tempdir().expect("tempdir");
    let archive = work.path().join("image.tar");
    docker::save_image(&engine, &tag, &archive).await;
    let force = bollard::query_parameters::RemoveImageOptionsBuilder::new().force(true).build();
    engine.remove_image(&tag, Some(force), None).await.expect("image removed before the install");
    let _image = docker::ImageCleanup(image_id.clone());
    let image = docker::TestImage { archive, image_id };
    let port = docker::free_port();
    let mut origin = Origin::new();
    let shared = tempfile::tempdir().expect("tempdir");
    std::fs::write(shared.path().join("note.txt"), "from the host\n").expect("note");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    publish_hello_web(&mut origin, &image, port, shared.path());
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    // An engine prefix of its own: `hello-web` of another node on this engine (a demo) is not
    // this test's to meet or to clean up.
    let prefix = docker::app_id("d").replace('-', "");
    node.edit_config(|c| {
        c.insert("publish_ip".into(), "127.0.0.1".into());
        c.insert("engine_prefix".into(), prefix.clone().into());
    });
    let _cleanup = NodeCleanup(node.path().to_owned());
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    let daemon = node.run();

    // `archy-node dashboard` prints a one-time link to the running node.
    let out = Command::new(node_bin()).args(["dashboard", "--data"]).arg(node.path()).output().expect("dashboard");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let api_port = daemon.api.rsplit(':').next().expect("port");
    assert!(link.starts_with(&format!("http://localhost:{api_port}/login/once?code=")), "{link}");

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-dashboard");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/browser_dashboard.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&daemon.api)
        .arg(&daemon.token)
        .arg(&link)
        .arg(&shots)
        .arg(APP)
        .arg(port.to_string())
        .output()
        .await
        .expect("python");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");

    // What the clicks did, seen from outside the browser: the app is gone from the node and the
    // engine, and the policy the form saved is in config.toml.
    let ps = Command::new(node_bin()).args(["ps", "--json", "--data"]).arg(node.path()).output().expect("ps");
    let installed: serde_json::Value = serde_json::from_slice(&ps.stdout).expect("ps --json");
    assert_eq!(installed, serde_json::json!([]), "uninstalled: {said}");
    assert_eq!(containers(&node), "", "no container left");
    let config = std::fs::read_to_string(node.path().join("config.toml")).expect("config");
    let config: toml::Table = toml::from_str(&config).expect("config parses");
    assert_eq!(config["nostr_policy"]["min_score"].as_float(), Some(5.0), "{config:?}");
    // The grant the operator ticked is in config.toml, exactly the one the manifest needed.
    let granted = &config["apps"][APP]["permissions"];
    assert_eq!(granted.as_array().map(Vec::len), Some(1), "{config:?}");
    assert_eq!(granted[0]["kind"].as_str(), Some("host_path"));
    assert_eq!(granted[0]["host"].as_str(), Some(shared.path().to_str().expect("utf-8")));
    assert_eq!(granted[0]["read_only"].as_bool(), Some(true));
    for page in ["login", "apps", "catalog", "progress", "app", "trust", "phone"] {
        let png = std::fs::read(shots.join(format!("dashboard-{page}.png"))).expect("screenshot");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "screenshot of the {page} page");
    }
}
