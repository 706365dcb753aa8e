//! Writes the seeds of the network fuzz targets (`seeds/nostr_event/`, `seeds/nostr_tags/`,
//! `seeds/meta_frame/`, `seeds/submission/`): real events, requests, responses and
//! submissions made with the fixed keys of `archy_fuzz`, so they are valid against the state the
//! targets start from. Run from `fuzz/` with
//!
//! ```sh
//! CARGO_TARGET_DIR=$HOME/.cache/archy-fuzz-seeds cargo run --example make_seeds
//! ```
//!
//! Events are rebuilt with a fixed `created_at`; their BIP-340 signatures use fresh randomness,
//! so a run changes the signature bytes and nothing else.

use std::path::{Path, PathBuf};

use archy_fuzz::nostr::{APP, ENVELOPES, PUBLISHER, SEED_TIME, SIGN_PLACEHOLDER, STRANGER, VERSIONS, rebuilt_at};
use archy_fuzz::origin::{BOUNDARY, Input, ROLE, first_metadata, multipart};
use archy_net::meta::ResponseHead;
use archy_nostr::event::{self, Location};
use archy_nostr::nostr_sdk::{Event, JsonUtil as _, Keys};
use archy_nostr::social;
use catalog::testing::{TestApp, TestKeys};
use catalog::trust::Label;
use serde_json::Value;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the seed folder");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// A release of `VERSIONS[i]` by the publisher's DID, posted by `nostr`.
fn release(i: usize, nostr: &Keys) -> Event {
    let manifest = TestApp::new(APP).version(VERSIONS[i]).verified(&PUBLISHER.did);
    assert_eq!(manifest.envelope().to_bytes(), ENVELOPES[i], "the fixture's envelope");
    let locations = [
        Location::Url(format!("http://127.0.0.1:8480/v1/blobs/{}", blake3::hash(&ENVELOPES[i]).to_hex())),
        Location::Iroh(ticket(&ENVELOPES[i])),
    ];
    let event = event::release_event(&manifest, &locations, &PUBLISHER.did, nostr).expect("release event");
    rebuilt_at(&event, SEED_TIME + i as u64, nostr)
}

/// An iroh-blobs ticket for `bytes` at a fixed endpoint on 127.0.0.1, as `archy publish` makes
/// one.
fn ticket(bytes: &[u8]) -> String {
    let endpoint = iroh::SecretKey::from_bytes(&[9; 32]).public();
    let addr = iroh::EndpointAddr::new(endpoint).with_ip_addr("127.0.0.1:4919".parse().expect("a socket address"));
    let hash = iroh_blobs::Hash::from_bytes(*blake3::hash(bytes).as_bytes());
    iroh_blobs::ticket::BlobTicket::new(addr, hash, iroh_blobs::BlobFormat::Raw).to_string()
}

/// The publisher's binding for a second Nostr key: the stranger's key speaks for the
/// publisher's DID too.
fn second_binding() -> Event {
    let event = event::binding_event(&PUBLISHER.did, &STRANGER.nostr).expect("binding event");
    rebuilt_at(&event, SEED_TIME, &STRANGER.nostr)
}

fn revocation(i: usize) -> Event {
    let app = APP.parse().expect("app id");
    let version = VERSIONS[i].parse().expect("version");
    let event = event::revocation_event(&app, &version, "withdrawn: it leaks notes", &PUBLISHER.did, &PUBLISHER.nostr)
        .expect("revocation event");
    rebuilt_at(&event, SEED_TIME + 10, &PUBLISHER.nostr)
}

fn label() -> Event {
    let event = social::label_event(&STRANGER.nostr, &PUBLISHER.nostr.public_key(), Label::Endorse, "good apps")
        .expect("label event");
    rebuilt_at(&event, SEED_TIME, &STRANGER.nostr)
}

fn follows(at: u64) -> Event {
    let event = social::follow_list_event(&STRANGER.nostr, &[PUBLISHER.nostr.public_key()]).expect("follow list");
    rebuilt_at(&event, at, &STRANGER.nostr)
}

/// The JSON line of `event` as a template of the `nostr_tags` target: its `did-sig` replaced
/// by the placeholder the target signs.
fn template(event: &Event) -> String {
    let mut value: Value = serde_json::from_str(&event.as_json()).expect("event JSON");
    for tag in value["tags"].as_array_mut().expect("tags").iter_mut() {
        if tag[0] == "did-sig" {
            tag[1] = SIGN_PLACEHOLDER.into();
        }
    }
    value.to_string()
}

fn lines(events: &[Event]) -> Vec<u8> {
    let mut out = events.iter().map(template).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out.into_bytes()
}

