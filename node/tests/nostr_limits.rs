//! What strangers on Nostr can make a node spend: a publisher the install policy does not admit
//! gets no envelope fetch (its release is held back as one event), a denied one gets nothing,
//! one relay hands over only so many events, and when a cap of `[nostr.limits]` is reached the
//! least-trusted data goes first, so a flood never pushes out what the operator's seeds said.

use crate::util::nostr::*;
use crate::util::origin::Node;
use archy_nostr::nostr_sdk::{EventBuilder, Keys, Kind, Tag, Timestamp};

/// Sets `[nostr.limits]` (other `[nostr]` keys are kept).
fn set_limits(node: &Node, limits: toml::Table) {
    node.edit_config(|c| {
        c.get_mut("nostr").unwrap().as_table_mut().unwrap().insert("limits".into(), limits.into());
    });
}

/// The listing of `id`.
fn app(node: &Node, id: &str) -> serde_json::Value {
    nostr_apps(node).into_iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("{id} is not listed"))
}

/// A NIP-32 `archy` label by `keys` on `target`, created `age_secs` ago.
fn label(keys: &Keys, target: &Publisher, value: &str, age_secs: u64) -> archy_nostr::nostr_sdk::Event {
    let tags = [
        Tag::parse(["L", "archy"]).unwrap(),
        Tag::parse(["l", value, "archy"]).unwrap(),
        Tag::public_key(target.key()),
    ];
    EventBuilder::new(Kind::from_u16(1985), "")
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(Timestamp::now().as_secs() - age_secs))
        .sign_with_keys(keys)
        .unwrap()
}

/// The release events the node stored, by posting key.
fn stored_releases_of(node: &Node, publisher: &Publisher) -> usize {
    stored_events(node)
        .iter()
        .filter(|e| e.pubkey == publisher.key() && e.tags.iter().any(|t| t.as_slice() == ["t", "archy-app"]))
        .count()
}

#[test]
fn a_publisher_the_policy_does_not_admit_makes_the_node_fetch_nothing() {
    let world = World::new();
    let operator = Keys::generate();
    let (trusted, stranger, denied) = (Publisher::new(), Publisher::new(), Publisher::new());
    world.relay.publish(&[
        trusted.binding(),
        trusted.release("trusted-app", "1.0.0", &world.envelopes),
        stranger.binding(),
        stranger.release("stranger-app", "1.0.0", &world.envelopes),
        denied.binding(),
        denied.release("denied-app", "1.0.0", &world.envelopes),
        follows(&operator, &[trusted.key(), denied.key()]),
    ]);
    let node = world.node(&[&operator]);
    node.edit_config(|c| {
        c.insert("nostr_policy".into(), toml::toml! { min_score = 1.0 deny = [(denied.did())] }.into());
    });
    let (report, _) = sync(&node);
    let nostr = report.nostr.unwrap();
    assert_eq!((nostr.held.releases, nostr.held.held_back), (1, 1), "{nostr:?}");
    assert_eq!(nostr.counts.dropped.get("denied"), Some(&1), "{nostr:?}");

    // Only the admitted publisher's envelope was asked for.
    let trusted_hash = app(&node, "trusted-app")["blake3"].as_str().unwrap().to_owned();
    assert_eq!(world.envelopes.server.requested(), [format!("/{trusted_hash}")]);

    // The stranger's release is listed as held back, with the rule that refused it; nothing of
    // it is in the file store.
    let held = app(&node, "stranger-app");
    let why = held["held_back"].as_str().expect("held back");
    assert!(
        why.starts_with(&format!("refused by nostr_policy.min_score: publisher {}", stranger.did()))
            && why.ends_with("its envelope was not fetched"),
        "{why}"
    );
    assert!(!node.path().join("files").join(held["blake3"].as_str().unwrap()).exists());
    let listing = text(&archy(&node, &["apps", "--source", "nostr"]).stdout);
    assert!(listing.contains("held back: refused by nostr_policy.min_score"), "{listing}");
    assert!(app(&node, "trusted-app").get("held_back").is_none());

    // The denied publisher's release is neither listed nor stored.
    assert!(nostr_apps(&node).iter().all(|a| a["id"] != "denied-app"));
    assert_eq!(stored_releases_of(&node, &denied), 0);

    // Installing the held-back app is refused by the policy, before anything is fetched.
    let out = archy(&node, &["install", "stranger-app"]);
    assert!(text(&out.stderr).contains("refused by nostr_policy.min_score"), "{}", text(&out.stderr));
    assert_eq!(world.envelopes.server.requested().len(), 1);

    // Once the operator's seed follows the stranger, the next read fetches its envelope.
    // A follow list is replaceable: the new one must be newer than the first, which may have been
    // made in the same second.
    let newer = EventBuilder::new(Kind::ContactList, "")
        .tags([trusted.key(), denied.key(), stranger.key()].map(Tag::public_key))
        .custom_created_at(Timestamp::from_secs(Timestamp::now().as_secs() + 1))
        .sign_with_keys(&operator)
        .unwrap();
    world.relay.publish(&[newer]);
    let (report, _) = sync(&node);
    let nostr = report.nostr.unwrap();
    assert_eq!((nostr.held.releases, nostr.held.held_back), (2, 0), "{nostr:?}");
    let fetched = app(&node, "stranger-app");
    assert!(fetched.get("held_back").is_none(), "{fetched}");
    assert!(node.path().join("files").join(fetched["blake3"].as_str().unwrap()).exists());
    assert!(world.envelopes.server.requested().contains(&format!("/{}", fetched["blake3"].as_str().unwrap())));
}

