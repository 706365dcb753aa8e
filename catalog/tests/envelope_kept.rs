//! A verified manifest keeps the envelope it was verified from, byte for byte, so a node can
//! store it and verify it again later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use catalog::envelope::SignedEnvelope;
use catalog::manifest::Limits;
use catalog::testing::{TestApp, key};

#[test]
fn stored_envelope_verifies_again_to_the_same_manifest() {
    let bytes = TestApp::new("notes").envelope(&key(3));
    let verified = SignedEnvelope::from_slice(&bytes).unwrap().verify(&Limits::default()).unwrap();
    assert_eq!(verified.envelope().to_bytes(), bytes);
    let again =
        SignedEnvelope::from_slice(&verified.envelope().to_bytes()).unwrap().verify(&Limits::default()).unwrap();
    assert_eq!(again.manifest(), verified.manifest());
    assert_eq!(again.manifest_hash(), verified.manifest_hash());
}
