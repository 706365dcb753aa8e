//! The marketplace's pages through the router: what a visitor sees, search and category filters
//! without JavaScript, the app page's plan and signature facts, and stranger-supplied text shown
//! as text.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalog::envelope::SignedEnvelope;
use catalog::keys::SigningKey;
use catalog::manifest::{Limits, Manifest};
use catalog::metadata::SignedMetadata;
use catalog::repo::{Expiry, Repository, target_file};
use registry::server::Registry;
use tower::ServiceExt as _;

use crate::util::{call, folder_key, origin, post_submission, publish_direct};

/// Publishes a manifest made from the example with `edit` applied, through the registry's
/// submission route, as `role` signed by `key`.
async fn publish(
    registry: &Arc<Registry>,
    dir: &std::path::Path,
    role: &str,
    key: &SigningKey,
    id: &str,
    edit: impl Fn(String) -> String,
) {
    let toml = edit(catalog::manifest::example_toml(id, &key.did()));
    let manifest = Manifest::from_toml_str(&toml, &Limits::default()).expect("manifest");
    let bytes = SignedEnvelope::sign(&manifest, key).expect("sign").to_bytes();
    let path = catalog::repo::envelope_target_path(id, &manifest.version);
    let repo = Repository::load(&dir.join("repository"), Expiry::default()).unwrap();
    let next = repo
        .next_publisher_targets(role, [(path.clone(), target_file(&bytes, "manifest"))], chrono::Utc::now())
        .unwrap();
    let metadata = SignedMetadata::sign(next, &[key]).unwrap().to_bytes();
    let (status, answer) = post_submission(registry, role, &metadata, &[(&path, bytes)]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn page(registry: &Arc<Registry>, path: &str) -> (StatusCode, String) {
    let (status, body) = call(registry, Request::get(path).body(Body::empty()).unwrap()).await;
    (status, String::from_utf8(body).expect("utf-8"))
}

#[tokio::test]
async fn the_list_searches_and_filters_and_the_app_page_shows_the_plan_and_signature() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["team-wiki", "photo-box"])]);
    publish(&registry, dir.path(), "acme", &key, "team-wiki", |t| {
        t.replace("A small static website served from your home server.", "A wiki for your team.")
            .replace("categories = [\"web\"]", "categories = [\"productivity\"]")
    })
    .await;
    publish(&registry, dir.path(), "acme", &key, "photo-box", |t| {
        t.replace("categories = [\"web\"]", "categories = [\"media\"]")
    })
    .await;

    let (status, html) = page(&registry, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("2 apps"), "{html}");
    assert!(html.contains(">Team Wiki<") && html.contains(">Photo Box<"), "{html}");
    assert!(html.contains(&key.did().to_string()), "the publisher's DID is shown");

    let (_, html) = page(&registry, "/?q=WIKI").await;
    assert!(html.contains("1 of 2 apps") && html.contains(">Team Wiki<") && !html.contains(">Photo Box<"), "{html}");
    let (_, html) = page(&registry, "/?category=media").await;
    assert!(html.contains(">Photo Box<") && !html.contains(">Team Wiki<"), "{html}");
    let (_, html) = page(&registry, "/?q=nothing-like-this").await;
    assert!(html.contains("No app matches."), "{html}");

    let (status, html) = page(&registry, "/apps/team-wiki").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "archy-node install team-wiki",
        "archy_team-wiki",                             // the app's network, from the render plan
        "archy_team-wiki_site",                        // its volume
        "docker.io/library/nginx:1.27-alpine@sha256:", // the pinned image
        "TUF role",
        "acme",
        "Manifest BLAKE3",
        "by this server at",
        "https://example.org/team-wiki",
        "http://127.0.0.1:7780/catalog#app-team-wiki", // the visitor's own node
    ] {
        assert!(html.contains(expected), "{expected} missing:\n{html}");
    }
    // Each version with the day this origin took it in.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(html.contains(&format!(">{today}</time>")), "the version's date:\n{html}");
    let (status, html) = page(&registry, "/apps/no-such-app").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("No app"), "{html}");
    let (status, css) = page(&registry, "/style.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("body"), "{css}");
}