#[test]
fn a_flood_of_strangers_labels_does_not_push_out_a_seeds_report() {
    let world = World::new();
    let operator = Keys::generate();
    let publisher = Publisher::new();
    world.relay.publish(&[
        publisher.binding(),
        publisher.release("some-app", "1.0.0", &world.envelopes),
        follows(&operator, &[publisher.key()]),
    ]);
    let node = world.node(&[&operator]);
    set_limits(&node, toml::toml! { labels = 40 });
    sync(&node);
    let before = app(&node, "some-app")["score"].as_f64().unwrap();

    // 100 fresh keys each label the publisher, backdated by a day: the node holds at most 40.
    let flood: Vec<_> = (0..100).map(|_| label(&Keys::generate(), &publisher, "endorse", 86_400)).collect();
    world.relay.publish(&flood);
    let (report, _) = sync(&node);
    let nostr = report.nostr.unwrap();
    assert_eq!(nostr.held.labels, 40, "{nostr:?}");
    assert!(nostr.counts.dropped.get("evicted").is_some_and(|n| *n >= 60), "{nostr:?}");
    let stored_labels = stored_events(&node).iter().filter(|e| e.kind.as_u16() == 1985).count();
    assert_eq!(stored_labels, 40);

    // The operator's seed reports the publisher: the report is held, and it counts.
    world.relay.publish(&[label(&operator, &publisher, "report", 0)]);
    let (report, _) = sync(&node);
    assert_eq!(report.nostr.unwrap().held.labels, 40);
    let out = archy(&node, &["trust", &publisher.did(), "--json"]);
    let trust: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reporters = trust["keys"][0]["reporters"].as_array().unwrap();
    assert!(
        reporters.iter().any(|r| r[0] == archy_nostr::event::bech32_npub(&operator.public_key())),
        "the seed's report was pushed out: {trust}"
    );
    let after = app(&node, "some-app")["score"].as_f64().unwrap();
    assert!(after < before, "the seed's report lowers the score: {before} -> {after}");
}

