//! `archy.toml` parsing and validation on arbitrary UTF-8; a manifest that parses must survive
//! the round trip through its JSON form (the signed form) unchanged.
#![no_main]

use catalog::manifest::{Limits, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let limits = Limits::default();
    let Ok(manifest) = Manifest::from_toml_str(s, &limits) else { return };
    let json = manifest.to_json_value();
    let back = match Manifest::from_json_value(json.clone(), &limits) {
        Ok(back) => back,
        Err(e) => panic!("JSON form of a valid manifest is refused: {e}\nJSON: {json}"),
    };
    assert_eq!(manifest, back, "manifest changed in the JSON round trip\nJSON: {json}");
    // The JSON form must also have a canonical encoding (it is what the publisher signs).
    if let Err(e) = catalog::canonical::to_canonical(&json) {
        panic!("JSON form of a valid manifest has no canonical form: {e}\nJSON: {json}");
    }
});
