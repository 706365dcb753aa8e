//! The TUF update workflow against repositories written by archy's repository code.

use catalog::client::UpdateError;
use catalog::metadata::MetadataError;
use catalog::testing::{TestApp, TestKeys, t0};
use chrono::TimeDelta;

use crate::util::{bootstrap, repo_with_target, updater};

#[test]
fn fresh_client_finds_and_downloads_a_delegated_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    repo_with_target(dir.path(), &keys, b"envelope bytes");
    let mut client = updater(dir.path(), bootstrap(dir.path()), t0());
    client.refresh().expect("refresh");
    let target = client.target_info("apps/hello-web/1.0.0.json").expect("search").expect("found");
    assert_eq!(target.role(), "alice");
    assert_eq!(client.download_target(&target).expect("download"), b"envelope bytes");
    assert!(client.target_info("apps/other/1.0.0.json").expect("search").is_none());
    // Trusted metadata was persisted under role names.
    for role in ["root", "timestamp", "snapshot", "targets", "alice"] {
        assert!(client.store().contains(role), "{role} persisted");
    }
}

#[test]
fn second_refresh_reuses_local_snapshot_and_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    repo_with_target(dir.path(), &keys, b"x");
    let mut first = updater(dir.path(), bootstrap(dir.path()), t0());
    first.refresh().expect("refresh");
    let store = first.store().clone();
    let mut second = updater(dir.path(), store, t0());
    second.refresh().expect("refresh again");
    assert_eq!(second.remote_mut().requests(), ["metadata/2.root.json", "metadata/timestamp.json"]);
}

#[test]
fn tampered_target_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    let repo = repo_with_target(dir.path(), &keys, b"good bytes");
    let sha = repo.delegated("alice").expect("alice").targets["apps/hello-web/1.0.0.json"].hashes["sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    std::fs::write(dir.path().join(format!("targets/apps/hello-web/{sha}.1.0.0.json")), b"evil bytes").expect("tamper");
    let mut client = updater(dir.path(), bootstrap(dir.path()), t0());
    let target = client.target_info("apps/hello-web/1.0.0.json").expect("search").expect("found");
    assert!(matches!(client.download_target(&target), Err(UpdateError::Hash { .. })));
}

#[test]
fn expired_timestamp_is_refused_at_the_fixed_start_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    repo_with_target(dir.path(), &keys, b"x");
    let later = t0() + TimeDelta::days(2);
    let mut client = updater(dir.path(), bootstrap(dir.path()), later);
    assert!(matches!(client.refresh(), Err(UpdateError::Expired { ref role, .. }) if role == "timestamp"));
}

#[test]
fn root_rotation_chain_is_followed_and_timestamp_key_rotation_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    let mut repo = repo_with_target(dir.path(), &keys, b"x");
    let mut client = updater(dir.path(), bootstrap(dir.path()), t0());
    client.refresh().expect("refresh v1");
    let store = client.store().clone();

    // Rotate the root key (v2, signed by old and new) and the timestamp key (v3).
    let new_root = catalog::keys::SigningKey::from_seed([9; 32]);
    repo.rotate("root", &[new_root.public_key()], 1, &[&keys.root, &new_root], t0()).expect("rotate root");
    let new_ts = catalog::keys::SigningKey::from_seed([10; 32]);
    repo.rotate("timestamp", &[new_ts.public_key()], 1, &[&new_root], t0()).expect("rotate timestamp");
    repo.snapshot_and_timestamp(&keys.snapshot, &new_ts, t0()).expect("publish");
    repo.write_dir(dir.path()).expect("write");

    let mut client = updater(dir.path(), store, t0());
    client.refresh().expect("refresh across rotations");
    assert_eq!(client.trusted_root().version, 3);
}

#[test]
fn root_signed_only_by_new_keys_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    let mut repo = repo_with_target(dir.path(), &keys, b"x");
    let attacker = catalog::keys::SigningKey::from_seed([66; 32]);
    // `rotate` itself refuses to produce a root the old keys did not sign.
    let err = repo.rotate("root", &[attacker.public_key()], 1, &[&attacker], t0()).expect_err("refused");
    assert!(matches!(
        err,
        catalog::repo::RepoError::Metadata(MetadataError::ThresholdNotMet { ref role, .. }) if role == "root"
    ));
}

fn verify_entry(dir: &std::path::Path, path: &str) -> Result<(), catalog::envelope::EnvelopeError> {
    let mut client = updater(dir, bootstrap(dir), t0());
    let target = client.target_info(path).expect("search").expect("found");
    let bytes = client.download_target(&target).expect("download");
    let verified =
        catalog::envelope::SignedEnvelope::from_slice(&bytes)?.verify(&catalog::manifest::Limits::default())?;
    verified.check_catalog_entry(&target)
}

#[test]
fn envelope_must_match_its_catalog_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    let mut repo = keys.create(t0());
    repo.add_publisher("alice", &keys.publisher.did(), &["hello-web", "second"], &keys.targets, t0())
        .expect("publisher");
    let other = catalog::keys::SigningKey::from_seed([21; 32]);
    // The right manifest at the right path verifies; the example manifest is version 0.1.0.
    repo.add_publisher_target(
        "alice",
        "apps/hello-web/0.1.0.json",
        TestApp::new("hello-web").envelope(&keys.publisher),
        "manifest",
        &keys.publisher,
        t0(),
    )
    .expect("add");
    // Alice places another app's manifest under her app's path…
    repo.add_publisher_target(
        "alice",
        "apps/hello-web/9.9.9.json",
        TestApp::new("not-hello").envelope(&keys.publisher),
        "manifest",
        &keys.publisher,
        t0(),
    )
    .expect("add");
    // …and a manifest signed by someone else.
    repo.add_publisher_target(
        "alice",
        "apps/second/0.1.0.json",
        TestApp::new("second").envelope(&other),
        "manifest",
        &keys.publisher,
        t0(),
    )
    .expect("add");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir.path()).expect("write");

    verify_entry(dir.path(), "apps/hello-web/0.1.0.json").expect("bound correctly");
    let err = verify_entry(dir.path(), "apps/hello-web/9.9.9.json").expect_err("wrong app");
    assert!(
        matches!(&err, catalog::envelope::EnvelopeError::WrongPath { expected, .. } if expected == "apps/not-hello/0.1.0.json"),
        "{err}"
    );
    assert!(err.to_string().contains("the path for this manifest is `apps/not-hello/0.1.0.json`"), "{err}");
    let err = verify_entry(dir.path(), "apps/second/0.1.0.json").expect_err("wrong publisher");
    assert!(matches!(&err, catalog::envelope::EnvelopeError::WrongRoleKey { role, .. } if role == "alice"), "{err}");
    assert!(err.to_string().contains("not signed by the manifest's publisher key"), "{err}");
}

#[test]
fn an_app_id_belongs_to_one_publisher() {
    let keys = TestKeys::fixed();
    let mut repo = keys.create(t0());
    repo.add_publisher("alice", &keys.publisher.did(), &["hello-web"], &keys.targets, t0()).expect("alice");
    let bob = catalog::keys::SigningKey::from_seed([22; 32]);
    let err = repo.add_publisher("bob", &bob.did(), &["hello-web"], &keys.targets, t0()).expect_err("refused");
    assert!(err.to_string().contains("already delegated to publisher `alice`"), "{err}");
}
