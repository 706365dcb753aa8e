//! The marketplace in a real browser: the origin serves a catalog of the six sample apps on
//! 127.0.0.1 and, from its embedded relay, a third party's Nostr app (its envelope hosted here,
//! its publisher followed by the operator's seed); `tests/interop/browser_market.py` drives
//! Debian's chromium (headless, through chromium-driver and selenium) through the list (the
//! Nostr app apart, with its trust score), a search typed into the search box, an app page and a
//! phone-sized window, writing a screenshot of each under the test's output folder.

use std::path::{Path, PathBuf};

use catalog::envelope::SignedEnvelope;
use catalog::keys::SigningKey;
use catalog::manifest::{Limits, Manifest};

/// The sample apps under `apps/`, published by `key` in one role.
fn sample_catalog(dir: &Path, key: &SigningKey) -> usize {
    let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps");
    let mut manifests = Vec::new();
    for entry in std::fs::read_dir(&apps).unwrap() {
        let path = entry.unwrap().path();
        if path.join("archy.toml").exists() {
            let mut manifest = Manifest::from_dir(&path, &Limits::default()).unwrap();
            manifest.publisher = key.did();
            manifests.push(manifest);
        }
    }
    let ids: Vec<String> = manifests.iter().map(|m| m.id.to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    crate::util::init_folder(dir, &[("samples", &key.did(), &refs)]);
    let mut files = Vec::new();
    for m in &manifests {
        let envelope = SignedEnvelope::sign(m, key).unwrap().to_bytes();
        files.push((catalog::repo::envelope_target_path(m.id.as_str(), &m.version), envelope, "manifest".to_owned()));
        // Each sample's icon, as `archy publish` uploads it.
        if let Some(catalog::manifest::Icon::Path(file)) = &m.icon {
            let icon = std::fs::read(apps.join(m.id.as_str()).join(file)).unwrap();
            let target = catalog::repo::icon_target_path(m.id.as_str(), &m.version, file).unwrap();
            files.push((target, icon, "icon".to_owned()));
        }
    }
    crate::util::publish_direct(dir, "samples", key, files);
    manifests.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marketplace_in_a_real_browser() {
    let python = std::env::var("ARCHY_INTEROP_PYTHON")
        .expect("ARCHY_INTEROP_PYTHON is not set: run the tests with `bash tests/run.sh`, which makes the venv");
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: `bash tests/run.sh` installs chromium and chromium-driver"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let apps = sample_catalog(dir.path(), &key);
    assert_eq!(apps, 6, "the six sample apps");
    let seed = archy_nostr::nostr_sdk::Keys::generate();
    let served = crate::util::Served::start(dir.path(), |c| {
        use archy_nostr::nostr_sdk::ToBech32 as _;
        c.market.seeds = vec![seed.public_key().to_bech32().unwrap()];
        c.market.every = std::time::Duration::from_millis(300);
    })
    .await;
    let url = served.http.clone();
    let publisher = crate::util::NostrPublisher::new();
    let toml = catalog::manifest::example_toml("guestbook", &publisher.did.did())
        .lines()
        .map(|l| if l.starts_with("title =") { "title = \"Guestbook\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    publisher.announce(&served.relay, &toml, Some(&served)).await;
    let follows = archy_nostr::social::follow_list_event(&seed, &[publisher.nostr.public_key()]).unwrap();
    let relay =
        archy_nostr::client::RelayConnection::connect(&served.relay, std::time::Duration::from_secs(10)).await.unwrap();
    relay.publish(&follows).await.unwrap();
    relay.disconnect().await;
    for _ in 0..100 {
        if served.get("/").await.1.contains("trusted along") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-market");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/browser_market.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&url)
        .arg(&shots)
        .arg(apps.to_string())
        .arg(key.did().to_string())
        .arg("Guestbook")
        .output()
        .await
        .unwrap();
    served.stop().await;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    for page in ["list", "search", "app", "phone"] {
        let png = std::fs::read(shots.join(format!("marketplace-{page}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "screenshot of the {page} page");
    }
}
