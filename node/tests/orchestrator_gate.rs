//! The production gate of the orchestrator, looped: install → reachable → stop → start → restart
//! → update → reinstall (data written before is still there) → node restart (adopted, not
//! duplicated) → engine restart (the engine crashes and comes back: the app serves its data, no
//! duplicate) → reboot (a power cut takes the engine and the node: the app comes back with its
//! data) → uninstall (volume kept) → purge (gone). 20 rounds by default (`ARCHY_GATE_ROUNDS`
//! changes it); CI runs the 20. The gate runs on an engine of its own (`util/engine.rs`), so
//! killing it touches nothing else.

use std::time::{Duration, Instant};

use crate::util::docker::*;
use crate::util::engine::TestEngine;
use node::orchestrator::AppState;

/// Waits until the app serves `marker` as its data (up to a minute).
fn wait_serving(port: u16, marker: &str, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(port, "/data.txt").as_deref().map(str::trim_end) != Some(marker.trim_end()) {
        assert!(Instant::now() < deadline, "{context}: the app did not serve its data again");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_gate_twenty_rounds() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let rounds: usize = std::env::var("ARCHY_GATE_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let mut engine = TestEngine::start();
    let docker = engine.client().await;
    let image = test_image().await;
    let id = app_id("gate");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    let v2 = verified(&web_app(&id, "1.1.0", &image.image_id, &target(&id), port));
    let data = data_dir(&format!("docker_socket = \"{}\"\n", engine.socket.display()));
    let container = format!("archy_{id}_web");
    let volume = format!("archy_{id}_www");

    for round in 0..rounds {
        let context = format!("round {round}");
        // v1 only at first, so `install` picks it; v2 appears for the update.
        let source = source_with(vec![v1.clone()]).await;
        let orch = orchestrator(data.path(), source.clone()).await;

        orch.install(&id, None).await.unwrap_or_else(|e| panic!("{context}: install: {e}"));
        assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"), "{context}: reachable");
        let secret_file = data.path().join(format!("orchestrator/secrets/{id}/admin-password"));
        let secret = std::fs::read_to_string(&secret_file).expect("secret stored");
        let marker = format!("written in round {round}\n");
        exec(&docker, &container, &format!("printf '{}' > /www/data.txt", marker.trim_end())).await;
        assert_eq!(http_get(port, "/data.txt").unwrap().trim_end(), marker.trim_end(), "{context}");

        orch.stop(&id).await.unwrap_or_else(|e| panic!("{context}: stop: {e}"));
        assert_eq!(http_get(port, "/"), None, "{context}: stopped app does not answer");
        assert_eq!(orch.status().await.unwrap()[0].state, AppState::Stopped, "{context}");

        orch.start(&id).await.unwrap_or_else(|e| panic!("{context}: start: {e}"));
        assert!(http_get(port, "/").is_some(), "{context}: started");

        let before = docker.inspect_container(&container, None).await.unwrap().id;
        orch.restart(&id).await.unwrap_or_else(|e| panic!("{context}: restart: {e}"));
        assert!(http_get(port, "/").is_some(), "{context}: restarted");
        assert_eq!(docker.inspect_container(&container, None).await.unwrap().id, before, "{context}: same container");

        source.add(v2.clone(), [(target(&id), image.archive.clone())]);
        let report = orch.update(&id, None).await.unwrap_or_else(|e| panic!("{context}: update: {e}"));
        assert_eq!((report.from.as_str(), report.to.as_str()), ("1.0.0", "1.1.0"), "{context}");
        let labels = docker.inspect_container(&container, None).await.unwrap().config.unwrap().labels.unwrap();
        assert_eq!(labels["archy.version"], "1.1.0", "{context}");
        assert_eq!(
            http_get(port, "/data.txt").unwrap().trim_end(),
            marker.trim_end(),
            "{context}: data kept by update"
        );

        orch.uninstall(&id, false).await.unwrap_or_else(|e| panic!("{context}: uninstall: {e}"));
        assert!(containers_of(&docker, &id).await.is_empty(), "{context}");
        orch.install(&id, None).await.unwrap_or_else(|e| panic!("{context}: reinstall: {e}"));
        assert_eq!(
            http_get(port, "/data.txt").unwrap().trim_end(),
            marker.trim_end(),
            "{context}: data written before the reinstall is still there"
        );
        assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret, "{context}: secret reused");

        // Node restart: a new orchestrator on the same data dir adopts what runs.
        let id_before = docker.inspect_container(&container, None).await.unwrap().id;
        drop(orch);
        let orch = orchestrator(data.path(), source_with(vec![v1.clone(), v2.clone()]).await).await;
        let report = orch.reconcile_once(true).await.unwrap();
        assert_eq!((report.created, report.removed, report.failed.len()), (0, 0, 0), "{context}: {report:?}");
        assert_eq!(containers_of(&docker, &id).await.len(), 1, "{context}: no duplicate");
        assert_eq!(docker.inspect_container(&container, None).await.unwrap().id, id_before, "{context}: adopted");
        assert_eq!(orch.status().await.unwrap()[0].state, AppState::Healthy, "{context}");

        // Engine restart: dockerd crashes and is started again under the running node.
        engine.crash_and_restart();
        let report = orch.reconcile_once(true).await.unwrap();
        assert!(report.failed.is_empty(), "{context}: {report:?}");
        wait_serving(port, &marker, &format!("{context}: engine restart"));
        assert_eq!(containers_of(&docker, &id).await.len(), 1, "{context}: no duplicate after the engine restart");

        // Reboot: a power cut takes the engine (and every container) and the node; the engine
        // starts first, then the node, which converges.
        drop(orch);
        engine.power_cut();
        assert_eq!(http_get(port, "/"), None, "{context}: down with the power");
        engine.launch();
        let orch = orchestrator(data.path(), source_with(vec![v1.clone(), v2.clone()]).await).await;
        let report = orch.reconcile_once(true).await.unwrap();
        assert!(report.failed.is_empty(), "{context}: {report:?}");
        wait_serving(port, &marker, &format!("{context}: reboot"));
        assert_eq!(containers_of(&docker, &id).await.len(), 1, "{context}: no duplicate after the reboot");
        assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret, "{context}: secret kept over the reboot");

        orch.uninstall(&id, false).await.unwrap_or_else(|e| panic!("{context}: uninstall: {e}"));
        assert!(containers_of(&docker, &id).await.is_empty(), "{context}");
        assert!(networks_of(&docker, &id).await.is_empty(), "{context}");
        assert_eq!(volumes_of(&docker, &id).await, vec![volume.clone()], "{context}: volume kept");
        assert!(secret_file.exists(), "{context}: secret kept");

        orch.uninstall(&id, true).await.unwrap_or_else(|e| panic!("{context}: purge: {e}"));
        assert!(volumes_of(&docker, &id).await.is_empty(), "{context}: volume purged");
        assert!(!secret_file.exists(), "{context}: secret purged");
    }
}
