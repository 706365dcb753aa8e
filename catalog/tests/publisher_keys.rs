//! A publisher role's key over its life on the origin: rotation to a new key and revocation,
//! read back by a TUF client the way a node reads them.

use catalog::envelope::SignedEnvelope;
use catalog::keylife::{RoleKeyState, RoleState};
use catalog::manifest::Limits;
use catalog::metadata::SignedMetadata;
use catalog::repo::{RepoError, target_file};
use catalog::testing::{TestApp, TestKeys, key, t0};

use crate::util::{bootstrap, updater};

/// The envelope at `path`, verified and checked against its catalog entry, with the role that
/// lists it; `Ok(None)` when the catalog does not offer the path.
fn resolve(
    dir: &std::path::Path,
    store: catalog::client::local::MemoryStore,
    path: &str,
) -> Result<Option<String>, String> {
    let mut client = updater(dir, store, t0());
    client.refresh().map_err(|e| e.to_string())?;
    let Some(target) = client.target_info(path).map_err(|e| e.to_string())? else { return Ok(None) };
    let bytes = client.download_target(&target).map_err(|e| e.to_string())?;
    let verified =
        SignedEnvelope::from_slice(&bytes).and_then(|e| e.verify(&Limits::default())).map_err(|e| e.to_string())?;
    verified.check_catalog_entry(&target).map_err(|e| e.to_string())?;
    Ok(Some(target.role().to_owned()))
}

#[test]
fn a_rotated_publisher_keeps_its_versions_and_publishes_only_with_the_new_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    let (old, new) = (&keys.publisher, key(30));
    let mut repo = keys.create(t0());
    repo.add_publisher("alice", &old.did(), &["hello-web"], &keys.targets, t0()).expect("alice");
    let v1 = "apps/hello-web/0.1.0.json";
    repo.add_publisher_target("alice", v1, TestApp::new("hello-web").envelope(old), "manifest", old, t0())
        .expect("published with the old key");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir.path()).expect("write");
    // A node that trusted the catalog before the rotation.
    let mut before = updater(dir.path(), bootstrap(dir.path()), t0());
    before.refresh().expect("refresh");
    let node_store = before.store().clone();

    let successor = repo.rotate_publisher("alice", &new.did(), None, false, &keys.targets, t0()).expect("rotate");
    assert_eq!(successor, "alice-2");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir.path()).expect("write");
    let state = RoleKeyState::of(repo.publisher_role("alice").expect("alice")).expect("state recorded");
    assert_eq!((state.state, state.successor.as_deref()), (RoleState::Retired, Some("alice-2")));

    // The old key is refused for any new version of its role…
    let v2 = "apps/hello-web/0.2.0.json";
    let old_v2 = TestApp::new("hello-web").version("0.2.0").envelope(old);
    let err = repo
        .add_publisher_target("alice", v2, old_v2.clone(), "manifest", old, t0())
        .expect_err("the old key may not publish");
    assert!(matches!(err, RepoError::Retired { .. }), "{err}");
    assert!(err.to_string().contains("publish with the key of role `alice-2`"), "{err}");
    // …and for the new role, which only the new key signs (TUF 1.0 §5.6.3).
    let err = repo.add_publisher_target("alice-2", v2, old_v2, "manifest", old, t0()).expect_err("wrong key");
    assert!(err.to_string().contains("threshold"), "{err}");

    // The new key publishes the next version; an old path stays the old role's.
    let new_v2 = TestApp::new("hello-web").version("0.2.0").envelope(&new);
    repo.add_publisher_target("alice-2", v2, new_v2, "manifest", &new, t0()).expect("new key publishes");
    let shadowed = [(v1.to_owned(), target_file(b"other bytes", "manifest"))];
    let next = repo.next_publisher_targets("alice-2", shadowed, t0()).expect("next");
    let md = SignedMetadata::sign(next, &[&new]).expect("sign");
    let err = repo.accept_publisher_targets("alice-2", md).expect_err("an old version is not the new role's");
    assert!(err.to_string().contains("already published by publisher role `alice`"), "{err}");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir.path()).expect("write");

    // Both versions install, each verified against the key that published it; the node that
    // trusted the old catalog moves forward without a rollback error.
    for store in [bootstrap(dir.path()), node_store.clone()] {
        assert_eq!(resolve(dir.path(), store.clone(), v1), Ok(Some("alice".into())));
        assert_eq!(resolve(dir.path(), store, v2), Ok(Some("alice-2".into())));
    }

    // Revoking the new role with --yank takes its versions out; the retired role's stay.
    repo.revoke_publisher("alice-2", true, &keys.targets, t0()).expect("revoke");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir.path()).expect("write");
    assert_eq!(resolve(dir.path(), node_store.clone(), v2), Ok(None), "yanked");
    assert_eq!(resolve(dir.path(), node_store, v1), Ok(Some("alice".into())));
    let err = repo.revoke_publisher("alice-2", true, &keys.targets, t0()).expect_err("twice");
    assert!(err.to_string().contains("already revoked"), "{err}");
}

