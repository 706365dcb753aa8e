//! Property tests: changing any single byte of signed data or of a signature never yields
//! accepted data with a different meaning.
//!
//! A changed byte may leave a file's meaning intact (for example whitespace in the JSON file,
//! which canonical encoding ignores); the property is that whatever still verifies has exactly
//! the signed canonical bytes it had before.

use catalog::envelope::SignedEnvelope;
use catalog::keys::SigningKey;
use catalog::manifest::Limits;
use catalog::metadata::{MetaFile, SignedMetadata, Timestamp};
use catalog::testing::{TestApp, key};
use chrono::TimeZone as _;
use proptest::prelude::*;

fn timestamp_file() -> (Vec<u8>, SigningKey) {
    let key = key(42);
    let meta = MetaFile { version: 7, length: Some(1234), hashes: None, unknown: Default::default() };
    let ts = Timestamp {
        kind: "timestamp".into(),
        spec_version: catalog::metadata::SPEC_VERSION.into(),
        version: 7,
        expires: chrono::Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("date"),
        meta: [("snapshot.json".to_owned(), meta)].into_iter().collect(),
        unknown: Default::default(),
    };
    (SignedMetadata::sign(ts, &[&key]).expect("sign").to_bytes(), key)
}

fn envelope_file() -> Vec<u8> {
    TestApp::new("prop-app").envelope(&key(43))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tampered_metadata_never_verifies_with_other_content(pos in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let (file, key) = timestamp_file();
        let original = SignedMetadata::<Timestamp>::from_slice(&file, "timestamp").expect("parse");
        let mut tampered = file.clone();
        let i = pos.index(tampered.len());
        tampered[i] ^= mask;
        if let Ok(md) = SignedMetadata::<Timestamp>::from_slice(&tampered, "timestamp") {
            let keys = [(key.key_id(), key.public_key())].into_iter().collect();
            if md.verify_role("timestamp", &keys, &[key.key_id()], 1).is_ok() {
                prop_assert_eq!(md.signed_bytes(), original.signed_bytes());
            }
        }
    }

    #[test]
    fn tampered_signed_bytes_or_signature_are_rejected(pos in any::<prop::sample::Index>(), mask in 1u8..=255, in_sig in any::<bool>()) {
        let (file, key) = timestamp_file();
        let md = SignedMetadata::<Timestamp>::from_slice(&file, "timestamp").expect("parse");
        let verifier = key.public_key().verifier().expect("verifier");
        let mut message = md.signed_bytes().to_vec();
        let mut sig = hex::decode(&md.signatures[0].sig).expect("hex");
        if in_sig {
            let i = pos.index(sig.len());
            sig[i] ^= mask;
        } else {
            let i = pos.index(message.len());
            message[i] ^= mask;
        }
        prop_assert!(verifier.verify(&message, &sig).is_err());
    }

    #[test]
    fn tampered_envelope_never_verifies_with_other_content(pos in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let file = envelope_file();
        let original = SignedEnvelope::from_slice(&file).and_then(|e| e.verify(&Limits::default())).expect("verify");
        let mut tampered = file.clone();
        let i = pos.index(tampered.len());
        tampered[i] ^= mask;
        if let Ok(verified) = SignedEnvelope::from_slice(&tampered).and_then(|e| e.verify(&Limits::default())) {
            prop_assert_eq!(verified.manifest_hash(), original.manifest_hash());
            prop_assert_eq!(verified.manifest(), original.manifest());
        }
    }
}

#[test]
fn unmodified_files_verify() {
    let (file, key) = timestamp_file();
    let md = SignedMetadata::<Timestamp>::from_slice(&file, "timestamp").expect("parse");
    let keys = [(key.key_id(), key.public_key())].into_iter().collect();
    md.verify_role("timestamp", &keys, &[key.key_id()], 1).expect("verifies");
    SignedEnvelope::from_slice(&envelope_file()).and_then(|e| e.verify(&Limits::default())).expect("verifies");
}