fn nostr(seeds: &Path) {
    let p = &PUBLISHER.nostr;
    let dir = seeds.join("nostr_event");
    let deletion = event::deletion_request(&release(0, p), "withdrawn", p).expect("deletion request");
    let assertion = social::assertion_event(&STRANGER.nostr, &p.public_key(), 87.0).expect("assertion event");
    for (name, event) in [
        ("binding.json", archy_fuzz::nostr::binding()),
        ("release-1.0.0.json", release(0, p)),
        ("release-2.0.0.json", release(1, p)),
        ("revocation-1.0.0.json", revocation(0)),
        ("deletion.json", rebuilt_at(&deletion, SEED_TIME + 10, p)),
        ("label-endorse.json", label()),
        ("follow-list.json", follows(SEED_TIME)),
        ("assertion.json", rebuilt_at(&assertion, SEED_TIME, &STRANGER.nostr)),
        ("second-binding.json", second_binding()),
        ("unbound-release.json", release(0, &STRANGER.nostr)),
    ] {
        write(&dir, name, event.as_json().as_bytes());
    }

    let dir = seeds.join("nostr_tags");
    let s = &STRANGER.nostr;
    for (name, events) in [
        ("release.jsonl", vec![release(0, p)]),
        ("releases-in-order.jsonl", vec![release(0, p), release(1, p)]),
        ("replayed-older-release.jsonl", vec![release(1, p), release(0, p)]),
        ("revoked-then-released.jsonl", vec![revocation(0), release(0, p)]),
        ("parked-until-bound.jsonl", vec![release(0, s), second_binding(), release(1, s)]),
        ("labels-and-follows.jsonl", vec![label(), follows(SEED_TIME + 5), follows(SEED_TIME)]),
    ] {
        write(&dir, name, &lines(&events));
    }
}

fn meta(seeds: &Path) {
    let dir = seeds.join("meta_frame");
    for (name, request) in [
        ("request-timestamp", &b"timestamp.json"[..]),
        ("request-root", b"2.root.json"),
        ("request-role", b"1.acme.json"),
        ("request-bad", b"../keys/root-1.key"),
    ] {
        write(&dir, name, request);
    }
    let folder = tempfile::tempdir().expect("temporary folder");
    TestKeys::fixed().init_folder(folder.path(), catalog::testing::t0());
    let timestamp = std::fs::read(folder.path().join("repository/metadata/timestamp.json")).expect("timestamp.json");
    let mut found = ResponseHead::Found { length: timestamp.len() as u64 }.encode();
    found.extend_from_slice(&timestamp);
    write(&dir, "response-found", &found);
    write(&dir, "response-not-found", &ResponseHead::NotFound.encode());
    write(&dir, "response-bad-request", &ResponseHead::BadRequest.encode());
}

/// A multipart part: its `Content-Disposition` and its bytes.
type Part = (String, Vec<u8>);

fn submissions(seeds: &Path) {
    let dir = seeds.join("submission");
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let manifest_path = "apps/notes/1.0.0.json";
    let image_path = "images/notes/notes-1.0.0.tar";
    let image = b"an image archive the manifest names".as_slice();
    let one = first_metadata(&[(manifest_path, &ENVELOPES[0])]);
    let strangers = TestApp::new(APP).version(VERSIONS[0]).envelope(&STRANGER.did);
    let wrong_publisher = first_metadata(&[(manifest_path, &strangers)]);
    let wrong_path = first_metadata(&[(manifest_path, &ENVELOPES[1])]);
    let two = first_metadata(&[(manifest_path, &ENVELOPES[0]), (image_path, image)]);
    let role = || ("form-data; name=\"role\"".to_owned(), ROLE.as_bytes());
    let metadata = |bytes: &[u8]| ("form-data; name=\"metadata\"".to_owned(), bytes.to_vec());
    let file = |path: &str, bytes: &[u8]| (format!("form-data; name=\"file\"; filename=\"{path}\""), bytes.to_vec());
    // Same length as the first envelope, other bytes.
    let other = &ENVELOPES[1][..ENVELOPES[0].len().min(ENVELOPES[1].len())];
    let cases: Vec<(&str, Vec<Part>)> = vec![
        ("accepted", vec![metadata(&one), file(manifest_path, &ENVELOPES[0])]),
        ("accepted-with-image", vec![metadata(&two), file(manifest_path, &ENVELOPES[0]), file(image_path, image)]),
        ("hash-mismatch", vec![metadata(&one), file(manifest_path, other)]),
        ("missing-file", vec![metadata(&two), file(manifest_path, &ENVELOPES[0])]),
        ("file-not-in-metadata", vec![metadata(&one), file(image_path, image)]),
        ("manifest-of-another-publisher", vec![metadata(&wrong_publisher), file(manifest_path, &strangers)]),
        ("manifest-at-another-versions-path", vec![metadata(&wrong_path), file(manifest_path, &ENVELOPES[1])]),
    ];
    let mut bodies: Vec<(&str, Vec<u8>)> = cases
        .into_iter()
        .map(|(name, parts)| {
            let mut all = vec![role()];
            all.extend(parts.iter().map(|(h, b)| (h.clone(), b.as_slice())));
            (name, multipart(BOUNDARY, &all))
        })
        .collect();
    let first = metadata(&one);
    bodies.push(("metadata-first", multipart(BOUNDARY, &[(first.0, &first.1), role()])));
    for (name, body) in bodies {
        let input =
            |resign, chunk| Input { resign, chunk, content_type: content_type.as_bytes(), body: &body }.encode();
        write(&dir, &format!("{name}.bin"), &input(false, None));
        write(&dir, &format!("{name}-resigned-in-chunks-of-7.bin"), &input(true, Some(7)));
    }
    let json = Input { resign: false, chunk: None, content_type: b"application/json", body: b"{}" };
    write(&dir, "not-multipart.bin", &json.encode());
}

fn main() {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    nostr(&seeds);
    meta(&seeds);
    submissions(&seeds);
    println!("wrote the seeds under {}", seeds.display());
}