#[test]
fn a_revoked_publisher_without_yank_stays_listed_and_publishes_nothing_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::fixed();
    let mut repo = keys.create(t0());
    repo.add_publisher("alice", &keys.publisher.did(), &["hello-web"], &keys.targets, t0()).expect("alice");
    let v1 = "apps/hello-web/0.1.0.json";
    let envelope = TestApp::new("hello-web").envelope(&keys.publisher);
    repo.add_publisher_target("alice", v1, envelope, "manifest", &keys.publisher, t0()).expect("add");
    repo.revoke_publisher("alice", false, &keys.targets, t0()).expect("revoke");
    keys.publish(&mut repo, t0());
    repo.write_dir(dir.path()).expect("write");
    let state = RoleKeyState::of(repo.publisher_role("alice").expect("alice")).expect("state");
    assert_eq!((state.state, state.yanked), (RoleState::Revoked, false));
    assert_eq!(resolve(dir.path(), bootstrap(dir.path()), v1), Ok(Some("alice".into())));
    let v2 = TestApp::new("hello-web").version("0.2.0").envelope(&keys.publisher);
    let err = repo
        .add_publisher_target("alice", "apps/hello-web/0.2.0.json", v2, "manifest", &keys.publisher, t0())
        .expect_err("revoked");
    assert!(err.to_string().contains("publisher role `alice` is revoked"), "{err}");
    let err = repo.add_publisher("alice", &keys.publisher.did(), &["other"], &keys.targets, t0()).expect_err("frozen");
    assert!(matches!(err, RepoError::Retired { .. }), "{err}");
    // A revoked key's DID is not given a role again.
    let err = repo.rotate_publisher("alice", &key(31).did(), None, false, &keys.targets, t0()).expect_err("not live");
    assert!(matches!(err, RepoError::Retired { .. }), "{err}");
}

#[test]
fn a_successor_may_not_reuse_a_yanked_predecessors_path_with_other_bytes() {
    let keys = TestKeys::fixed();
    let (old, new) = (&keys.publisher, key(32));
    let mut repo = keys.create(t0());
    repo.add_publisher("alice", &old.did(), &["hello-web"], &keys.targets, t0()).expect("alice");
    let v1 = "apps/hello-web/0.1.0.json";
    repo.add_publisher_target("alice", v1, TestApp::new("hello-web").envelope(old), "manifest", old, t0()).expect("v1");
    repo.rotate_publisher("alice", &new.did(), None, true, &keys.targets, t0()).expect("rotate");
    repo.revoke_publisher("alice", true, &keys.targets, t0()).expect("yank");
    // The yanked role resolves nothing now, but its path keeps its bytes.
    let err = repo
        .add_publisher_target("alice-2", v1, TestApp::new("hello-web").envelope(&new), "manifest", &new, t0())
        .expect_err("same path, other bytes");
    assert!(err.to_string().contains("is already published with other content"), "{err}");
}