#[tokio::test]
async fn a_script_in_a_manifest_is_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["evil-app"])]);
    publish(&registry, dir.path(), "acme", &key, "evil-app", |t| {
        t.replace("title = \"Evil App\"", "title = \"<b onmouseover=alert(1)>Evil</b>\"")
            .replace("A small static website served from your home server.", "\\\"><script>alert('summary')</script>")
            .replace("Describe what the app does", "<script>alert(document.cookie)</script> Describe what the app does")
    })
    .await;
    for path in ["/", "/apps/evil-app", "/?q=%3Cscript%3E"] {
        let (status, html) = page(&registry, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains("<script"), "{path}: a script tag reached the page:\n{html}");
        assert!(!html.contains("<b onmouseover"), "{path}: markup reached the page:\n{html}");
    }
    let (_, html) = page(&registry, "/apps/evil-app").await;
    assert!(html.contains("&lt;script&gt;alert(document.cookie)&lt;/script&gt;"), "shown as text:\n{html}");
    assert!(html.contains("&lt;b onmouseover=alert(1)&gt;Evil&lt;/b&gt;"), "{html}");
}

#[tokio::test]
async fn a_large_catalog_is_listed_a_page_at_a_time_and_searched() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let ids: Vec<String> = (0..600).map(|n| format!("app-{n:05}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    crate::util::init_folder(dir.path(), &[("acme", &key.did(), &id_refs)]);
    // Written straight into the repository: hundreds of submissions through HTTP would test the
    // submission route, not the marketplace. (The time for 10,000 apps is a benchmark's.)
    let files = ids
        .iter()
        .map(|id| {
            let envelope = catalog::testing::TestApp::new(id).envelope(&key);
            (catalog::repo::envelope_target_path(id, &"0.1.0".parse().unwrap()), envelope, "manifest".to_owned())
        })
        .collect();
    publish_direct(dir.path(), "acme", &key, files);
    let registry = crate::util::open(dir.path(), |_| {});

    let (status, html) = page(&registry, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("600 apps") && html.contains("page 1 of 13"), "{}", &html[..html.len().min(2000)]);
    assert_eq!(html.matches("class=\"card\"").count(), 48, "one page of cards");
    let (_, html) = page(&registry, "/?q=app-0059&page=0").await;
    assert!(html.contains("10 of 600 apps"), "{}", &html[..html.len().min(2000)]);
    let (_, html) = page(&registry, "/?page=12").await;
    assert!(html.contains("page 13 of 13") && html.contains("app-00599"), "the last page");
}

#[tokio::test]
async fn a_revoked_key_is_marked_a_yanked_one_is_gone_and_links_from_nostr_land_on_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (SigningKey::generate(), SigningKey::generate());
    let registry = origin(dir.path(), &[("acme", &old.did(), &["team-wiki"])]);
    publish(&registry, dir.path(), "acme", &old, "team-wiki", |t| t).await;
    let served = dir.path().join("repository");
    let key = |name: &str| folder_key(dir.path(), name);
    let change = |f: &dyn Fn(&mut Repository)| {
        let mut repo = Repository::load(&served, Expiry::default()).unwrap();
        f(&mut repo);
        repo.snapshot_and_timestamp(&key("snapshot"), &key("timestamp"), chrono::Utc::now()).unwrap();
        repo.write_dir(&served).unwrap();
    };
    // The key was stolen: rotated with --revoke-old, the new key publishes 0.2.0.
    change(&|r| {
        r.rotate_publisher("acme", &new.did(), None, true, &key("targets"), chrono::Utc::now()).unwrap();
    });
    let registry = crate::util::open(dir.path(), |_| {});
    publish(&registry, dir.path(), "acme-2", &new, "team-wiki", |t| {
        t.replace("version = \"0.1.0\"", "version = \"0.2.0\"")
    })
    .await;
    let (_, html) = page(&registry, "/apps/team-wiki").await;
    assert!(html.contains("0.1.0 (revoked)"), "{html}");
    assert!(html.contains("v0.2.0"), "the page is led by the version not revoked:\n{html}");
    // The new role is yanked: its version leaves, the revoked one is all that is left, marked.
    change(&|r| r.revoke_publisher("acme-2", true, &key("targets"), chrono::Utc::now()).unwrap());
    let registry = crate::util::open(dir.path(), |_| {});
    let (_, html) = page(&registry, "/").await;
    assert!(html.contains("Publisher key revoked") && !html.contains("v0.2.0"), "{html}");

    // A Nostr client's link to a release (NIP-89 `web` template) lands on the app's page.
    use archy_nostr::nostr_sdk::nips::nip01::Coordinate;
    use archy_nostr::nostr_sdk::nips::nip19::Nip19Coordinate;
    use archy_nostr::nostr_sdk::{Keys, Kind, ToBech32 as _};
    let author = Keys::generate().public_key();
    let naddr = |kind: u16, d: &str| {
        let coordinate = Coordinate::new(Kind::from_u16(kind), author).identifier(d);
        Nip19Coordinate::new(coordinate, []).to_bech32().unwrap()
    };
    let response = registry::server::router(registry.clone())
        .oneshot(Request::get(format!("/a/{}", naddr(30078, "archy:app:team-wiki"))).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/apps/team-wiki");
    for bad in [
        naddr(30078, "archy:bind:x"),
        naddr(1, "archy:app:team-wiki"),
        "naddr1nothing".into(),
        "https:%2F%2Fevil".into(),
    ] {
        let (status, _) = page(&registry, &format!("/a/{bad}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn pages_forbid_scripts_and_survive_odd_queries() {
    let dir = tempfile::tempdir().unwrap();
    let registry = origin(dir.path(), &[]);
    let response = registry::server::router(registry.clone())
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let long = "x".repeat(20_000);
    for path in ["/?page=-1".to_owned(), "/?page=18446744073709551616".to_owned(), format!("/?q={long}")] {
        let (status, html) = page(&registry, &path).await;
        assert_eq!(status, StatusCode::OK, "{}", &path[..path.len().min(40)]);
        assert!(html.len() < 20_000, "a long search is cut: {} bytes", html.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nostr_apps_are_listed_apart_ranked_by_the_operators_seeds_and_only_when_the_origin_hosts_them() {
    use archy_nostr::nostr_sdk::{Keys, ToBech32 as _};
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["team-wiki"])]);
    publish(&registry, dir.path(), "acme", &key, "team-wiki", |t| t).await;
    drop(registry);
    let seed = Keys::generate();
    let seed_npub = seed.public_key().to_bech32().unwrap();
    let served = crate::util::Served::start(dir.path(), |c| {
        c.market.seeds = vec![seed_npub.clone()];
        c.market.every = std::time::Duration::from_millis(300);
    })
    .await;

    // A third party announces a guestbook whose title carries markup, and hosts its envelope
    // here; a stranger announces one whose envelope this origin does not hold.
    let publisher = crate::util::NostrPublisher::new();
    let toml = catalog::manifest::example_toml("guestbook", &publisher.did.did())
        .lines()
        .map(|l| if l.starts_with("title =") { "title = \"Guestbook <script>alert(1)</script>\"" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let release = publisher.announce(&served.relay, &toml, Some(&served)).await;
    // The same publisher also announces an app by the id of one in the origin's catalog.
    publisher
        .announce(&served.relay, &catalog::manifest::example_toml("team-wiki", &publisher.did.did()), Some(&served))
        .await;
    let stranger = crate::util::NostrPublisher::new();
    stranger.announce(&served.relay, &catalog::manifest::example_toml("unhosted", &stranger.did.did()), None).await;
    // The operator's seed follows the publisher; the origin's own publisher binds a Nostr key.
    let follows = archy_nostr::social::follow_list_event(&seed, &[publisher.nostr.public_key()]).unwrap();
    let origin_nostr = Keys::generate();
    let binding = archy_nostr::event::binding_event(&key, &origin_nostr).unwrap();
    let relay =
        archy_nostr::client::RelayConnection::connect(&served.relay, std::time::Duration::from_secs(10)).await.unwrap();
    relay.publish(&follows).await.unwrap();
    relay.publish(&binding).await.unwrap();
    relay.disconnect().await;
    let origin_npub = origin_nostr.public_key().to_bech32().unwrap();

    let mut html = String::new();
    for _ in 0..100 {
        html = served.get("/").await.1;
        if html.contains("/nostr/guestbook") && html.contains("trusted along") && html.contains(&origin_npub) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(html.contains("From Nostr") && html.contains("/nostr/guestbook"), "{html}");
    assert!(html.contains("Guestbook &lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>"), "{html}");
    let (origin_part, nostr_part) = html.split_once("From Nostr").unwrap();
    assert!(origin_part.contains("/apps/team-wiki") && !origin_part.contains("guestbook"), "apart:\n{html}");
    // The origin's publisher is shown with the Nostr key bound to its DID, on its card and page.
    assert!(origin_part.contains(&format!("aria-label=\"{origin_npub}\"")), "the bound npub:\n{html}");
    assert!(served.get("/apps/team-wiki").await.1.contains(&origin_npub), "the bound npub on the app page");
    assert!(!nostr_part.contains("team-wiki"), "apart:\n{html}");
    assert!(nostr_part.contains("Trust score"), "{html}");
    assert!(
        nostr_part.contains(&format!("trusted along {}", &seed_npub[..12])),
        "the path starts at the seed:\n{html}"
    );
    assert!(!html.contains("unhosted"), "an envelope the origin does not host is not shown:\n{html}");

    // Search and the app page.
    let (_, found) = served.get("/?q=guest").await;
    assert!(found.contains("/nostr/guestbook") && !found.contains("/apps/team-wiki"), "{found}");
    let (_, found) = served.get("/?q=wiki").await;
    assert!(!found.contains("/nostr/guestbook") && found.contains("/apps/team-wiki"), "{found}");
    let (status, app) = served.get("/nostr/guestbook").await;
    assert_eq!(status, 200, "{app}");
    for wanted in [
        publisher.did.did().to_string(),
        publisher.nostr.public_key().to_bech32().unwrap(),
        "What a node creates".to_owned(),
        "Permissions".to_owned(),
        release.id.to_hex(),
    ] {
        assert!(app.contains(&wanted), "the app page shows {wanted}:\n{app}");
    }
    assert_eq!(served.get("/nostr/unhosted").await.0, 404);
    // An id the origin has stays the origin's: no Nostr page stands beside it.
    let (status, answer) = served.get_full("/nostr/team-wiki").await;
    assert_eq!(status, 303, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("location: /apps/team-wiki\r\n"), "{answer}");

    // A Nostr client's link to the release lands on it.
    use archy_nostr::nostr_sdk::nips::nip01::Coordinate;
    use archy_nostr::nostr_sdk::nips::nip19::Nip19Coordinate;
    let coordinate = Coordinate::new(archy_nostr::nostr_sdk::Kind::from_u16(30078), publisher.nostr.public_key())
        .identifier("archy:app:guestbook");
    let naddr = Nip19Coordinate::new(coordinate, []).to_bech32().unwrap();
    let (status, answer) = served.get_full(&format!("/a/{naddr}")).await;
    assert_eq!(status, 303, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("location: /nostr/guestbook\r\n"), "{answer}");
    served.stop().await;
}

#[tokio::test]
async fn an_icon_is_served_from_the_catalog_only_as_signed_and_can_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let registry = origin(dir.path(), &[("acme", &key.did(), &["team-wiki"])]);
    let toml = catalog::manifest::example_toml("team-wiki", &key.did())
        .replace("# icon = \"icon.svg\"", "icon = \"icon.svg\"");
    let manifest = Manifest::from_toml_str(&toml, &Limits::default()).expect("manifest");
    let envelope = SignedEnvelope::sign(&manifest, &key).expect("sign").to_bytes();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><script>alert(1)</script><rect width="8" height="8"/></svg>"#.to_vec();
    let path = catalog::repo::envelope_target_path("team-wiki", &manifest.version);
    let icon_path = catalog::repo::icon_target_path("team-wiki", &manifest.version, "icon.svg").unwrap();
    assert_eq!(icon_path, "images/team-wiki/icon-0.1.0.svg");
    let repo = Repository::load(&dir.path().join("repository"), Expiry::default()).unwrap();
    let next = repo
        .next_publisher_targets(
            "acme",
            [(path.clone(), target_file(&envelope, "manifest")), (icon_path.clone(), target_file(&svg, "icon"))],
            chrono::Utc::now(),
        )
        .unwrap();
    let metadata = SignedMetadata::sign(next, &[&key]).unwrap().to_bytes();
    let (status, answer) =
        post_submission(&registry, "acme", &metadata, &[(&path, envelope), (&icon_path, svg.clone())]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (_, html) = page(&registry, "/").await;
    assert!(html.contains(r#"<img class="icon" src="/icons/team-wiki/0.1.0""#), "{html}");
    let response = registry::server::router(registry.clone())
        .oneshot(Request::get("/icons/team-wiki/0.1.0").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("sandbox") && policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // Stored bytes that are not what the publisher signed are not served.
    let stored = walk(&dir.path().join("repository/targets"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("icon-0.1.0.svg"))
        .unwrap();
    std::fs::write(&stored, b"<svg xmlns=\"http://www.w3.org/2000/svg\"><text>swapped</text></svg>").unwrap();
    let (status, _) = page(&registry, "/icons/team-wiki/0.1.0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(page(&registry, "/icons/team-wiki/9.9.9").await.0, StatusCode::NOT_FOUND);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}
