//! The Nostr side: a publisher whose DID and Nostr key are bound, a stranger with no binding,
//! the envelopes the publisher announces, and [`Checks`], which runs every check a node runs on
//! an incoming event (`archy_nostr::event`, `discovery`, `social`) and asserts what must hold
//! of the answers.

use std::str::FromStr as _;
use std::sync::LazyLock;

use archy_nostr::discovery::{Checked, Discovery};
use archy_nostr::event::{self, Announcement, KIND_APP_DATA, Location, Rejected};
use archy_nostr::nostr_sdk::{Event, EventBuilder, JsonUtil as _, Keys, Kind, PublicKey, SecretKey, Tag, Timestamp};
use archy_nostr::social::{self, TrustInputs};
use catalog::DidKey;
use catalog::envelope::MAX_ENVELOPE_BYTES;
use catalog::keys::SigningKey;
use catalog::manifest::Limits;
use catalog::testing::{TestApp, TestKeys, key};
use serde_json::Value;

/// The app the publisher announces.
pub const APP: &str = "notes";
/// The versions the publisher has envelopes of ([`envelope`]).
pub const VERSIONS: [&str; 2] = ["1.0.0", "2.0.0"];
/// `created_at` of the seed events (2026-01-01T00:00:00Z), so they are rebuilt identically.
pub const SEED_TIME: u64 = 1_767_225_600;
/// The `did-sig` value a [`sign_template`] replaces with the DID signature of the statement the
/// event's other tags make.
pub const SIGN_PLACEHOLDER: &str = "sign";

/// Someone who publishes on Nostr: a DID key and a Nostr key.
#[derive(Debug)]
pub struct Actor {
    /// The did:key signing key.
    pub did: SigningKey,
    /// The Nostr key.
    pub nostr: Keys,
}

fn nostr_keys(n: u8) -> Keys {
    Keys::new(SecretKey::from_slice(&[n; 32]).expect("32 bytes of a small number are a secp256k1 key"))
}

/// The publisher: the publisher DID of the origin fixture, and a Nostr key [`Checks::new`]
/// holds a verified binding for.
pub static PUBLISHER: LazyLock<Actor> =
    LazyLock::new(|| Actor { did: TestKeys::fixed().publisher, nostr: nostr_keys(0x51) });

/// A stranger: a DID and a Nostr key that no binding ties together (until an input binds them).
pub static STRANGER: LazyLock<Actor> = LazyLock::new(|| Actor { did: key(6), nostr: nostr_keys(0x52) });

/// The envelope of [`APP`] at each of [`VERSIONS`], signed by the publisher's DID.
pub static ENVELOPES: LazyLock<Vec<Vec<u8>>> =
    LazyLock::new(|| VERSIONS.iter().map(|v| TestApp::new(APP).version(v).envelope(&PUBLISHER.did)).collect());

/// The publisher's binding event, checked by every [`Checks::new`].
static BINDING: LazyLock<Event> = LazyLock::new(|| {
    let event = event::binding_event(&PUBLISHER.did, &PUBLISHER.nostr).expect("binding event");
    rebuilt_at(&event, SEED_TIME, &PUBLISHER.nostr)
});

/// `event` signed again by `keys` with `created_at` set to `at`: a seed that is the same on
/// every run but for its BIP-340 signature (which uses fresh randomness).
pub fn rebuilt_at(event: &Event, at: u64, keys: &Keys) -> Event {
    EventBuilder::new(event.kind, event.content.clone())
        .tags(event.tags.iter().cloned())
        .custom_created_at(Timestamp::from_secs(at))
        .allow_self_tagging()
        .sign_with_keys(keys)
        .expect("signing with a secret key")
}

/// The publisher's binding event.
pub fn binding() -> Event {
    BINDING.clone()
}

/// The first value of the tag named `name`.
fn first<'t>(tags: &'t [Vec<String>], name: &str) -> Option<&'t str> {
    tags.iter().find(|t| t.first().map(String::as_str) == Some(name)).and_then(|t| t.get(1)).map(String::as_str)
}

