//! `POST /v1/submissions` as a stranger sends it, through the registry's real router
//! (`archy_fuzz::origin::submission`): the input is a flags byte, the `Content-Type` value up
//! to the first `\n`, then the body (`archy_fuzz::origin::Input`; the flags choose the chunk
//! size the body streams in and whether the `metadata` part is signed again by the publisher's
//! key, so changes to it reach the checks after its signature). The origin has one publisher
//! delegated (role `acme`, app `notes`); the seeds are real submissions of it.
//!
//! Every answer is a refusal (4xx, or 507 `incoming_full`) or an acceptance, never a failure
//! of the origin (500), and nothing is left in `registry/incoming/` after it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    archy_fuzz::origin::submission(data);
});
