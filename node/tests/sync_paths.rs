//! The happy paths of catalog sync with the real `archy-registry` and `archy-node run`
//! processes on loopback: origin up; origin down and a peer serves; origin back and it wins.

use crate::util::origin::*;
use crate::util::registry_bin;

#[test]
fn origin_up_origin_down_peer_serves_origin_back_wins() {
    let mut origin = Origin::new();
    let folder = origin.registry_folder();

    // Origin up: node A syncs from the real registry over HTTP.
    let registry = RegistryProcess::start(&folder, None);
    let http_addr = registry.http_addr();
    let a = Node::init(&origin.root_v1(), Some(&registry.http), &[]);
    let (ok, report) = a.sync();
    assert!(ok, "{report:?}");
    assert!(report.origin_reachable);
    assert_eq!(a.apps(), vec![("app-a".into(), "1.0.0".into(), "origin".into())]);

    // Node A mirrors what it verified; node B knows the origin and A.
    let daemon = a.run();
    let b = Node::init(&origin.root_v1(), Some(&registry.http), &[daemon.iroh()]);

    // Origin down: B gets the catalog from A, verified against the origin's root.
    drop(registry);
    let (ok, report) = b.sync();
    assert!(ok, "{report:?}");
    assert!(!report.origin_reachable);
    assert_eq!(report.source.as_deref(), Some(format!("peer {}", daemon.iroh().id).as_str()));
    let apps = b.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].0, "app-a");
    let status = b.status_json();
    assert_eq!(status["last_sync"]["origin_reachable"], serde_json::json!(false));

    // Origin back, with a new app version A has not seen: the origin's catalog is taken.
    origin.publish("app-a", "1.1.0");
    let registry = RegistryProcess::start(&folder, Some(http_addr));
    let (ok, report) = b.sync();
    assert!(ok, "{report:?}");
    assert!(report.origin_reachable);
    assert_eq!(report.source.as_deref(), Some("origin"));
    let versions: Vec<String> = b.apps().into_iter().filter(|a| a.0 == "app-a").map(|a| a.1).collect();
    assert_eq!(versions, vec!["1.1.0".to_owned(), "1.0.0".to_owned()]);
    assert!(b.apps().iter().all(|a| a.2 == "origin"), "origin's metadata is authoritative once it answers");

    // A catches up through its own daemon (on-demand sync over the local API).
    let answer: serde_json::Value = ureq::post(&format!("{}/v1/sync", daemon.api))
        .set("Authorization", &daemon.auth())
        .call()
        .expect("sync call")
        .into_json()
        .expect("json");
    assert_eq!(answer["source"], serde_json::json!("origin"), "{answer}");
    assert_eq!(a.apps().len(), 2);
    drop(registry);
}

#[test]
fn origin_over_iroh_only() {
    let origin = Origin::new();
    let registry = RegistryProcess::start(&origin.registry_folder(), None);
    let node = Node::init(&origin.root_v1(), Some(&dead_url()), &[]);
    node.edit_config(|c| {
        c.insert("origin".into(), toml::toml! { iroh = (registry.iroh().to_string()) }.into());
    });
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    assert_eq!(report.source.as_deref(), Some("origin"));
    assert_eq!(node.apps().len(), 1);
}

#[test]
fn registry_resigns_the_timestamp_before_it_expires() {
    let origin = Origin::new();
    let folder = origin.registry_folder();
    let before = origin.metadata("timestamp.json");
    // 4-second timestamps, checked every second: a new one at least every 2 seconds.
    let child = std::process::Command::new(registry_bin())
        .args(["serve", "--data"])
        .arg(&folder)
        .args(["--http", "127.0.0.1:0", "--no-iroh", "--timestamp-lifetime", "4", "--resign-check", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let ts = |bytes: &[u8]| {
        catalog::metadata::SignedMetadata::<catalog::metadata::Timestamp>::from_slice(bytes, "timestamp")
            .expect("timestamp")
            .signed
    };
    let mut seen = Vec::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = origin.metadata("timestamp.json");
        if now != before && seen.last() != Some(&now) {
            seen.push(now);
        }
        if seen.len() >= 2 {
            break;
        }
    }
    assert!(seen.len() >= 2, "the registry did not keep re-signing the timestamp");
    let (first, second) = (ts(&seen[0]), ts(&seen[1]));
    assert!(second.version > first.version);
    assert!(second.expires > chrono::Utc::now(), "the served timestamp is not fresh");
}

#[test]
fn registry_reports_health_and_metrics_and_stops_cleanly() {
    let origin = Origin::new();
    let registry = RegistryProcess::start(&origin.registry_folder(), None);
    let health: serde_json::Value =
        ureq::get(&format!("{}/healthz", registry.http)).call().expect("healthz").into_json().expect("json");
    assert_eq!(health["ok"], serde_json::json!(true));
    let ts = ureq::get(&format!("{}/metadata/timestamp.json", registry.http)).call().expect("timestamp");
    assert_eq!(ts.status(), 200);
    let missing = ureq::get(&format!("{}/metadata/99.snapshot.json", registry.http)).call();
    assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
    let metrics =
        ureq::get(&format!("{}/metrics", registry.http)).call().expect("metrics").into_string().expect("text");
    assert!(metrics.contains("archy_registry_requests_total{kind=\"metadata\"} 2"), "{metrics}");
    assert!(metrics.contains("archy_registry_requests_total{kind=\"not_found\"} 1"), "{metrics}");
    // SIGTERM: stops accepting and exits 0.
    let mut registry = registry;
    let status = registry.terminate();
    assert!(status.success(), "exit status {status}");
}