/// The DID signature, as hex, of the statement `tags` make when `npub` posts them: release,
/// binding or revocation by the `d` tag, signed by whichever known DID the `did` tag names.
fn did_signature(tags: &[Vec<String>], npub: &PublicKey) -> Option<String> {
    let d = first(tags, "d")?;
    let did = DidKey::from_str(first(tags, "did")?).ok()?;
    let signer = [&PUBLISHER.did, &STRANGER.did].into_iter().find(|k| k.did() == did)?;
    let version = || first(tags, "version").and_then(|v| semver::Version::parse(v).ok());
    let message = if d.starts_with("archy:app:") {
        let x = tags.iter().find(|t| t.first().map(String::as_str) == Some("x"))?;
        let hash = blake3::Hash::from_hex(x.get(1)?).ok()?;
        let size = first(tags, "size")?.parse().ok()?;
        event::release_message(first(tags, "app")?, &version()?, &hash, size, npub)
    } else if d.starts_with("archy:bind:") {
        event::bind_message(&did, npub)
    } else if d.starts_with("archy:revoke:") {
        event::revoke_message(first(tags, "app")?, &version()?, npub)
    } else {
        return None;
    };
    Some(hex::encode(signer.sign(&message)))
}

/// Signs the event a JSON template describes, with a known Nostr key, so that what the fuzzer
/// writes into the tags reaches the checks after the Nostr signature.
///
/// The template is a NIP-01 event in JSON whose `id` and `sig` are ignored: `kind` (default
/// 30078), `content`, `created_at` (default [`SEED_TIME`]) and `tags` are taken as they are
/// (a tag element that is not a string is taken as its JSON text; empty tags are dropped); a
/// `pubkey` naming the stranger's key makes the stranger the author, anything else the
/// publisher. A `did-sig` tag holding [`SIGN_PLACEHOLDER`] gets the DID signature of the
/// statement the other tags make, when they make one by a known DID.
pub fn sign_template(template: &[u8]) -> Option<Event> {
    let value: Value = serde_json::from_slice(template).ok()?;
    let kind = value["kind"].as_u64().and_then(|k| u16::try_from(k).ok()).unwrap_or(KIND_APP_DATA);
    let content = value["content"].as_str().unwrap_or_default();
    let created_at = value["created_at"].as_u64().unwrap_or(SEED_TIME);
    let stranger = value["pubkey"].as_str() == Some(STRANGER.nostr.public_key().to_hex().as_str());
    let author = if stranger { &STRANGER.nostr } else { &PUBLISHER.nostr };
    let mut tags: Vec<Vec<String>> = value["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_array)
                .filter(|t| !t.is_empty())
                .map(|t| t.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect())
                .collect()
        })
        .unwrap_or_default();
    if let Some(sig) = did_signature(&tags, &author.public_key()) {
        for tag in tags.iter_mut().filter(|t| t.first().map(String::as_str) == Some("did-sig")) {
            if tag.get(1).map(String::as_str) == Some(SIGN_PLACEHOLDER) {
                tag[1].clone_from(&sig);
            }
        }
    }
    let tags = tags.into_iter().filter_map(|t| Tag::parse(t).ok());
    EventBuilder::new(Kind::from_u16(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(created_at))
        .allow_self_tagging()
        .sign_with_keys(author)
        .ok()
}

/// The value of the single `d` tag (the shape `event::parse` requires of an announcement).
fn d_tag(event: &Event) -> Option<&str> {
    let mut d = event.tags.iter().map(Tag::as_slice).filter(|t| t.first().map(String::as_str) == Some("d"));
    let found = d.next()?.get(1).map(String::as_str);
    d.next().is_none().then_some(found).flatten()
}

