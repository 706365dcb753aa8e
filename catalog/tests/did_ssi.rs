//! archy's did:key encoding agrees with ssi, the DID library the design names: ssi resolves the
//! DIDs archy derives to a DID document whose Ed25519 verification method carries the same key.

use catalog::keys::SigningKey;
use ssi_dids_core::{DID, DIDResolver as _};

#[test]
fn ssi_resolves_archy_did_keys_to_the_same_ed25519_key() {
    for seed in [[1u8; 32], [200u8; 32], [7u8; 32]] {
        let key = SigningKey::from_seed(seed);
        let did = key.did().to_string();
        let output = pollster::block_on(did_method_key::DIDKey.resolve(DID::new(did.as_bytes()).expect("DID syntax")))
            .expect("ssi resolves the did:key");
        let doc = serde_json::to_value(output.document.into_document()).expect("document JSON");
        assert_eq!(doc["id"], did);
        let methods = doc["verificationMethod"].as_array().expect("verification methods");
        let multibase = did.strip_prefix("did:key:").expect("prefix");
        let method = methods.iter().find(|m| m["controller"] == did).expect("method controlled by the DID");
        assert_eq!(method["type"], "Multikey");
        assert_eq!(method["publicKeyMultibase"], multibase, "ssi decodes the same key bytes");
        // And ssi's key-to-DID direction gives archy's DID back.
        let parsed: catalog::DidKey = did.parse().expect("archy parses");
        assert_eq!(parsed.public_key_bytes(), key.verifying_key().to_bytes());
    }
}
