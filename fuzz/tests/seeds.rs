//! The committed seeds reach the checks they are named after, against the state the targets
//! start from (a seed that no longer does, e.g. after a change of an event's shape, is
//! rewritten by `examples/make_seeds.rs`). Run from `fuzz/` with `cargo test`.

use std::path::{Path, PathBuf};

use archy_fuzz::nostr::{Checks, Outcome, sign_template};
use archy_nostr::event::{self, Rejected};

fn seeds(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target)
}

fn read(target: &str, name: &str) -> Vec<u8> {
    let path = seeds(target).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A short name for an outcome, so the expectations read as a list.
fn short(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Dropped(Rejected::NotArchy(_)) => "dropped: not archy".into(),
        Outcome::Dropped(Rejected::Replayed { .. }) => "dropped: replayed".into(),
        Outcome::Dropped(Rejected::Revoked { .. }) => "dropped: revoked".into(),
        other => format!("{other:?}").split(['(', ' ']).next().unwrap_or_default().to_lowercase(),
    }
}

#[test]
fn nostr_event_seeds_are_accepted_by_relays_and_reach_the_node_checks() {
    for (name, expected) in [
        ("binding.json", "bound"),
        ("release-1.0.0.json", "accepted"),
        ("release-2.0.0.json", "accepted"),
        ("revocation-1.0.0.json", "revoked"),
        ("second-binding.json", "bound"),
        ("unbound-release.json", "parked"),
        ("deletion.json", "dropped: not archy"),
        ("label-endorse.json", "dropped: not archy"),
        ("follow-list.json", "dropped: not archy"),
        ("assertion.json", "dropped: not archy"),
    ] {
        let json = String::from_utf8(read("nostr_event", name)).expect("UTF-8");
        let event = event::event_from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(short(&Checks::new().event(&event)), expected, "{name}");
    }
}

#[test]
fn nostr_tags_seeds_meet_each_other_as_named() {
    for (name, expected) in [
        ("release.jsonl", &["accepted"][..]),
        ("releases-in-order.jsonl", &["accepted", "accepted"]),
        ("replayed-older-release.jsonl", &["accepted", "dropped: replayed"]),
        ("revoked-then-released.jsonl", &["revoked", "dropped: revoked"]),
        ("parked-until-bound.jsonl", &["parked", "bound", "accepted"]),
        ("labels-and-follows.jsonl", &["dropped: not archy", "dropped: not archy", "dropped: not archy"]),
    ] {
        let mut checks = Checks::new();
        let outcomes: Vec<String> = read("nostr_tags", name)
            .split(|&b| b == b'\n')
            .filter_map(sign_template)
            .map(|event| short(&checks.event(&event)))
            .collect();
        assert_eq!(outcomes, expected, "{name}");
    }
}

#[test]
fn meta_frame_request_seeds_decode_as_named() {
    for (name, expected) in [
        ("request-timestamp", Some("timestamp.json")),
        ("request-root", Some("2.root.json")),
        ("request-role", Some("1.acme.json")),
        ("request-bad", None),
    ] {
        assert_eq!(archy_net::meta::decode_request(&read("meta_frame", name)), expected, "{name}");
    }
}

#[test]
fn submission_seeds_get_the_answer_they_are_named_after() {
    // Signed again, a seed's metadata lists its files as uploaded: the hash mismatch becomes a
    // manifest that does not parse.
    for (name, status, code, resigned_code) in [
        ("accepted", 200, None, None),
        ("accepted-with-image", 200, None, None),
        ("hash-mismatch", 400, Some("hash_mismatch"), Some("bad_manifest")),
        ("missing-file", 400, Some("missing_file"), Some("missing_file")),
        ("file-not-in-metadata", 400, Some("file_not_in_metadata"), Some("file_not_in_metadata")),
        ("metadata-first", 400, Some("bad_order"), Some("bad_order")),
        ("manifest-of-another-publisher", 403, Some("wrong_publisher"), Some("wrong_publisher")),
        ("manifest-at-another-versions-path", 400, Some("bad_manifest"), Some("bad_manifest")),
    ] {
        for (file, code) in
            [(format!("{name}.bin"), code), (format!("{name}-resigned-in-chunks-of-7.bin"), resigned_code)]
        {
            let (got, answer) = archy_fuzz::origin::submission(&read("submission", &file)).expect("an input");
            assert_eq!(got.as_u16(), status, "{file}: {answer}");
            if let Some(code) = code {
                assert_eq!(answer["error"], code, "{file}: {answer}");
            }
        }
    }
    let (got, answer) = archy_fuzz::origin::submission(&read("submission", "not-multipart.bin")).expect("an input");
    assert_eq!((got.as_u16(), &answer["error"]), (400, &"bad_request".into()), "{answer}");
}
