//! A home server's figures, on an engine the benchmark owns (a second `dockerd`, as the tests
//! use): `cargo bench -p archy-node --bench home_server`.
//!
//! 1. Time from an engine restart to every app healthy again, 10 apps installed: after an engine
//!    crash (dockerd SIGKILLed and started again) and after a power cut (the engine and every
//!    container killed, its mounts and exec root gone), the node converging with reconcile
//!    passes as its event stream would start them.
//! 2. Snapshot and restore of a 1 GiB volume: the time an update takes with an empty volume and
//!    with 1 GiB in it (the difference is the snapshot taken before the update; target: under
//!    10 % of the update's time), the bytes copied, and `restore` of that snapshot on the stopped
//!    app (which first keeps the data it replaces, so it copies out and in). Twice: with the
//!    engine's volumes on this machine's ext4 (a full copy, as a tar through the engine) and on
//!    an XFS filesystem with reflinks in a loop-mounted file (a clone that shares the blocks).
//!
//! Prints medians over `ARCHY_BENCH_ROUNDS` rounds (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The Docker side and the test-owned engine of the integration tests' harness.
#[allow(dead_code, unreachable_pub)]
#[path = "../tests/util/docker.rs"]
mod docker;
#[allow(dead_code, unreachable_pub)]
#[path = "../tests/util/engine.rs"]
mod engine;

use std::time::{Duration, Instant};

use docker::*;
use engine::TestEngine;
use node::orchestrator::{AppState, Orchestrator};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs reconcile passes until every installed app is healthy; returns how long it took.
async fn until_all_healthy(orch: &Orchestrator, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(300);
    loop {
        let _ = orch.reconcile_once(false).await;
        let status = orch.status().await.unwrap();
        if status.iter().all(|a| a.state == AppState::Healthy) {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "apps not healthy after 5 minutes: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn engine_restart(rounds: usize) {
    let mut engine = TestEngine::start();
    let image = test_image().await;
    let data = data_dir(&format!("docker_socket = \"{}\"\n", engine.socket.display()));
    let ids: Vec<String> = (0..10).map(|i| app_id(&format!("bench{i}"))).collect();
    let manifests: Vec<_> =
        ids.iter().map(|id| verified(&web_app(id, "1.0.0", &image.image_id, &target(id), free_port()))).collect();
    let orch = orchestrator(data.path(), source_with(manifests).await).await;
    for id in &ids {
        orch.install(id, None).await.unwrap();
    }
    let (mut crash, mut cut) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Timed from the moment the engine is started again (its own start included).
        let t0 = Instant::now();
        engine.crash_and_restart();
        crash.push(until_all_healthy(&orch, t0).await);

        engine.power_cut();
        let t0 = Instant::now();
        engine.launch();
        cut.push(until_all_healthy(&orch, t0).await);
    }
    println!("engine restart -> all 10 apps healthy (from the engine's start, its own start included):");
    println!("  after an engine crash: median {:.2} s", secs(median(crash)));
    println!("  after a power cut:     median {:.2} s   ({rounds} rounds; healthchecks every 1 s)", secs(median(cut)));
    for id in &ids {
        orch.uninstall(id, true).await.unwrap();
    }
}

/// Fills the app's `www` volume with `mib` MiB (files of 64 MiB).
async fn fill(engine: &bollard::Docker, container: &str, mib: u64) {
    let files = mib / 64;
    exec(
        engine,
        container,
        &format!("i=0; while [ $i -lt {files} ]; do head -c 67108864 /dev/zero > /www/fill-$i; i=$((i+1)); done; sync"),
    )
    .await;
}

async fn snapshot_figures(rounds: usize, engine: TestEngine, what: &str) {
    let docker = engine.client().await;
    let image = test_image().await;
    let data = data_dir(&format!("docker_socket = \"{}\"\nsnapshots_keep = 1\n", engine.socket.display()));
    let (mut small, mut big, mut restore) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for round in 0..rounds {
        for (mib, times) in [(0u64, &mut small), (1024, &mut big)] {
            let id = app_id(&format!("snap{round}-{mib}"));
            let port = free_port();
            let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
            let v2 = verified(&web_app(&id, "1.0.1", &image.image_id, &target(&id), port));
            let source = source_with(vec![v1]).await;
            let orch = orchestrator(data.path(), source.clone()).await;
            orch.install(&id, None).await.unwrap();
            fill(&docker, &format!("archy_{id}_web"), mib).await;
            source.add(v2, [(target(&id), image.archive.clone())]);
            let t0 = Instant::now();
            orch.update(&id, None).await.unwrap();
            times.push(t0.elapsed());
            if mib > 0 {
                let snapshot = orch.snapshots(&id).unwrap().into_iter().next().expect("taken before the update");
                bytes = snapshot.bytes();
                orch.stop(&id).await.unwrap();
                let t0 = Instant::now();
                orch.restore(&id, &snapshot.id).await.unwrap();
                restore.push(t0.elapsed());
            }
            orch.uninstall(&id, true).await.unwrap();
        }
    }
    let (small, big, restore) = (median(small), median(big), median(restore));
    let added = big.saturating_sub(small);
    println!("snapshot of a 1 GiB volume, {what} ({:.0} MiB in the snapshot):", bytes as f64 / f64::from(1u32 << 20));
    println!("  update with an empty volume: median {:.2} s", secs(small));
    println!("  update with 1 GiB in it:     median {:.2} s", secs(big));
    let rate = if secs(added) >= 0.05 {
        format!(", {:.0} MiB/s", bytes as f64 / f64::from(1u32 << 20) / secs(added))
    } else {
        String::new()
    };
    println!(
        "  the snapshot adds {:.2} s = {:.1} % of the update (target < 10 %: {}){rate}",
        secs(added),
        100.0 * secs(added) / secs(small),
        if secs(added) < 0.1 * secs(small) { "met" } else { "MISSED" }
    );
    println!(
        "  restore of that snapshot (the replaced 1 GiB kept first, then put back): median {:.2} s",
        secs(restore)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::var("ARCHY_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    engine_restart(rounds).await;
    snapshot_figures(rounds, TestEngine::start(), "volumes on this machine's ext4 (a tar through the engine)").await;
    snapshot_figures(rounds, TestEngine::start_on_xfs(4096), "volumes on XFS with reflinks (a clone volume)").await;
}
