//! The marketplace on a catalog of 10,000 apps: how long this server takes to verify the catalog
//! into its index (once per catalog version), and to answer the list, a search, a category and
//! an app page (every request). Prints the figures; run with
//! `cargo bench -p archy-registry --bench market`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalog::repo::{Expiry, Repository};
use catalog::testing::{TestApp, TestKeys};
use registry::server::{Config, Registry};
use tower::ServiceExt as _;

const APPS: usize = 10_000;
const ROUNDS: usize = 20;

async fn get(registry: &Arc<Registry>, path: &str) -> (StatusCode, usize) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response = registry::server::router(registry.clone()).oneshot(request).await.expect("answer");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20).await.expect("body");
    (status, body.len())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::generate();
    let now = chrono::Utc::now();
    let mut repo = keys.init_folder(dir.path(), now);
    let ids: Vec<String> = (0..APPS).map(|n| format!("app-{n:05}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    repo.add_publisher("acme", &keys.publisher.did(), &refs, &keys.targets, now).expect("publisher");
    let files = ids
        .iter()
        .map(|id| {
            let envelope = TestApp::new(id).envelope(&keys.publisher);
            (
                catalog::repo::envelope_target_path(id, &"0.1.0".parse().expect("semver")),
                envelope,
                "manifest".to_owned(),
            )
        })
        .collect();
    repo.add_publisher_targets("acme", files, &keys.publisher, now).expect("targets");
    keys.publish(&mut repo, now);
    let served = dir.path().join("repository");
    repo.write_dir(&served).expect("write");
    drop(Repository::load(&served, Expiry::default()).expect("readable"));
    let mut config = Config::new(dir.path().to_owned());
    config.iroh = None;
    let registry = Arc::new(Registry::open(config).expect("registry"));

    let start = Instant::now();
    let (status, _) = get(&registry, "/").await;
    assert_eq!(status, StatusCode::OK);
    println!(
        "marketplace, {APPS} apps: verifying the catalog into the index took {:.2} s (once per catalog version)",
        start.elapsed().as_secs_f64()
    );
    for (what, path) in [
        ("list, first page", "/"),
        ("search `app-0999`", "/?q=app-0999"),
        ("search with no match", "/?q=nothing-matches-this"),
        ("category `web`, page 100", "/?category=web&page=100"),
        ("app page", "/apps/app-05000"),
    ] {
        let mut times = Vec::with_capacity(ROUNDS);
        let mut size = 0;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let (status, bytes) = get(&registry, path).await;
            times.push(start.elapsed());
            assert_eq!(status, StatusCode::OK, "{path}");
            size = bytes;
        }
        println!("  {what:<26} median {:>6.2} ms ({size} bytes)", median(times).as_secs_f64() * 1000.0);
    }
}