/// What a parsed announcement must satisfy: the limits of `archy_nostr::event` hold and the
/// `d` tag names what the other tags say.
fn check_announcement(event: &Event, announcement: &Announcement) {
    assert!(event.content.len() <= event::MAX_CONTENT_BYTES, "content over its limit was parsed");
    let d = d_tag(event).expect("a parsed announcement has a single `d` tag");
    match announcement {
        Announcement::Release(r) => {
            assert_eq!(d, event::release_d_tag(r.app.as_str()), "release parsed with a `d` tag of another app");
            assert!(!r.locations.is_empty() && r.locations.len() <= event::MAX_LOCATIONS, "{:?}", r.locations);
            for location in &r.locations {
                assert!(location.as_str().len() <= event::MAX_LOCATION_BYTES, "location over its limit: {location}");
                if let Location::Url(url) = location {
                    assert!(url.starts_with("http://") || url.starts_with("https://"), "not an http(s) URL: {url}");
                }
            }
            assert!(r.size <= MAX_ENVELOPE_BYTES as u64, "announced size {} over the envelope limit", r.size);
        }
        Announcement::Binding(b) => assert_eq!(d, event::bind_d_tag(&b.did), "binding of another DID"),
        Announcement::Revocation(r) => {
            assert_eq!(d, event::revoke_d_tag(r.app.as_str(), &r.version), "revocation of another version");
        }
        Announcement::KeyStatement(s) => {
            assert_eq!(d, event::key_statement_d_tag(s), "key statement under another `d` tag");
        }
    }
}

/// What [`Checks::event`] made of an event, for tests of the seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Dropped by `Discovery::check`.
    Dropped(Rejected),
    /// A verified binding.
    Bound,
    /// A verified revocation.
    Revoked,
    /// A release accepted with its envelope.
    Accepted,
    /// A release whose envelope `Discovery::accept` refused.
    EnvelopeRefused(Rejected),
    /// A release already accepted.
    Known,
    /// Waiting for its binding.
    Parked,
}

/// The node's state across the events of one input: a [`Discovery`] holding the publisher's
/// verified binding, and the [`TrustInputs`] collected.
#[derive(Debug)]
pub struct Checks {
    discovery: Discovery,
    trust: TrustInputs,
}

impl Default for Checks {
    fn default() -> Self {
        Self::new()
    }
}

impl Checks {
    /// A node that has verified the publisher's binding and nothing else.
    pub fn new() -> Self {
        let mut discovery = Discovery::new();
        let checked = discovery.check(&BINDING);
        assert!(matches!(checked, Ok(Checked::Binding { .. })), "the publisher's binding: {checked:?}");
        Self { discovery, trust: TrustInputs::new() }
    }

    /// Every check a node runs on `event`, with what must hold of each answer.
    pub fn event(&mut self, event: &Event) -> Outcome {
        // Each check reads the clock (`created_at` may be at most 10 minutes ahead), so one that
        // passed stays passed for the checks run after it, never the other way round.
        let parsed = event::parse(event);
        let nostr = event::check_nostr(event);
        if nostr.is_ok() {
            let json = event.as_json();
            let limit = event::max_event_bytes(event.kind.as_u16());
            assert!(json.len() <= limit, "an event of {} bytes passed the limit of {limit}", json.len());
            // What a node accepts it hands on as JSON (to its store, to other relays): that JSON
            // must be accepted again as the same event.
            match event::event_from_json(&json) {
                Ok(again) => assert_eq!(&again, event, "event changed in its JSON round trip"),
                Err(e) => panic!("an accepted event is refused after its JSON round trip: {e}\n{json}"),
            }
        }
        if let Ok(announcement) = &parsed {
            assert!(nostr.is_ok(), "parsed an event whose Nostr checks fail: {nostr:?}");
            check_announcement(event, announcement);
            assert_eq!(event::parse(event).ok().as_ref(), Some(announcement), "parse is not deterministic");
        }
        let outcome = self.discovery(event);
        self.trust(event, nostr.is_ok());
        outcome
    }

