//! The node's checks on archy's Nostr events, event by event: what is accepted, and the named
//! reason each hostile event is dropped for.

use std::path::Path;

use archy_nostr::discovery::{Checked, Discovery, PendingRelease};
use archy_nostr::event::{self, Location, Rejected};
use archy_nostr::nostr_sdk::{EventBuilder, JsonUtil, Keys, Kind, Tag};
use catalog::envelope::VerifiedManifest;
use catalog::keys::SigningKey;
use catalog::manifest::{Limits, Manifest};

struct Publisher {
    did: SigningKey,
    nostr: Keys,
}

impl Publisher {
    fn new() -> Self {
        Self { did: SigningKey::generate(), nostr: Keys::generate() }
    }

    fn manifest(&self, version: &str) -> VerifiedManifest {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/static-web");
        let mut manifest = Manifest::from_dir(&dir, &Limits::default()).expect("sample manifest");
        manifest.publisher = self.did.did();
        manifest.version = version.parse().expect("version");
        catalog::testing::verified(&manifest, &self.did)
    }

    fn release(&self, version: &str) -> (archy_nostr::nostr_sdk::Event, Vec<u8>) {
        let manifest = self.manifest(version);
        let locations = [Location::Url("http://127.0.0.1:1/envelope".into())];
        let event = event::release_event(&manifest, &locations, &self.did, &self.nostr).expect("release event");
        (event, manifest.envelope().to_bytes())
    }

    fn binding(&self) -> archy_nostr::nostr_sdk::Event {
        event::binding_event(&self.did, &self.nostr).expect("binding event")
    }
}

fn pending(checked: Checked) -> PendingRelease {
    match checked {
        Checked::Release(p) => p,
        other => panic!("expected a release waiting for its envelope, got {other:?}"),
    }
}

#[test]
fn a_bound_release_with_its_envelope_is_accepted() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    let (release, bytes) = publisher.release("1.0.0");
    assert!(matches!(discovery.check(&publisher.binding()), Ok(Checked::Binding { .. })));
    let p = pending(discovery.check(&release).expect("release"));
    let accepted = discovery.accept(p, &bytes, &Limits::default()).expect("accepted");
    assert_eq!(accepted.manifest.manifest().id.as_str(), "static-web");
    assert_eq!(accepted.manifest.publisher(), &publisher.did.did());
    assert!(matches!(discovery.check(&release), Ok(Checked::Known)));
}

#[test]
fn a_release_before_its_binding_waits_for_it() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    let (release, _) = publisher.release("1.0.0");
    let parked = discovery.check(&release).expect("parked");
    assert!(matches!(parked, Checked::Parked(Rejected::Unbound { .. })), "{parked:?}");
    match discovery.check(&publisher.binding()).expect("binding") {
        Checked::Binding { unparked, .. } => assert_eq!(unparked, vec![release.clone()]),
        other => panic!("{other:?}"),
    }
    pending(discovery.check(&release).expect("release after binding"));
}

#[test]
fn a_valid_nostr_signature_with_a_bad_did_signature_is_dropped() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    discovery.check(&publisher.binding()).expect("binding");
    let (release, _) = publisher.release("1.0.0");
    // Same tags, but the DID signature is over another version: re-signed by the Nostr key only.
    let mut tags: Vec<Tag> = release.tags.iter().cloned().collect();
    for t in &mut tags {
        if t.as_slice()[0] == "version" {
            *t = Tag::parse(["version", "9.9.9"]).expect("tag");
        }
    }
    let forged = EventBuilder::new(Kind::from_u16(30078), release.content.clone())
        .tags(tags)
        .sign_with_keys(&publisher.nostr)
        .expect("sign");
    let err = discovery.check(&forged).expect_err("forged version");
    assert!(matches!(err, Rejected::BadDidSignature { statement: "release", .. }), "{err}");
}

