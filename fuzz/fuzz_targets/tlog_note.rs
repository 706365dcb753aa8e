//! What a stranger on the swarm topic (or a hostile origin) sends the transparency log's
//! witnesses: bytes taken as a signed checkpoint (`catalog::tlog::SignedCheckpoint::open`), and
//! a proof answer (`catalog::tlog::LogProof`) taken by `catalog::tlog::advance`.
//!
//! - Never a panic, and the bounds hold: a note over `MAX_NOTE` bytes or with more than
//!   `MAX_SIGNATURES` lines is refused, a tree over `MAX_TREE_SIZE` is refused.
//! - Nothing opens without the log key's signature: the fixed key signed none of these bytes
//!   unless they are its own checkpoint, so an opened note is that checkpoint.
//! - A proof answer never moves a node to a checkpoint that is not the signed one it carries.
//! - A leaves answer (`catalog::repo::LogLeaves`, what a node copies the log from) yields whole
//!   32-byte hashes or an error.
#![no_main]

use catalog::tlog::{Checkpoint, LogProof, MAX_NOTE, MAX_SIGNATURES, MAX_TREE_SIZE, Note, NoteKey, SignedCheckpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let log = NoteKey::log("fuzz/log", key.verifying_key()).expect("key");
    if let Ok(note) = Note::parse(data) {
        assert!(data.len() <= MAX_NOTE && note.signatures.len() <= MAX_SIGNATURES);
        if let Ok(cp) = Checkpoint::parse_text(&note.text) {
            assert!(cp.size <= MAX_TREE_SIZE);
        }
    }
    // Only the key's own checkpoints open, whatever the bytes.
    if let Ok(opened) = SignedCheckpoint::open(data, &log) {
        let resigned = opened.checkpoint().sign(&key).expect("sign").to_text();
        assert_eq!(opened.note().text, Note::parse(resigned.as_bytes()).expect("parses").text);
    }
    // As a proof answer about a fixed leaf, from a kept checkpoint of 3 leaves.
    if let Ok(proof) = serde_json::from_slice::<LogProof>(data) {
        let leaves: Vec<_> = (0..3u8).map(|i| catalog::tlog::leaf_hash(&[i])).collect();
        let kept = Checkpoint { origin: "fuzz/log".into(), size: 3, root: catalog::tlog::root(&leaves) }.sign(&key).expect("sign");
        let kept = SignedCheckpoint::open(kept.to_text().as_bytes(), &log).expect("opens");
        if let Ok(next) = catalog::tlog::advance(&log, Some(&kept), &leaves[2], &proof) {
            assert_eq!(next.to_text(), SignedCheckpoint::open(proof.checkpoint.as_bytes(), &log).expect("opens").to_text());
            assert!(next.checkpoint().size >= 3);
        }
    }
    if let Ok(answer) = serde_json::from_slice::<catalog::repo::LogLeaves>(data)
        && let Ok(hashes) = answer.hashes()
    {
        assert!(hashes.len() * 32 <= answer.leaves.len());
    }
});
