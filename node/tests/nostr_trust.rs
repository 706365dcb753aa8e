//! Trust scores and the Nostr install policy as an operator sees them: `archy-node trust` shows
//! the paths that carry a score, the origin's publishers seed the scores, a sybil ring scores
//! nothing until a trusted key follows into it, `install` refuses by the rule that refused, and
//! `trust --publish` posts signed NIP-85 assertions.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::util::nostr::*;
use crate::util::origin;
use archy_nostr::event::bech32_npub;
use archy_nostr::nostr_sdk::Keys;

fn score_of(node: &origin::Node, id: &str) -> f64 {
    nostr_apps(node).iter().find(|a| a["id"] == id).and_then(|a| a["score"].as_f64()).expect("listed")
}

#[test]
fn trust_shows_the_strongest_path_from_a_seed() {
    let world = World::new();
    let operator = Keys::generate();
    let bob = Keys::generate();
    let alice = Publisher::new();
    let mallory = Keys::generate();
    world.relay.publish(&[
        alice.binding(),
        alice.release("hello-nostr", "1.0.0", &world.envelopes),
        follows(&operator, &[bob.public_key()]),
        endorse(&bob, &alice.key()),
        // An untrusted key's report takes nothing away, and is shown as such.
        archy_nostr::social::label_event(&mallory, &alice.key(), catalog::trust::Label::Report, "spam").unwrap(),
    ]);
    let node = world.node(&[&operator]);
    sync(&node);

    let out = archy(&node, &["trust", &alice.did()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let path = format!(
        "{} (your seed) -> {} -> {}",
        bech32_npub(&operator.public_key()),
        bech32_npub(&bob.public_key()),
        alice.npub()
    );
    assert!(shown.contains(&path), "no path `{path}` in:\n{shown}");
    assert!(shown.contains(&format!("publisher {}: score", alice.did())), "{shown}");
    assert!(shown.contains(&format!("endorsed by: {}", bech32_npub(&bob.public_key()))), "{shown}");
    assert!(shown.contains(&format!("reported by: {} (score 0.0)", bech32_npub(&mallory.public_key()))), "{shown}");
    assert!(shown.contains("install policy: installable"), "{shown}");

    // The same by npub, and as JSON.
    let out = archy(&node, &["trust", &alice.npub(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["score"].as_f64().unwrap() > 0.0);
    let keys: Vec<&str> =
        v["keys"][0]["paths"][0]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(keys, [bech32_npub(&operator.public_key()), bech32_npub(&bob.public_key()), alice.npub()]);
    assert_eq!(v["policy"], format!("bound to {}", alice.did()));
}

#[test]
fn the_origins_publishers_seed_the_scores() {
    let world = World::new();
    // The origin's catalog delegates to `acme`; acme binds a Nostr key and follows carol.
    let acme = Publisher::with_did(world.origin.publisher.clone());
    let carol = Publisher::new();
    world.relay.publish(&[
        acme.binding(),
        follows(&acme.nostr, &[carol.key()]),
        carol.binding(),
        carol.release("carols-app", "1.0.0", &world.envelopes),
    ]);
    let node = world.node(&[]); // no operator seeds at all
    sync(&node);
    assert!(score_of(&node, "carols-app") > 0.0);
    let shown = text(&archy(&node, &["trust", &carol.did()]).stdout);
    let seed = format!("{} (origin publisher {})", acme.npub(), acme.did());
    assert!(shown.contains(&format!("{seed} -> {}", carol.npub())), "{shown}");

    // Without a catalog naming acme, the same graph gives carol nothing.
    let other = World::new();
    other.relay.publish(&[
        acme.binding(),
        follows(&acme.nostr, &[carol.key()]),
        carol.binding(),
        carol.release("carols-app", "1.0.0", &other.envelopes),
    ]);
    let node = other.node(&[]);
    sync(&node);
    assert_eq!(score_of(&node, "carols-app"), 0.0);
    let shown = text(&archy(&node, &["trust", &carol.did()]).stdout);
    assert!(shown.contains("no trust seeds"), "{shown}");
}

#[test]
fn a_sybil_ring_scores_zero_unless_a_trusted_key_follows_into_it() {
    let world = World::new();
    let operator = Keys::generate();
    let honest = Publisher::new();
    // 1,000 keys, each following and endorsing the next; the first publishes an app.
    let ring: Vec<Keys> = (0..1000).map(|_| Keys::generate()).collect();
    let sybil = Publisher { did: catalog::keys::SigningKey::generate(), nostr: ring[0].clone() };
    let mut events = vec![
        honest.binding(),
        honest.release("honest-app", "1.0.0", &world.envelopes),
        sybil.binding(),
        sybil.release("sybil-app", "1.0.0", &world.envelopes),
        follows(&operator, &[honest.key()]),
    ];
    for (i, keys) in ring.iter().enumerate() {
        let next = ring[(i + 1) % ring.len()].public_key();
        events.push(follows(keys, &[next]));
        events.push(endorse(keys, &next));
    }
    world.relay.publish(&events);
    let node = world.node(&[&operator]);
    sync(&node);
    assert!(score_of(&node, "honest-app") > 0.0);
    assert_eq!(score_of(&node, "sybil-app"), 0.0, "a ring no trusted key points into gets nothing");
    let shown = text(&archy(&node, &["trust", &sybil.did()]).stdout);
    assert!(shown.contains("no trusted key follows or endorses it"), "{shown}");
    assert!(shown.contains("refused by nostr_policy.min_score"), "{shown}");

    // The operator follows one ring key (two hops before the publisher): trust enters the ring,
    // bounded by what that one edge carries.
    world.relay.publish(&[follows(&operator, &[honest.key(), ring[998].public_key()])]);
    sync(&node);
    let sybil_score = score_of(&node, "sybil-app");
    let honest_score = score_of(&node, "honest-app");
    assert!(sybil_score > 0.0, "a trusted key follows into the ring");
    assert!(sybil_score < honest_score, "sybil {sybil_score} vs honest {honest_score}");
    let shown = text(&archy(&node, &["trust", &sybil.did()]).stdout);
    let path = format!(
        "{} (your seed) -> {} -> {} -> {}",
        bech32_npub(&operator.public_key()),
        bech32_npub(&ring[998].public_key()),
        bech32_npub(&ring[999].public_key()),
        sybil.npub()
    );
    assert!(shown.contains(&path), "no path `{path}` in:\n{shown}");
}

#[test]
fn an_app_id_offered_by_two_admitted_publishers_is_not_installed_from_either() {
    let world = World::new();
    let (owner, other) = (Publisher::new(), Publisher::new());
    world.relay.publish(&[
        owner.binding(),
        owner.release("notes", "1.0.0", &world.envelopes),
        other.binding(),
        // A publisher admitted for its own apps announces a higher version of someone else's id.
        other.release("notes", "9.0.0", &world.envelopes),
    ]);
    let node = world.node(&[]);
    node.edit_config(|c| {
        c.insert("nostr_policy".into(), toml::toml! { allow = [(owner.npub()), (other.npub())] }.into());
    });
    sync(&node);
    let out = archy(&node, &["install", "notes", "--source", "nostr"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("offered on Nostr by several publishers"), "{err}");
    assert!(err.contains(&owner.did().to_string()) && err.contains(&other.did().to_string()), "{err}");
    assert!(!err.contains("container engine"), "refused before the engine is contacted: {err}");

    // The operator decides: with the other publisher denied, the owner's app is the one offered.
    node.edit_config(|c| {
        c.insert(
            "nostr_policy".into(),
            toml::toml! { allow = [(owner.npub()), (other.npub())] deny = [(other.did().to_string())] }.into(),
        );
    });
    let out = archy(&node, &["install", "notes", "--source", "nostr"]);
    let err = text(&out.stderr);
    assert!(!err.contains("several publishers") && !err.contains("nostr_policy"), "{err}");
}

#[test]
fn install_refusals_name_the_nostr_policy_rule() {
    let world = World::new();
    let operator = Keys::generate();
    let trusted = Publisher::new();
    let stranger = Publisher::new();
    world.relay.publish(&[
        trusted.binding(),
        trusted.release("trusted-app", "1.0.0", &world.envelopes),
        stranger.binding(),
        stranger.release("stranger-app", "1.0.0", &world.envelopes),
        // Someone announces an app with the id of the origin's app.
        stranger.release("app-a", "9.0.0", &world.envelopes),
        follows(&operator, &[trusted.key()]),
    ]);
    let node = world.node(&[&operator]);
    sync(&node);
    let install = |args: &[&str]| {
        let out = archy(&node, &[&["install"], args].concat());
        assert!(!out.status.success(), "install {args:?} must fail here (no container engine)");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        text(&out.stderr)
    };

    // min_score: the stranger scores 0.
    let err = install(&["stranger-app"]);
    let expected = format!(
        "error: refused by nostr_policy.min_score: publisher {} (Nostr keys {}) scores 0.0 < 1.0",
        stranger.did(),
        stranger.npub()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("container engine"), "the policy refuses before the engine is contacted: {err}");

    // The trusted publisher passes the policy: the install goes on to the container engine.
    let err = install(&["trusted-app"]);
    assert!(!err.contains("nostr_policy") && err.contains("cannot reach the container engine"), "{err}");

    // The origin's catalog comes first: app-a installs from the origin, whoever announces it.
    let err = install(&["app-a"]);
    assert!(!err.contains("nostr_policy") && err.contains("container engine"), "{err}");
    // Asked for on Nostr only, the stranger's app-a is refused.
    assert!(install(&["app-a", "--source", "nostr"]).contains("refused by nostr_policy.min_score"));
    // And an app only on Nostr is not found in the origin's catalog.
    assert!(install(&["stranger-app", "--source", "origin"]).contains("stranger-app is not in the verified catalog"));

    // allow bypasses min_score: the stranger's envelope was not fetched while the policy did not
    // admit it, so the install says to sync, and after a sync it goes on to the engine.
    node.edit_config(|c| {
        c.insert("nostr_policy".into(), toml::toml! { allow = [(stranger.npub())] }.into());
    });
    let err = install(&["stranger-app"]);
    assert!(
        err.contains(&format!(
            "stranger-app 1.0.0 by {} was held back when the relays were last read, so its envelope is not here; run `archy-node sync` to fetch it",
            stranger.did()
        )),
        "{err}"
    );
    sync(&node);
    let err = install(&["stranger-app"]);
    assert!(!err.contains("nostr_policy") && err.contains("container engine"), "{err}");

    // deny comes first, even over allow and a high score.
    node.edit_config(|c| {
        c.insert(
            "nostr_policy".into(),
            toml::toml! { allow = [(stranger.npub())] deny = [(stranger.did()), (trusted.npub())] }.into(),
        );
    });
    let err = install(&["stranger-app"]);
    assert!(
        err.contains(&format!("error: refused by nostr_policy.deny: publisher {} is on the deny list", stranger.did())),
        "{err}"
    );
    let err = install(&["trusted-app"]);
    assert!(
        err.contains(&format!(
            "refused by nostr_policy.deny: publisher {} is on the deny list (entry `{}`)",
            trusted.did(),
            trusted.npub()
        )),
        "{err}"
    );

    // A higher min_score refuses the trusted publisher too, naming both numbers.
    node.edit_config(|c| {
        c.insert("nostr_policy".into(), toml::toml! { min_score = 100.0 }.into());
    });
    let err = install(&["trusted-app"]);
    assert!(err.contains("refused by nostr_policy.min_score") && err.contains("< 100.0"), "{err}");
}

#[test]
fn init_writes_the_nostr_settings_and_trust_publish_posts_signed_assertions() {
    let (world, operator, alice) = World::with_followed_publisher();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(crate::util::node_bin())
        .args(["init", "--data"])
        .arg(data.path())
        .arg("--root")
        .arg(world.origin.root_v1())
        .args(["--origin", &world.http.url(), "--relay", &world.relay.url()])
        .args(["--trust", &bech32_npub(&operator.public_key()), "--min-score", "5"])
        .args(["--deny", &Publisher::new().did()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = std::fs::read_to_string(data.path().join("config.toml")).unwrap();
    assert!(config.contains("[nostr]") && config.contains(&world.relay.url()), "{config}");
    assert!(config.contains(&bech32_npub(&operator.public_key())) && config.contains("min_score = 5.0"), "{config}");
    // A bad key is refused before anything is written.
    let bad = Command::new(crate::util::node_bin())
        .args(["init", "--data"])
        .arg(data.path())
        .arg("--root")
        .arg(world.origin.root_v1())
        .args(["--trust", "npub1notakey"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("--trust"), "{}", text(&bad.stderr));
    assert_eq!(std::fs::read_to_string(data.path().join("config.toml")).unwrap(), config);

    let node = origin::Node { data };
    sync(&node);
    let out = archy(&node, &["trust", "--publish"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key_file = node.path().join("nostr.key");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&key_file).unwrap();
    assert!(!text(&out.stdout).contains(secret.trim()) && !text(&out.stderr).contains(secret.trim()));
    let shown = text(&out.stdout);
    let signer = shown.split_whitespace().find(|w| w.starts_with("npub1")).expect("the signer's npub").to_owned();
    assert!(shown.contains("1 trust assertions (NIP-85)") && shown.contains(": 1 stored"), "{shown}");

    let signer_key = archy_nostr::nostr_sdk::PublicKey::parse(&signer).unwrap();
    let assertions = world.relay.query(serde_json::json!({ "kinds": [30382], "authors": [signer_key.to_hex()] }));
    assert_eq!(assertions.len(), 1);
    let a = &assertions[0];
    a.verify().expect("signed by the node's key");
    assert_eq!(a.tags.identifier(), Some(alice.key().to_hex().as_str()));
    let rank = a.tags.iter().find(|t| t.as_slice()[0] == "rank").unwrap().as_slice()[1].parse::<u8>().unwrap();
    assert!(rank > 0, "alice is followed by the operator's seed");
    // The same key signs next time.
    let again = archy(&node, &["trust", "--publish"]);
    assert!(text(&again.stdout).contains(&signer));
}

#[test]
fn the_local_api_refuses_a_nostr_install_with_403_naming_the_rule() {
    // The daemon enables its lifecycle API only when a container engine answers; the refusal
    // comes before anything is asked of the engine.
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
    if !std::path::Path::new(&socket).exists() {
        assert!(
            std::env::var("ARCHY_NO_DOCKER").is_ok_and(|v| v == "1"),
            "the Docker engine socket {socket} is missing (set ARCHY_NO_DOCKER=1 only on a machine without Docker)"
        );
        return;
    }
    let world = World::new();
    let stranger = Publisher::new();
    world.relay.publish(&[stranger.binding(), stranger.release("stranger-app", "1.0.0", &world.envelopes)]);
    let node = world.node(&[]);
    node.edit_config(|c| {
        c.insert("docker_socket".into(), socket.clone().into());
        c.insert("nostr_policy".into(), toml::toml! { min_score = 1.0 }.into());
    });
    sync(&node);
    let daemon = node.run();
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30)).build();
    let url = format!("{}/v1/installed/stranger-app", daemon.api);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (status, body) = loop {
        match agent.post(&url).set("Authorization", &daemon.auth()).send_string("") {
            Err(ureq::Error::Status(code, response)) if code != 404 => {
                break (code, response.into_string().unwrap());
            }
            // 404 until the lifecycle API is up (it is merged in once the engine answered).
            other => {
                assert!(std::time::Instant::now() < deadline, "no refusal from the API: {other:?}");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    };
    assert_eq!(status, 403, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("refused by nostr_policy.min_score: publisher {}", stranger.did())),
        "{message}"
    );
}