#[test]
fn a_binding_for_someone_elses_did_is_dropped() {
    let victim = Publisher::new();
    let mallory = Publisher::new();
    let mut discovery = Discovery::new();
    // Mallory copies the victim's binding tags (with its DID signature) into her own event.
    let copied = EventBuilder::new(Kind::from_u16(30078), "mine now")
        .tags(victim.binding().tags.iter().cloned())
        .sign_with_keys(&mallory.nostr)
        .expect("sign");
    let err = discovery.check(&copied).expect_err("foreign binding");
    assert!(matches!(err, Rejected::BadDidSignature { statement: "binding", .. }), "{err}");
    // So her release in the victim's name stays unbound.
    let (release, _) = victim.release("1.0.0");
    let stolen = EventBuilder::new(Kind::from_u16(30078), "")
        .tags(release.tags.iter().cloned())
        .sign_with_keys(&mallory.nostr)
        .expect("sign");
    assert!(matches!(discovery.check(&stolen), Ok(Checked::Parked(Rejected::Unbound { .. }))));
}

#[test]
fn an_older_version_after_a_newer_one_is_a_replay() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    discovery.check(&publisher.binding()).expect("binding");
    let (old, _) = publisher.release("1.0.0");
    let (new, new_bytes) = publisher.release("1.1.0");
    let p = pending(discovery.check(&new).expect("new"));
    discovery.accept(p, &new_bytes, &Limits::default()).expect("accept new");
    let err = discovery.check(&old).expect_err("replay");
    assert!(matches!(err, Rejected::Replayed { .. }), "{err}");
    assert!(err.to_string().contains("older than the verified 1.1.0"), "{err}");
}

#[test]
fn envelope_bytes_that_are_not_the_announced_ones_are_refused() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    discovery.check(&publisher.binding()).expect("binding");
    let (release, _) = publisher.release("1.0.0");
    let other = publisher.manifest("2.0.0").envelope().to_bytes();
    let p = pending(discovery.check(&release).expect("release"));
    let err = discovery.accept(p, &other, &Limits::default()).expect_err("other bytes");
    assert!(matches!(err, Rejected::BadEnvelope { .. }), "{err}");
}

#[test]
fn a_revoked_version_is_not_offered() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    discovery.check(&publisher.binding()).expect("binding");
    let manifest = publisher.manifest("1.0.0");
    let m = manifest.manifest();
    let revocation =
        event::revocation_event(&m.id, &m.version, "broken", &publisher.did, &publisher.nostr).expect("revocation");
    assert!(matches!(discovery.check(&revocation), Ok(Checked::Revocation { .. })));
    let (release, _) = publisher.release("1.0.0");
    let err = discovery.check(&release).expect_err("revoked");
    assert!(matches!(err, Rejected::Revoked { .. }), "{err}");
}

#[test]
fn oversized_and_malformed_events_are_dropped_before_any_other_check() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    let (release, _) = publisher.release("1.0.0");
    let padded = EventBuilder::new(Kind::from_u16(30078), "x".repeat(event::MAX_CONTENT_BYTES + 1))
        .tags(release.tags.iter().cloned())
        .sign_with_keys(&publisher.nostr)
        .expect("sign");
    let err = discovery.check(&padded).expect_err("oversized content");
    assert!(matches!(err, Rejected::TooLarge { what: "content", .. }), "{err}");

    // Before parsing, the largest limit of any kind (a follow list's) applies ...
    let huge = format!("{{\"content\":\"{}\"}}", "x".repeat(event::MAX_FOLLOW_LIST_BYTES));
    assert!(matches!(event::event_from_json(&huge), Err(Rejected::TooLarge { what: "event", .. })));
    // ... and after it, the limit of the event's kind: 64 KiB for anything but a follow list.
    let big = EventBuilder::new(Kind::from_u16(30078), "x".repeat(event::MAX_EVENT_BYTES))
        .tags(release.tags.iter().cloned())
        .sign_with_keys(&publisher.nostr)
        .expect("sign");
    let err = event::event_from_json(&big.as_json()).expect_err("over 64 KiB");
    assert!(matches!(err, Rejected::TooLarge { what: "event", limit: event::MAX_EVENT_BYTES, .. }), "{err}");
    let follows: Vec<_> = (0..2_000).map(|_| Keys::generate().public_key()).collect();
    let list = archy_nostr::social::follow_list_event(&publisher.nostr, &follows).expect("follow list");
    assert!(list.as_json().len() > event::MAX_EVENT_BYTES, "a 2,000-key follow list is over 64 KiB");
    event::event_from_json(&list.as_json()).expect("a large follow list is accepted");
    assert!(matches!(event::event_from_json("{\"kind\":30078"), Err(Rejected::Malformed(_))));

    let mut json: serde_json::Value = serde_json::from_str(&release.as_json()).expect("json");
    json["content"] = "tampered".into();
    let err = event::event_from_json(&json.to_string()).expect_err("tampered");
    assert!(matches!(err, Rejected::BadNostrSignature(_)), "{err}");

    let no_location = EventBuilder::new(Kind::from_u16(30078), "")
        .tags(release.tags.iter().filter(|t| t.as_slice()[0] != "url").cloned())
        .sign_with_keys(&publisher.nostr)
        .expect("sign");
    let err = discovery.check(&no_location).expect_err("no location");
    assert!(err.to_string().contains("where to fetch"), "{err}");
}

