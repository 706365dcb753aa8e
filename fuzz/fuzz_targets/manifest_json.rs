//! Manifest validation from its JSON form (what a verified envelope carries) on arbitrary JSON.
//! The envelope target rarely gets past the signature check, so this target covers the part of
//! `SignedEnvelope::verify` that runs after it. A manifest that validates must round-trip through
//! `to_json_value` unchanged.
#![no_main]

use catalog::manifest::{Limits, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let limits = Limits::default();
    let Ok(manifest) = Manifest::from_json_value(value, &limits) else { return };
    let json = manifest.to_json_value();
    let back = match Manifest::from_json_value(json.clone(), &limits) {
        Ok(back) => back,
        Err(e) => panic!("JSON form of a valid manifest is refused: {e}\nJSON: {json}"),
    };
    assert_eq!(manifest, back, "manifest changed in the JSON round trip\nJSON: {json}");
    assert_eq!(json, back.to_json_value(), "JSON form is not stable");
});