    /// `Discovery::check`, and `accept` with the publisher's envelope for a release that passes.
    fn discovery(&mut self, event: &Event) -> Outcome {
        let checked = match self.discovery.check(event) {
            Ok(checked) => checked,
            Err(e) => return Outcome::Dropped(e),
        };
        let parsed = &event::parse(event);
        assert!(parsed.is_ok(), "check passed an event parse refuses: {parsed:?}");
        let npub = event.pubkey;
        match checked {
            Checked::Binding { did, npub: bound, unparked } => {
                assert_eq!(bound, npub, "a binding bound another key than its author");
                assert!(self.discovery.is_bound(&npub, &did));
                assert!(unparked.iter().all(|e| e.pubkey == npub), "unparked another author's events");
                // The node checks what waited for this binding again.
                for waiting in &unparked {
                    self.discovery(waiting);
                }
                Outcome::Bound
            }
            Checked::Revocation { did, app, version } => {
                assert!(self.discovery.is_bound(&npub, &did), "revocation by an unbound key");
                assert!(self.discovery.is_revoked(&did, &app, &version));
                Outcome::Revoked
            }
            Checked::Release(pending) => {
                let release = pending.release.clone();
                assert!(self.discovery.is_bound(&npub, &release.did), "release by an unbound key");
                assert!(release.verify(&npub).is_ok(), "release passed with a bad DID signature");
                assert!(!self.discovery.is_revoked(&release.did, &release.app, &release.version));
                let bytes = ENVELOPES.iter().find(|b| blake3::hash(b) == release.hash).unwrap_or(&ENVELOPES[0]);
                match self.discovery.accept(pending, bytes, &Limits::default()) {
                    Ok(accepted) => {
                        let m = accepted.manifest.manifest();
                        assert_eq!(blake3::hash(bytes), release.hash);
                        assert_eq!((&m.id, &m.version, &m.publisher), (&release.app, &release.version, &release.did));
                        let again = self.discovery.check(event);
                        assert!(matches!(again, Ok(Checked::Known)), "an accepted release checked again: {again:?}");
                        Outcome::Accepted
                    }
                    Err(e) => Outcome::EnvelopeRefused(e),
                }
            }
            Checked::Known => Outcome::Known,
            Checked::Parked(reason) => {
                assert!(matches!(reason, Rejected::Unbound { .. }), "parked for {reason:?}");
                let did = match parsed {
                    Ok(Announcement::Release(r)) => &r.did,
                    Ok(Announcement::Revocation(r)) => &r.did,
                    other => panic!("parked an event that is neither a release nor a revocation: {other:?}"),
                };
                assert!(!self.discovery.is_bound(&npub, did), "parked an event whose binding is verified");
                Outcome::Parked
            }
            other => panic!("unknown answer of Discovery::check: {other:?}"),
        }
    }

    /// `TrustInputs::add` and `label_of`: only kind 3 follow lists and kind 1985 `archy` labels
    /// count, and an event that passes the Nostr checks is never refused.
    fn trust(&mut self, event: &Event, nostr_ok: bool) {
        let label = social::label_of(event);
        if label.is_some() {
            assert_eq!(event.kind.as_u16(), social::KIND_LABEL, "a label of another kind");
        }
        let (lists, labels) = (self.trust.follow_lists(), self.trust.label_count());
        match self.trust.add(event) {
            Ok(added) if event.kind == Kind::ContactList => {
                assert_eq!(self.trust.label_count(), labels);
                assert!(self.trust.follow_lists() <= lists + usize::from(added));
            }
            Ok(added) => {
                let grown = self.trust.label_count() - labels;
                assert!(grown <= social::MAX_LABEL_TARGETS, "{grown} labels from one event");
                assert!(added || grown == 0, "labels added by an event reported as not counted");
                assert!(label.is_some() || !added, "an event that is no label counted");
                assert_eq!(self.trust.follow_lists(), lists);
            }
            Err(e) => assert!(!nostr_ok, "TrustInputs refused an event that passes the Nostr checks: {e}"),
        }
    }
}
