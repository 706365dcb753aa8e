//! A home server's life, on a container engine owned by the test (a second `dockerd`, see
//! `util/engine.rs`), with the real `archy-node` binary: the engine killed and restarted under a
//! running node, and power cuts that take the engine and the node down together, restarted in
//! both orders. Every app that was running runs again with its data, every stopped app stays
//! stopped, and nothing is duplicated.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::docker::*;
use crate::util::engine::TestEngine;
use crate::util::origin::{Daemon, HttpServer, Node, Origin};
use crate::util::{node_bin, run_ok};

/// A node (initialised against a local origin) whose engine is `engine`, with two web apps
/// installed from a folder of signed envelopes: `running` serves a page written into its
/// volume, `stopped` was stopped by the operator.
struct Home {
    engine: TestEngine,
    node: Node,
    from: tempfile::TempDir,
    running: (String, u16),
    stopped: (String, u16),
    _origin: (Origin, HttpServer),
}

impl Home {
    async fn new() -> Self {
        let engine = TestEngine::start();
        let origin = Origin::new();
        let server = HttpServer::start(origin.served());
        let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
        node.edit_config(|c| {
            c.insert("docker_socket".into(), engine.socket.display().to_string().into());
            c.insert("publish_ip".into(), "127.0.0.1".into());
            // Passes come from the engine's events (and start, and the API): a test that sees an
            // app come back has seen the event stream work, not the timer.
            c.insert("reconcile_interval_secs".into(), 3600.into());
        });
        let image = test_image().await;
        let from = tempfile::tempdir().expect("tempdir");
        let running = (app_id("alive"), free_port());
        let stopped = (app_id("asleep"), free_port());
        for (id, port) in [&running, &stopped] {
            let m = verified(&web_app(id, "1.0.0", &image.image_id, &target(id), *port));
            std::fs::create_dir_all(from.path().join(id)).expect("mkdir");
            std::fs::copy(&image.archive, from.path().join(target(id))).expect("archive");
            std::fs::write(from.path().join(format!("{id}-1.0.0.archy.json")), m.envelope().to_bytes()).expect("env");
        }
        let home = Self { engine, node, from, running, stopped, _origin: (origin, server) };
        home.cli(&["install", &home.running.0]);
        home.cli(&["install", &home.stopped.0]);
        home.cli(&["stop", &home.stopped.0]);
        let out = home.engine.docker(&[
            "exec",
            &format!("archy_{}_web", home.running.0),
            "/bin/busybox",
            "sh",
            "-c",
            "echo kept > /www/data.txt",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        home.assert_converged("after install");
        home
    }

    fn cli(&self, args: &[&str]) -> Output {
        run_ok(
            Command::new(node_bin()).args(args).arg("--data").arg(self.node.path()).arg("--from").arg(self.from.path()),
        )
    }

    /// Containers of `app` on the test engine (any state).
    fn containers(&self, app: &str) -> Vec<String> {
        let out = self.engine.docker(&["ps", "-aq", "--filter", &format!("label=archy.app={app}")]);
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }

    /// The running app serves its page and the data written at install; the stopped one does
    /// not answer; each has exactly one container.
    fn assert_converged(&self, context: &str) {
        assert_eq!(http_get(self.running.1, "/").as_deref(), Some("hello from archy\n"), "{context}: running app");
        assert_eq!(http_get(self.running.1, "/data.txt").as_deref(), Some("kept\n"), "{context}: data kept");
        assert_eq!(http_get(self.stopped.1, "/"), None, "{context}: the stopped app stays stopped");
        assert_eq!(self.containers(&self.running.0).len(), 1, "{context}: no duplicate");
        assert_eq!(self.containers(&self.stopped.0).len(), 1, "{context}: no duplicate");
    }

    /// Waits (up to `secs`) until the running app serves again, then checks everything.
    fn wait_converged(&self, context: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while http_get(self.running.1, "/data.txt").as_deref() != Some("kept\n") {
            assert!(Instant::now() < deadline, "{context}: the running app did not come back in {secs} s");
            std::thread::sleep(Duration::from_millis(500));
        }
        self.assert_converged(context);
    }
}

/// `GET path` on the node's API: (status, body).
fn api_get(daemon: &Daemon, path: &str) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    match agent.get(&format!("{}{path}", daemon.api)).set("Authorization", &daemon.auth()).call() {
        Ok(r) => (r.status(), r.into_string().expect("body")),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Waits until the node's status reports the engine `reachable` (or not), and returns it.
fn wait_engine(daemon: &Daemon, reachable: bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = api_get(daemon, "/v1/status");
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).expect("status json");
        if status["engine"]["reachable"] == reachable {
            return status;
        }
        assert!(Instant::now() < deadline, "the engine never showed reachable = {reachable}: {status}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `archy-node status` as the operator reads it.
fn status_text(node: &Path) -> String {
    String::from_utf8_lossy(&run_ok(Command::new(node_bin()).args(["status", "--data"]).arg(node)).stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_killed_under_a_running_node_comes_back_with_every_app() {
    let mut home = Home::new().await;
    let daemon = home.node.run();
    wait_engine(&daemon, true);

    home.engine.power_cut();
    assert_eq!(http_get(home.running.1, "/"), None, "the app went down with its engine");
    let status = wait_engine(&daemon, false);
    assert!(status["engine"]["since"].is_string(), "{status}");
    let text = status_text(home.node.path());
    assert!(text.contains("UNREACHABLE since"), "{text}");
    let (code, body) = api_get(&daemon, "/v1/installed");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("does not answer since"), "{body}");

    home.engine.launch();
    wait_engine(&daemon, true);
    home.wait_converged("after the engine restart", 90);
    let (code, body) = api_get(&daemon, "/v1/installed");
    assert_eq!(code, 200, "{body}");
    assert!(status_text(home.node.path()).contains("reachable since"));

    // The node follows the new engine's event stream: a container stopped behind its back is
    // started again by the pass that event starts (the timer is an hour away).
    let container = format!("archy_{}_web", home.running.0);
    let out = home.engine.docker(&["stop", "--time", "1", &container]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    home.wait_converged("after a container was stopped behind the node's back", 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_brings_back_what_ran_in_either_start_order() {
    let mut home = Home::new().await;
    let daemon = home.node.run();
    wait_engine(&daemon, true);

    // The engine first, then the node (the usual boot order).
    drop(daemon);
    home.engine.power_cut();
    assert_eq!(http_get(home.running.1, "/"), None, "the app went down with its engine");
    home.engine.launch();
    let daemon = home.node.run();
    home.wait_converged("engine first, then node", 90);
    wait_engine(&daemon, true);

    // The node first, then the engine (an engine that starts late at boot).
    drop(daemon);
    home.engine.power_cut();
    let daemon = home.node.run();
    let status = wait_engine(&daemon, false);
    assert!(status["lifecycle"].as_str().unwrap_or_default().starts_with("waiting"), "{status}");
    home.engine.launch();
    wait_engine(&daemon, true);
    home.wait_converged("node first, then engine", 90);
    let (code, body) = api_get(&daemon, "/v1/installed");
    assert_eq!(code, 200, "{body}");
    let apps: serde_json::Value = serde_json::from_str(&body).expect("json");
    let state = |id: &str| {
        apps.as_array().expect("array").iter().find(|a| a["app"] == id).map(|a| a["state"].clone()).expect("listed")
    };
    assert_eq!(state(&home.running.0), "healthy", "{apps}");
    assert_eq!(state(&home.stopped.0), "stopped", "{apps}");
}

/// Runs `archy-node args` until it reports `paused at <step>`, then cuts the power: the engine
/// and that process die together.
fn cut_power_at(home: &mut Home, args: &[&str], step: &str) {
    use std::io::BufRead as _;
    let mut child = Command::new(node_bin())
        .args(args)
        .arg("--data")
        .arg(home.node.path())
        .arg("--from")
        .arg(home.from.path())
        .env("ARCHY_TEST_PAUSE_AT", step)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("archy-node runs");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.expect("line");
        if line.contains(&format!("paused at {step}")) {
            home.engine.power_cut();
            child.kill().expect("SIGKILL");
            child.wait().expect("wait");
            return;
        }
        seen.push(line);
    }
    let status = child.wait().expect("wait");
    panic!("archy-node {args:?} ended ({status}) without reaching {step}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_and_an_update_cut_by_a_power_cut_finish_when_the_engine_is_back() {
    let mut home = Home::new().await;
    let image = test_image().await;
    let fresh = (app_id("cutinstall"), free_port());
    let v2_of_running = web_app(&home.running.0, "2.0.0", &image.image_id, &target(&home.running.0), home.running.1);
    for (id, text) in [
        (&fresh.0, web_app(&fresh.0, "1.0.0", &image.image_id, &target(&fresh.0), fresh.1)),
        (&home.running.0, v2_of_running),
    ] {
        let m = verified(&text);
        std::fs::create_dir_all(home.from.path().join(id)).expect("mkdir");
        std::fs::copy(&image.archive, home.from.path().join(target(id))).expect("archive");
        let name = format!("{id}-{}.archy.json", m.manifest().version);
        std::fs::write(home.from.path().join(name), m.envelope().to_bytes()).expect("envelope");
    }

    // An install cut after its container was created, before it started.
    cut_power_at(&mut home, &["install", &fresh.0], &format!("after-create:archy_{}_web", fresh.0));
    home.engine.launch();
    home.cli(&["reconcile"]);
    assert_eq!(http_get(fresh.1, "/").as_deref(), Some("hello from archy\n"), "the install finished");
    assert_eq!(home.containers(&fresh.0).len(), 1);

    // An update cut right after its desired state was written (the old version stopped, the
    // volume copied): the next pass finishes it, and the data is there.
    let running_app = home.running.0.clone();
    cut_power_at(&mut home, &["update", &running_app], "after-desired-state");
    home.engine.launch();
    home.cli(&["reconcile"]);
    home.assert_converged("after the interrupted update");
    let ps: serde_json::Value = serde_json::from_slice(&home.cli(&["ps", "--json"]).stdout).expect("ps json");
    let running = ps.as_array().expect("array").iter().find(|a| a["app"] == home.running.0.as_str()).expect("listed");
    assert_eq!((running["version"].as_str(), running["state"].as_str()), (Some("2.0.0"), Some("healthy")), "{ps}");
}
