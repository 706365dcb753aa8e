//! More app networks than the engine's default address pools hold (Docker's defaults give about
//! 30 bridge networks): archy falls back to its own subnets, so every app still gets a network.

use std::collections::HashMap;

use crate::util::docker;
use node::orchestrator::docker::{Engine, FALLBACK_POOL};

const LABEL: &str = "archy.test.networks";

async fn cleanup(engine: &Engine, run: &str) {
    for n in engine.networks(&[(LABEL, run)]).await.expect("list") {
        engine.remove_network(n.id.as_deref().unwrap_or_default()).await.expect("remove");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forty_app_networks_beyond_the_engines_default_pools() {
    let Some(_engine) = docker::docker_alone_or_skip() else {
        return;
    };
    let engine = Engine::connect(&docker::socket()).await.expect("engine");
    let run = format!("{}", std::process::id());
    cleanup(&engine, &run).await;
    let mut created = Vec::new();
    let mut failure = None;
    for i in 0..40 {
        let labels = HashMap::from([(LABEL.to_owned(), run.clone())]);
        match engine.create_network(&format!("archy-nettest-{run}-{i}"), labels).await {
            Ok(id) => created.push(id),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let ours = engine.networks(&[(LABEL, run.as_str())]).await.expect("list");
    let prefix = FALLBACK_POOL.trim_end_matches("0.0/16");
    let fallback = ours
        .iter()
        .filter(|n| {
            n.ipam
                .as_ref()
                .and_then(|i| i.config.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.subnet.as_deref().is_some_and(|s| s.starts_with(prefix)))
        })
        .count();
    cleanup(&engine, &run).await;
    assert_eq!(failure, None, "a network could not be created");
    assert_eq!(created.len(), 40);
    // The engine's default pools hold at most 31 networks, so some came from archy's pool.
    assert!(fallback >= 9, "only {fallback} networks used {FALLBACK_POOL}");
}