#[test]
fn caps_hold_after_a_read_and_the_trusted_publisher_survives_them() {
    let world = World::new();
    let operator = Keys::generate();
    let trusted = Publisher::new();
    let mut events = vec![
        trusted.binding(),
        trusted.release("trusted-app", "1.0.0", &world.envelopes),
        follows(&operator, &[trusted.key()]),
    ];
    // 30 strangers, each bound and with a release the policy does not admit.
    let strangers: Vec<Publisher> = (0..30).map(|_| Publisher::new()).collect();
    for (i, s) in strangers.iter().enumerate() {
        events.push(s.binding());
        events.push(s.release(&format!("stranger-{i}"), "1.0.0", &world.envelopes));
    }
    world.relay.publish(&events);
    let node = world.node(&[&operator]);
    set_limits(&node, toml::toml! { bound_keys = 12 held_back = 5 });
    let (report, _) = sync(&node);
    let nostr = report.nostr.unwrap();
    assert_eq!(nostr.held.bindings, 12, "{nostr:?}");
    assert_eq!(nostr.held.held_back, 5, "{nostr:?}");
    assert_eq!(nostr.held.releases, 1, "{nostr:?}");
    assert!(app(&node, "trusted-app").get("held_back").is_none(), "the trusted publisher survives the caps");
    assert_eq!(nostr_apps(&node).iter().filter(|a| a.get("held_back").is_some()).count(), 5);
    assert_eq!(world.envelopes.server.requested().len(), 1, "only the trusted envelope was fetched");

    // One relay hands over at most `events_per_relay` events in a read; the rest are dropped
    // as overloaded and nothing more is held.
    let small = world.node(&[&operator]);
    set_limits(&small, toml::toml! { events_per_relay = 20 });
    let (report, _) = sync(&small);
    let nostr = report.nostr.unwrap();
    let taken = nostr.relays[0].events;
    assert!(taken > 20, "the relay sent more than the budget: {nostr:?}");
    assert!(nostr.counts.dropped.get("overloaded").is_some_and(|n| *n >= taken - 20), "{nostr:?}");
    assert!(nostr.held.bindings + nostr.held.held_back + nostr.held.releases <= 20, "{nostr:?}");
}

#[test]
fn the_live_subscription_fetches_only_for_admitted_publishers() {
    let world = World::new();
    let operator = Keys::generate();
    let (trusted, stranger) = (Publisher::new(), Publisher::new());
    world.relay.publish(&[follows(&operator, &[trusted.key()])]);
    let node = world.node(&[&operator]);
    let daemon = node.run();
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(10)).build();
    let get = |path: &str| -> serde_json::Value {
        agent
            .get(&format!("{}{path}", daemon.api))
            .set("Authorization", &daemon.auth())
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    };
    // Up once the first full read is done and the live subscription is connected.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = get("/v1/status");
        let connected = status["nostr"]["live"]["connected"].as_array().map(Vec::len);
        if connected == Some(1) && !status["nostr"]["last_read"].is_null() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the daemon's Nostr side did not come up: {status}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    world.relay.publish(&[
        stranger.binding(),
        stranger.release("stranger-app", "1.0.0", &world.envelopes),
        trusted.binding(),
        trusted.release("trusted-app", "1.0.0", &world.envelopes),
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let apps = loop {
        let apps = get("/v1/apps?source=nostr");
        let listed = |id: &str| apps.as_array().unwrap().iter().find(|a| a["id"] == id).cloned();
        if let (Some(t), Some(s)) = (listed("trusted-app"), listed("stranger-app")) {
            break (t, s);
        }
        assert!(std::time::Instant::now() < deadline, "the live subscription did not list both apps: {apps}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let (trusted_app, stranger_app) = apps;
    assert!(trusted_app.get("held_back").is_none(), "{trusted_app}");
    let why = stranger_app["held_back"].as_str().expect("the stranger's release is held back");
    assert!(why.contains("refused by nostr_policy.min_score"), "{why}");
    assert_eq!(world.envelopes.server.requested(), [format!("/{}", trusted_app["blake3"].as_str().unwrap())]);
}
