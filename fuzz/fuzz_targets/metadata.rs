//! TUF metadata parsing on arbitrary bytes, as each of the four top-level types; a document that
//! parses is then checked against the keys it carries itself (root keys for every top-level
//! role, delegation keys for every delegated role). Errors are fine, panics are not.
#![no_main]

use std::collections::BTreeMap;

use catalog::keys::{KeyId, PublicKey};
use catalog::metadata::{DelegationIndex, Role, Root, SignedMetadata, Snapshot, Targets, Timestamp};
use libfuzzer_sys::fuzz_target;

/// The key ids of the document's own signatures, for roles that carry no keys of their own.
fn signature_keyids<T: Role>(md: &SignedMetadata<T>) -> Vec<KeyId> {
    md.signatures.iter().map(|s| s.keyid.clone()).collect()
}

/// Common checks for every type: signed bytes, re-serialization, expiry, and a verification
/// against an empty key set (nothing may count) using the signatures' own key ids.
fn common<T: Role>(md: &SignedMetadata<T>) {
    let _ = md.signed_bytes();
    let _ = md.to_bytes();
    let _ = md.signed.is_expired(chrono::DateTime::UNIX_EPOCH);
    let keyids = signature_keyids(md);
    let none: BTreeMap<KeyId, PublicKey> = BTreeMap::new();
    assert!(md.verify_role(T::TYPE, &none, &keyids, 1).is_err(), "a signature counted without a key");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(md) = SignedMetadata::<Root>::from_slice(data, "root") {
        common(&md);
        for (name, role) in &md.signed.roles {
            let _ = md.verify_role(name, &md.signed.keys, &role.keyids, role.threshold);
        }
        for name in ["root", "timestamp", "snapshot", "targets"] {
            assert!(md.signed.role(name).is_some(), "validated root lacks role {name}");
        }
    }
    if let Ok(md) = SignedMetadata::<Timestamp>::from_slice(data, "timestamp") {
        common(&md);
        let _ = md.signed.snapshot_meta();
    }
    if let Ok(md) = SignedMetadata::<Snapshot>::from_slice(data, "snapshot") {
        common(&md);
    }
    if let Ok(md) = SignedMetadata::<Targets>::from_slice(data, "targets") {
        common(&md);
        for target in md.signed.targets.values() {
            let _ = target.blake3();
            let _ = target.verify_bytes(data);
        }
        if let Some(delegations) = &md.signed.delegations {
            let keys = md.signed.delegation_keys().expect("delegations have keys");
            let mut names: Vec<String> =
                delegations.roles.iter().flatten().map(|r| r.name.clone()).collect();
            // A few paths, each from the document itself, to exercise the pattern matcher and
            // the prefix index (which must never change the answer).
            let mut paths: Vec<&str> = md.signed.targets.keys().map(String::as_str).take(8).collect();
            paths.extend(names.iter().map(String::as_str).take(8));
            paths.extend(["", "a", "apps/hello-web/archy.json", "a/b/c"]);
            let index = DelegationIndex::new(delegations);
            let mut found = Vec::new();
            for path in paths {
                let plain = delegations.roles_for_target(path);
                let indexed = delegations.roles_for_target_indexed(&index, path);
                assert_eq!(plain, indexed, "delegation index changed the roles for {path:?}");
                found.extend(plain.into_iter().map(|(name, _)| name));
            }
            names.extend(found);
            for name in &names {
                if let Some((keyids, threshold)) = delegations.role_keys(name) {
                    let _ = md.verify_role(name, keys, &keyids, threshold);
                }
            }
        }
    }
});
