//! Nostr discovery as a node operator sees it: apps announced on real relays (the embedded
//! archy relay on 127.0.0.1) show in `archy-node apps`, and every hostile input is dropped with
//! its reason named in the log and in `archy-node status`, without a crash and without anything
//! being stored.

use std::time::{Duration, Instant};

use crate::util::nostr::*;
use crate::util::origin;
use archy_nostr::nostr_sdk::{EventBuilder, JsonUtil as _, Keys, Kind};

#[test]
fn a_bound_publishers_app_is_listed_with_did_npub_version_and_score() {
    let (world, operator, alice) = World::with_followed_publisher();
    let node = world.node(&[&operator]);
    let (report, _) = sync(&node);
    let nostr = report.nostr.expect("nostr read");
    assert_eq!(nostr.held.releases, 1, "{nostr:?}");
    assert_eq!(nostr.counts.dropped_total(), 0, "{nostr:?}");

    let apps = nostr_apps(&node);
    assert_eq!(apps.len(), 1, "{apps:?}");
    let app = &apps[0];
    assert_eq!(app["id"], "hello-nostr");
    assert_eq!(app["version"], "1.0.0");
    assert_eq!(app["publisher"], alice.did());
    assert_eq!(app["npub"], alice.npub());
    assert_eq!(app["source"], "nostr");
    let score = app["score"].as_f64().unwrap();
    assert!(score > 0.0 && score < 100.0, "followed by the operator's seed: {score}");

    // The text listing shows both sources apart, Nostr apps with DID, npub and score.
    let out = archy(&node, &["apps"]);
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (origin_part, nostr_part) = listing.split_once("Nostr").expect("a Nostr heading");
    assert!(origin_part.contains("Origin catalog") && origin_part.contains("app-a"), "{listing}");
    for needle in ["hello-nostr", "1.0.0", &alice.did(), &alice.npub(), &node::nostr::policy::format_score(score)] {
        assert!(nostr_part.contains(needle), "`{needle}` missing from:\n{listing}");
    }
    assert!(!nostr_part.contains("app-a"), "{listing}");

    // What was stored: the binding, the release, the follow list, and the envelope.
    let stored = stored_events(&node);
    assert_eq!(stored.len(), 3, "{stored:?}");
    let hash = app["blake3"].as_str().unwrap();
    assert!(node.path().join("files").join(hash).exists());
}