#[test]
fn a_flood_of_unbound_events_is_bounded() {
    let mut discovery = Discovery::new();
    let publisher = Publisher::new();
    let (release, _) = publisher.release("1.0.0");
    let mut overloaded = 0;
    for n in 0..(archy_nostr::discovery::MAX_PARKED + 10) {
        let flood = EventBuilder::new(Kind::from_u16(30078), format!("{n}"))
            .tags(release.tags.iter().cloned())
            .sign_with_keys(&Keys::generate())
            .expect("sign");
        if matches!(discovery.check(&flood), Err(Rejected::Overloaded(_))) {
            overloaded += 1;
        }
    }
    assert_eq!(overloaded, 10);
    assert_eq!(discovery.take_parked().len(), archy_nostr::discovery::MAX_PARKED);
}

#[test]
fn the_nip82_mirror_is_never_taken_for_an_archy_event() {
    let publisher = Publisher::new();
    let mut discovery = Discovery::new();
    assert!(matches!(discovery.check(&publisher.binding()), Ok(Checked::Binding { .. })));
    let (release, _) = publisher.release("1.0.0");
    let manifest = publisher.manifest("1.0.0");
    let mirror = archy_nostr::nip82::Mirror::new(&manifest, &release).sign(&publisher.nostr).expect("mirror");
    for (what, e) in mirror.in_order() {
        let err = discovery.check(e).expect_err(what);
        assert!(matches!(err, Rejected::NotArchy(_)), "{what}: {err}");
    }
}

#[test]
fn a_flood_of_strangers_key_statements_cannot_crowd_out_a_publishers_revocation() {
    use archy_nostr::discovery::MAX_KEY_STATEMENTS;
    use catalog::keylife::{Revocation, Statement};
    let mut discovery = Discovery::new();
    let alice = Publisher::new();
    assert!(matches!(discovery.check(&alice.binding()), Ok(Checked::Binding { .. })));
    let poster = Keys::generate();
    let now = catalog::testing::t0();
    // Free to make: revocations of throwaway keys fill the node's room for strangers.
    for _ in 0..MAX_KEY_STATEMENTS {
        let throwaway = SigningKey::generate();
        let statement = Statement::Revocation(Revocation::sign(&throwaway, None, "", now).expect("sign"));
        let event = event::key_statement_event(&statement, &poster).expect("event");
        assert!(matches!(discovery.check(&event), Ok(Checked::KeyStatement { new: true, .. })));
    }
    let one_more = Statement::Revocation(Revocation::sign(&SigningKey::generate(), None, "", now).expect("sign"));
    let event = event::key_statement_event(&one_more, &poster).expect("event");
    assert!(matches!(discovery.check(&event), Err(Rejected::Overloaded(_))), "a stranger's is dropped");
    // The revocation of a bound publisher still gets in, and her releases are refused.
    let revocation = Statement::Revocation(Revocation::sign(&alice.did, None, "stolen", now).expect("sign"));
    let event = event::key_statement_event(&revocation, &poster).expect("event");
    assert!(matches!(discovery.check(&event), Ok(Checked::KeyStatement { new: true, .. })));
    let (release, _) = alice.release("1.0.0");
    let err = discovery.check(&release).expect_err("revoked");
    assert!(err.to_string().contains("a revocation always wins"), "{err}");
}
