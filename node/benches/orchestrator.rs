//! Orchestrator benchmarks against the real Docker engine: `cargo bench -p archy-node --bench orchestrator`.
//!
//! 1. archy's own overhead per install: time from a verified manifest to a running container,
//!    minus the time of the same engine calls (network, volume, container create, start) made
//!    directly with bollard in the same run. Target < 100 ms.
//! 2. One reconcile pass over 50 installed apps (all converged). Target < 200 ms.
//!
//! Prints medians over the rounds (`ARCHY_BENCH_ROUNDS`, default 15).
//!
//! The 50 apps of the reconcile benchmark use the host network (granted in config.toml) and run
//! `sleep`: an engine with Docker's default address pools hands out only about 30 bridge
//! networks, fewer than 50 (docs/orchestrator.md, "Limits").
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

// The Docker side of the integration tests' harness, of which the benchmarks use a part.
#[allow(dead_code, unreachable_pub)]
#[path = "../tests/util/docker.rs"]
mod docker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use docker::*;
use node::orchestrator::secrets::SecretValue;
use node::orchestrator::spec::{ApplyContext, container_body};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A one-container app without healthcheck (the measure is "to a running container").
fn bench_app(id: &str, image_id: &str) -> String {
    let mut t = head(id, "1.0.0");
    t.push_str("\n[[volumes]]\nname = \"data\"\n");
    t.push_str(&format!(
        r#"
[[containers]]
name = "web"
image = {{ target = "{target}", image_id = "{image_id}" }}
entrypoint = ["/bin/busybox"]
command = ["sh", "-c", "trap 'exit 0' TERM; /bin/busybox httpd -f -p 8080 -h /www & wait"]
user = "65534:65534"
memory_mib = 16
volumes = [{{ volume = "data", target = "/data" }}]
"#,
        target = target(id)
    ));
    t
}

async fn install_overhead(rounds: usize) {
    let docker = docker().await;
    let image = test_image().await;
    let data = data_dir("");
    let mut archy = Vec::new();
    let mut direct = Vec::new();
    for round in 0..rounds {
        // archy: verified manifest → running container.
        let id = app_id(&format!("bi{round}"));
        let _cleanup = Cleanup(vec![id.clone()]);
        let manifest = verified(&bench_app(&id, &image.image_id));
        let source = source_with(vec![manifest.clone()]).await;
        let orch = orchestrator(data.path(), source).await;
        let t = Instant::now();
        orch.install(&id, None).await.expect("install");
        archy.push(t.elapsed());
        orch.uninstall(&id, true).await.expect("purge");

        // The same engine calls made directly with bollard.
        let id = app_id(&format!("bd{round}"));
        let _cleanup = Cleanup(vec![id.clone()]);
        let plan = catalog::manifest::render(verified(&bench_app(&id, &image.image_id)).manifest());
        let t = Instant::now();
        let network = docker
            .create_network(NetworkCreateRequest {
                name: plan.network.name.clone(),
                driver: Some("bridge".into()),
                labels: Some(plan.network.labels.clone().into_iter().collect()),
                ..Default::default()
            })
            .await
            .unwrap();
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(plan.volumes[0].name.clone()),
                labels: Some(plan.volumes[0].labels.clone().into_iter().collect()),
                ..Default::default()
            })
            .await
            .unwrap();
        let secrets = std::collections::BTreeMap::<String, SecretValue>::new();
        let cx = ApplyContext { node_id: "bench", network_id: &network.id, publish_ip: None, secrets: &secrets };
        let c = &plan.containers[0];
        let body = container_body(c, &Default::default(), &cx);
        docker.create_container(Some(CreateContainerOptionsBuilder::new().name(&c.name).build()), body).await.unwrap();
        docker.start_container(&c.name, None).await.unwrap();
        direct.push(t.elapsed());
        docker.remove_container(&c.name, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await.unwrap();
    }
    let (a, d) = (median(archy), median(direct));
    println!("install: archy {:.1} ms, direct bollard calls {:.1} ms (medians of {rounds})", ms(a), ms(d));
    println!("install overhead of archy: {:.1} ms (target < 100 ms)", ms(a.saturating_sub(d)));
}

/// A one-container app on the host network that only sleeps.
fn host_app(id: &str, image_id: &str) -> String {
    let mut t = head(id, "1.0.0");
    t.push_str("permissions = [{ kind = \"host_network\" }]\n\n[[volumes]]\nname = \"data\"\n");
    t.push_str(&format!(
        r#"
[[containers]]
name = "worker"
image = {{ target = "{target}", image_id = "{image_id}" }}
entrypoint = ["/bin/busybox"]
command = ["sh", "-c", "trap 'exit 0' TERM; /bin/busybox sleep 86400 & wait"]
user = "65534:65534"
memory_mib = 8
host_network = true
volumes = [{{ volume = "data", target = "/data" }}]
"#,
        target = target(id)
    ));
    t
}

async fn reconcile_fifty(rounds: usize) {
    let image = test_image().await;
    let ids: Vec<String> = (0..50).map(|i| app_id(&format!("br{i}"))).collect();
    let grants: String =
        ids.iter().map(|id| format!("[apps.{id}]\npermissions = [{{ kind = \"host_network\" }}]\n")).collect();
    let data = data_dir(&grants);
    let _cleanup = Cleanup(ids.clone());
    let manifests = ids.iter().map(|id| verified(&host_app(id, &image.image_id))).collect();
    let orch = Arc::new(orchestrator(data.path(), source_with(manifests).await).await);
    let t = Instant::now();
    for id in &ids {
        orch.install(id, None).await.expect("install");
    }
    println!("installed 50 apps in {:.1} s", t.elapsed().as_secs_f64());
    let mut passes = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let report = orch.reconcile_once(true).await.expect("reconcile");
        passes.push(t.elapsed());
        assert_eq!((report.apps, report.created, report.failed.len()), (50, 0, 0), "{report:?}");
    }
    println!(
        "reconcile pass over 50 installed apps: {:.1} ms (median of {rounds}; target < 200 ms)",
        ms(median(passes))
    );
    for id in &ids {
        orch.uninstall(id, true).await.expect("purge");
    }
}

fn main() {
    let Some(_engine) = docker_alone_or_skip() else {
        return;
    };
    let rounds = std::env::var("ARCHY_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        install_overhead(rounds).await;
        reconcile_fifty(rounds).await;
    });
}