#[test]
fn stored_events_are_checked_again_and_a_changed_envelope_is_not_offered() {
    let world = World::new();
    let alice = Publisher::new();
    world.relay.publish(&[alice.binding(), alice.release("hello-nostr", "1.0.0", &world.envelopes)]);
    let node = world.node(&[]);
    sync(&node);
    let apps = nostr_apps(&node);
    assert_eq!(apps.len(), 1);

    // Someone edits the stored envelope: the next reader refuses it, and says why.
    let envelope = node.path().join("files").join(apps[0]["blake3"].as_str().unwrap());
    let mut bytes = std::fs::read(&envelope).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&envelope, &bytes).unwrap();
    let out = archy(&node, &["apps", "--source", "nostr", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
    assert!(text(&out.stderr).contains("bad_envelope"), "{}", text(&out.stderr));

    // The next read fetches it again from its URL and repairs the store.
    sync(&node);
    assert_eq!(listed(&node).len(), 1);

    // A stored event whose content was changed no longer verifies.
    let dir = node.path().join("nostr/events");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        if text.contains("archy:bind:") {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["content"] = "tampered".into();
            std::fs::write(entry.path(), v.to_string()).unwrap();
        }
    }
    let out = archy(&node, &["apps", "--source", "nostr", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]", "the release has no verified binding any more");
    assert!(text(&out.stderr).contains("bad_nostr_signature"), "{}", text(&out.stderr));
}

#[test]
fn malformed_and_badly_signed_events_from_a_hostile_relay_are_dropped_and_counted() {
    let world = World::new();
    let alice = Publisher::new();
    let binding = alice.binding();
    let release = alice.release("hello-nostr", "1.0.0", &world.envelopes);
    let mut tampered: serde_json::Value = serde_json::from_str(&release.as_json()).unwrap();
    tampered["content"] = "changed after signing".into();
    let huge = EventBuilder::new(Kind::from_u16(30078), "x".repeat(archy_nostr::event::MAX_EVENT_BYTES))
        .sign_with_keys(&Keys::generate())
        .unwrap();
    let hostile = HostileRelay::start(vec![
        r#"{"kind":30078,"content":"#.to_owned(), // broken JSON: the whole frame is garbage
        r#""just a string""#.to_owned(),
        r#"{"kind":30078,"tags":[]}"#.to_owned(), // JSON, not an event
        tampered.to_string(),                     // bad Nostr signature
        huge.as_json(),                           // larger than an event may be
        binding.as_json(),
        // The tampered release is dropped; the publisher's binding alone lists nothing.
    ]);
    let node = world.node_with(&[hostile.url()], &[]);
    let (report, log) = sync(&node);
    let nostr = report.nostr.unwrap();
    let dropped = dropped(&node);
    assert_eq!(dropped.get("malformed"), Some(&3), "{dropped:?}");
    assert_eq!(dropped.get("bad_nostr_signature"), Some(&1), "{dropped:?}");
    assert_eq!(dropped.get("too_large"), Some(&1), "{dropped:?}");
    assert_eq!(nostr.counts.accepted.get("binding"), Some(&1));
    for reason in ["malformed event", "bad Nostr signature", "event is"] {
        assert!(log.contains(reason), "the log does not name `{reason}`:\n{log}");
    }
    assert!(listed(&node).is_empty());
    assert!(stored_files(&node).iter().all(|f| !f.ends_with(release.id.to_hex())));
    assert_eq!(stored_events(&node).len(), 1, "only the genuine binding is stored");

    // `status` shows the counts per reason.
    let out = archy(&node, &["status"]);
    let status = text(&out.stdout);
    assert!(status.contains("malformed 3") && status.contains("bad_nostr_signature 1"), "{status}");
}

#[test]
fn a_valid_nostr_signature_with_a_bad_did_signature_is_dropped() {
    let world = World::new();
    let mallory = Publisher::new();
    let genuine = mallory.release("hello-nostr", "1.0.0", &world.envelopes);
    // Same tags, but the version says 9.9.9: the DID signature is over 1.0.0.
    let forged = resign(&genuine, &mallory.nostr, "forged", |t| {
        Some(if t[0] == "version" { vec!["version".into(), "9.9.9".into()] } else { t.to_vec() })
    });
    world.relay.publish(&[mallory.binding(), forged]);
    let node = world.node(&[]);
    let (_, log) = sync(&node);
    assert_eq!(dropped(&node).get("bad_did_signature"), Some(&1), "{log}");
    assert!(log.contains("DID signature by") && log.contains("release statement"), "{log}");
    assert!(listed(&node).is_empty());
    assert!(stored_events(&node).iter().all(|e| !e.as_json().contains("archy:app:")), "no release stored");
    assert!(stored_files(&node).len() <= 2, "only the origin's files: {:?}", stored_files(&node));
}

#[test]
fn a_binding_for_someone_elses_did_is_dropped() {
    let world = World::new();
    let victim = Publisher::new();
    let mallory = Publisher::new();
    // Mallory copies the victim's binding (its DID signature included) into her own event,
    // then announces an app in the victim's name.
    let copied = resign(&victim.binding(), &mallory.nostr, "mine now", |t| Some(t.to_vec()));
    let stolen =
        resign(&victim.release("hello-nostr", "1.0.0", &world.envelopes), &mallory.nostr, "", |t| Some(t.to_vec()));
    world.relay.publish(&[copied, stolen]);
    let node = world.node(&[]);
    let (_, log) = sync(&node);
    let dropped = dropped(&node);
    assert_eq!(dropped.get("bad_did_signature"), Some(&1), "{dropped:?}");
    assert_eq!(dropped.get("unbound"), Some(&1), "{dropped:?}");
    assert!(log.contains("binding statement"), "{log}");
    assert!(log.contains(&format!("no verified binding says npub {} speaks for {}", mallory.npub(), victim.did())));
    assert!(listed(&node).is_empty());
    assert!(!stored_anything_of(&node, &mallory.key(), &victim.did()));
}

#[test]
fn a_replayed_older_version_is_dropped() {
    let world = World::new();
    let alice = Publisher::new();
    let old = alice.release("hello-nostr", "1.0.0", &world.envelopes);
    let new = alice.release("hello-nostr", "1.1.0", &world.envelopes);
    world.relay.publish(&[alice.binding(), new]);
    let node = world.node(&[]);
    sync(&node);
    assert_eq!(listed(&node), [("hello-nostr".into(), "1.1.0".into(), alice.did())]);

    // Another relay still serves the older announcement.
    let stale = Relay::start();
    stale.publish(&[alice.binding(), old.clone()]);
    node.edit_config(|c| {
        c["nostr"]["relays"] = toml::Value::Array(vec![world.relay.url().into(), stale.url().into()]);
    });
    let (_, log) = sync(&node);
    assert_eq!(dropped(&node).get("replayed"), Some(&1), "{log}");
    assert!(log.contains("older than the verified 1.1.0"), "{log}");
    assert_eq!(listed(&node), [("hello-nostr".into(), "1.1.0".into(), alice.did())]);
    assert!(stored_events(&node).iter().all(|e| e.id != old.id), "the replay is not stored");
}

#[test]
fn oversized_content_is_dropped() {
    let world = World::new();
    let alice = Publisher::new();
    let release = alice.release("hello-nostr", "1.0.0", &world.envelopes);
    let padded =
        resign(&release, &alice.nostr, &"x".repeat(archy_nostr::event::MAX_CONTENT_BYTES + 1), |t| Some(t.to_vec()));
    world.relay.publish(&[alice.binding(), padded]);
    let node = world.node(&[]);
    let (_, log) = sync(&node);
    assert_eq!(dropped(&node).get("too_large"), Some(&1), "{log}");
    assert!(log.contains("content is 4097 bytes; the limit is 4096"), "{log}");
    assert!(listed(&node).is_empty());
    assert!(stored_events(&node).iter().all(|e| !e.as_json().contains("archy:app:")));
}

#[test]
fn a_revocation_removes_the_version() {
    let world = World::new();
    let alice = Publisher::new();
    world.relay.publish(&[
        alice.binding(),
        alice.release("hello-nostr", "1.0.0", &world.envelopes),
        alice.release("other-app", "2.0.0", &world.envelopes),
    ]);
    let node = world.node(&[]);
    sync(&node);
    assert_eq!(listed(&node).len(), 2);

    world.relay.publish(&[alice.revocation("hello-nostr", "1.0.0")]);
    let (report, _) = sync(&node);
    assert_eq!(report.nostr.unwrap().counts.accepted.get("revocation"), Some(&1));
    assert_eq!(listed(&node), [("other-app".into(), "2.0.0".into(), alice.did())]);
    // The revocation holds after a restart (the stored events are checked again).
    assert_eq!(listed(&node).len(), 1);
    // And installing the revoked version is not offered.
    let out = archy(&node, &["install", "hello-nostr", "--source", "nostr"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("hello-nostr is not offered on Nostr"), "{}", text(&out.stderr));
}

#[test]
fn a_flood_of_events_leaves_the_node_responsive_and_lists_only_the_genuine_app() {
    let world = World::new();
    let alice = Publisher::new();
    let node = world.node(&[]);
    node.edit_config(|c| {
        c.insert("sync".into(), toml::toml! { interval_secs = 3600 timeout_secs = 10 }.into());
    });
    let daemon = node.run();
    let (api, auth) = (daemon.api.clone(), daemon.auth());
    let get = |path: &str| -> Option<serde_json::Value> {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
        agent.get(&format!("{api}{path}")).set("Authorization", &auth).call().ok()?.into_json().ok()
    };
    // The daemon's live subscription is up once its status says so.
    let deadline = Instant::now() + Duration::from_secs(60);
    while get("/v1/status").and_then(|s| s["nostr"]["live"]["connected"].as_array().map(|a| a.len())) != Some(1) {
        assert!(Instant::now() < deadline, "the daemon did not subscribe to the relay");
        std::thread::sleep(Duration::from_millis(200));
    }

    // 2,000 events: 1,500 announcements in alice's name by keys bound to nothing (the first
    // MAX_PARKED wait for a binding, the rest are dropped as overloaded), and 500 bindings of
    // random keys carrying alice's DID signature (bad for their keys).
    let template = alice.release("hello-nostr", "9.0.0", &world.envelopes);
    let binding_template = alice.binding();
    let flood: Vec<_> = (0..2000)
        .map(|n| {
            let keys = Keys::generate();
            if n % 4 != 0 {
                resign(&template, &keys, &format!("flood {n}"), |t| Some(t.to_vec()))
            } else {
                resign(&binding_template, &keys, &format!("flood {n}"), |t| Some(t.to_vec()))
            }
        })
        .collect();
    let publisher = std::thread::spawn({
        let url = world.relay.url();
        move || {
            let rt = runtime();
            rt.block_on(node::nostr::relay::publish_all(&url, &flood, Duration::from_secs(30))).unwrap()
        }
    });
    // The API answers while the flood arrives.
    while !publisher.is_finished() {
        assert!(get("/v1/status").is_some(), "the daemon stopped answering during the flood");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(publisher.join().unwrap(), 2000);
    world.relay.publish(&[alice.binding(), alice.release("hello-nostr", "1.0.0", &world.envelopes)]);

    let deadline = Instant::now() + Duration::from_secs(120);
    let apps = loop {
        let apps = get("/v1/apps?source=nostr").unwrap_or_default();
        if apps.as_array().is_some_and(|a| !a.is_empty()) {
            break apps;
        }
        assert!(Instant::now() < deadline, "the genuine app never appeared");
        std::thread::sleep(Duration::from_millis(300));
    };
    let apps = apps.as_array().unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["publisher"], alice.did());
    assert_eq!(apps[0]["version"], "1.0.0");
    // Every flood event was dropped with its reason, and counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get("/v1/status").unwrap();
        let dropped = &status["nostr"]["live"]["counts"]["dropped"];
        let bad = dropped["bad_did_signature"].as_u64().unwrap_or(0);
        let overloaded = dropped["overloaded"].as_u64().unwrap_or(0);
        if bad == 500 && overloaded == 1500 - archy_nostr::discovery::MAX_PARKED as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "flood not counted: {dropped}");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(daemon);
    assert_eq!(listed(&node), [("hello-nostr".into(), "1.0.0".into(), alice.did())]);
    assert_eq!(stored_events(&node).len(), 2, "only the genuine binding and release are stored");
}

#[test]
fn an_envelope_is_fetched_over_iroh_when_its_url_fails() {
    let world = World::new();
    let alice = Publisher::new();
    let manifest = alice.manifest("hello-nostr", "1.0.0");
    let bytes = manifest.envelope().to_bytes();
    // An iroh peer in this process serves the envelope; the URL named first is dead.
    let peer = world.relay.rt.block_on(async {
        let peer = origin::TestPeer::start(origin::FakeMeta::from_dir(&world.origin.served())).await;
        peer.store.blobs().add_bytes(bytes.clone()).with_tag().await.unwrap();
        peer
    });
    let ticket = iroh_blobs::ticket::BlobTicket::new(
        peer.addr.endpoint_addr(),
        iroh_blobs::Hash::from_bytes(*blake3::hash(&bytes).as_bytes()),
        iroh_blobs::BlobFormat::Raw,
    );
    let locations = [
        archy_nostr::event::Location::Url(format!("{}/envelope", origin::dead_url())),
        archy_nostr::event::Location::Iroh(ticket.to_string()),
    ];
    let release = archy_nostr::event::release_event(&manifest, &locations, &alice.did, &alice.nostr).unwrap();
    world.relay.publish(&[alice.binding(), release]);
    let node = world.node(&[]);
    let (report, log) = sync(&node);
    assert_eq!(report.nostr.unwrap().counts.dropped_total(), 0, "{log}");
    assert_eq!(listed(&node), [("hello-nostr".into(), "1.0.0".into(), alice.did())]);
    assert!(node.path().join("files").join(blake3::hash(&bytes).to_hex().as_str()).exists());
    world.relay.rt.block_on(peer.router.shutdown()).unwrap();
}

#[test]
fn a_relay_that_never_answers_is_given_up_on_and_the_others_still_count() {
    let world = World::new();
    let alice = Publisher::new();
    world.relay.publish(&[alice.binding(), alice.release("hello-nostr", "1.0.0", &world.envelopes)]);
    let silent = HostileRelay::silent();
    let node = world.node_with(&[silent.url(), world.relay.url()], &[]);
    node.edit_config(|c| {
        c["nostr"]["timeout_secs"] = 2.into();
    });
    let (report, log) = sync(&node);
    let nostr = report.nostr.unwrap();
    let silent_report = nostr.relays.iter().find(|r| r.url == silent.url()).unwrap();
    assert!(silent_report.error.as_deref().unwrap_or_default().contains("no answer within 2s"), "{nostr:?}");
    assert!(log.contains("no answer within 2s"), "{log}");
    assert_eq!(listed(&node), [("hello-nostr".into(), "1.0.0".into(), alice.did())]);
    let status = text(&archy(&node, &["status"]).stdout);
    assert!(
        status.contains(&format!("relay {}: 0 events; relay {}: no answer within 2s", silent.url(), silent.url())),
        "{status}"
    );
}

#[test]
fn a_node_can_run_the_embedded_relay_and_read_it() {
    let world = World::new();
    let alice = Publisher::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let own_relay = format!("ws://127.0.0.1:{port}");
    let node = world.node_with(std::slice::from_ref(&own_relay), &[]);
    node.edit_config(|c| {
        c["nostr"].as_table_mut().unwrap().insert("serve_relay".into(), format!("127.0.0.1:{port}").into());
    });
    let daemon = node.run();
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.path().join("node.json")).unwrap()).unwrap();
    assert_eq!(info["relay"], own_relay.as_str(), "node.json names the node's relay");

    // A publisher posts to the node's relay; the node's live subscription lists the app.
    let rt = runtime();
    let events = [alice.binding(), alice.release("hello-nostr", "1.0.0", &world.envelopes)];
    let posted = rt.block_on(node::nostr::relay::publish_all(&own_relay, &events, Duration::from_secs(10))).unwrap();
    assert_eq!(posted, 2);
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let apps: serde_json::Value = agent
            .get(&format!("{}/v1/apps?source=nostr", daemon.api))
            .set("Authorization", &daemon.auth())
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        let text = apps.to_string();
        if text.contains("hello-nostr") {
            break;
        }
        assert!(Instant::now() < deadline, "the node did not list the app from its own relay: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(daemon);
    // The relay kept its events on disk.
    let log = std::fs::read_to_string(node.path().join("relay/events.jsonl")).unwrap();
    assert!(log.contains(&events[1].id.to_hex()), "the node's relay persisted the release");
}

#[test]
fn a_publisher_posting_version_after_version_leaves_only_the_newest_few_stored() {
    let world = World::new();
    let alice = Publisher::new();
    world.relay.publish(&[alice.binding()]);
    let node = world.node(&[]);
    let kept = node::nostr::state::MAX_VERSIONS_KEPT;
    for minor in 0..kept + 2 {
        world.relay.publish(&[alice.release("hello-nostr", &format!("1.{minor}.0"), &world.envelopes)]);
        sync(&node);
    }
    let releases: Vec<_> = stored_events(&node).into_iter().filter(|e| e.as_json().contains("archy:app:")).collect();
    assert_eq!(releases.len(), kept, "only the {kept} newest versions stay in the store");
    let listed = listed(&node);
    assert!(listed.iter().any(|(_, v, _)| v == &format!("1.{}.0", kept + 1)), "the newest is listed: {listed:?}");
    assert!(!listed.iter().any(|(_, v, _)| v == "1.0.0" || v == "1.1.0"), "the oldest are gone: {listed:?}");
}
