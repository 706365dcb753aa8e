//! The TUF update workflow against repositories written by archy's repository code.

mod common;

use catalog::client::UpdateError;
use catalog::metadata::MetadataError;
use chrono::TimeDelta;
use common::*;

#[test]
fn fresh_client_finds_and_downloads_a_delegated_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new();
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
    let keys = TestKeys::new();
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
    let keys = TestKeys::new();
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
    let keys = TestKeys::new();
    repo_with_target(dir.path(), &keys, b"x");
    let later = t0() + TimeDelta::days(2);
    let mut client = updater(dir.path(), bootstrap(dir.path()), later);
    assert!(matches!(client.refresh(), Err(UpdateError::Expired { ref role, .. }) if role == "timestamp"));
}

#[test]
fn root_rotation_chain_is_followed_and_timestamp_key_rotation_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new();
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
    let keys = TestKeys::new();
    let mut repo = repo_with_target(dir.path(), &keys, b"x");
    let attacker = catalog::keys::SigningKey::from_seed([66; 32]);
    // `rotate` itself refuses to produce a root the old keys did not sign.
    let err = repo.rotate("root", &[attacker.public_key()], 1, &[&attacker], t0()).expect_err("refused");
    assert!(matches!(
        err,
        catalog::repo::RepoError::Metadata(MetadataError::ThresholdNotMet { ref role, .. }) if role == "root"
    ));
}
