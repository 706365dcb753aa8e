//! Envelope parsing and verification (signature, canonical bytes, manifest validation) on
//! arbitrary bytes: errors are fine, panics are not.
#![no_main]

use catalog::envelope::SignedEnvelope;
use catalog::manifest::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = SignedEnvelope::from_slice(data) else { return };
    let _ = envelope.claimed_did();
    let _ = envelope.to_bytes();
    let _ = envelope.verify(&Limits::default());
});
