//! The transparency log's costs (`scripts/bench-transparency.sh`; release build):
//!
//! 1. **Log data per sync round.** A 10,000-app catalog (50 publishers x 200 apps) keeping a log;
//!    one publisher releases one app version. Printed: the bytes a node's incremental round
//!    fetches (new timestamp, snapshot, the changed role, the envelope), and the log proof
//!    (`log-proof.<leaf>.<from>.json`) and new leaf (`log-leaves.<from>.1.json`) it fetches with
//!    them, each over a full catalog download.
//! 2. **The origin per checkpoint, and per proof**, for logs of 1,000 to 1,000,000 catalog states:
//!    the CPU time to take in one more timestamp (leaf hash, tree root from the cached subtrees,
//!    Ed25519 signature of the checkpoint), to answer one node's proof (inclusion and
//!    consistency), and the proof's bytes; and the first read of a log by a process (hashing
//!    every leaf into the subtree cache: what a one-shot `archy repo` command pays).
#![allow(clippy::unwrap_used)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use catalog::tlog::{Checkpoint, LogProof, Subtrees, Tree, leaf_hash};

fn main() {
    // 1. One incremental round of a 10,000-app catalog.
    let dir = tempfile::tempdir().unwrap();
    let (mut repo, (full_metadata, full_envelopes)) = archy_bench::build_origin_with(dir.path(), 50, 200, true);
    let full = full_metadata + full_envelopes;
    let served = dir.path().join("repository");
    let before = repo.metadata_files();
    let from = catalog::repo::log_leaves(&served).unwrap().len() as u64;
    let publisher = archy_bench::key(9, 7);
    let (path, envelope) = archy_bench::envelope("app-7-3", &publisher, "0.2.0");
    let now = chrono::Utc::now();
    repo.add_publisher_targets("publisher-7", vec![(path, envelope.clone(), "manifest".into())], &publisher, now)
        .unwrap();
    repo.snapshot_and_timestamp(&archy_bench::key(3, 0), &archy_bench::key(4, 0), now).unwrap();
    let after = repo.metadata_files();
    let metadata: u64 =
        after.iter().filter(|(name, bytes)| before.get(*name) != Some(bytes)).map(|(_, b)| b.len() as u64).sum();
    repo.set_log_key(archy_bench::key(6, 0));
    repo.write_dir(&served).unwrap();
    let timestamp = std::fs::read(served.join("metadata/timestamp.json")).unwrap();
    let proof = catalog::repo::log_proof(&served, &leaf_hash(&timestamp), from).unwrap().unwrap();
    let leaves_answer = catalog::repo::log_answer(&served, &catalog::repo::log_leaves_name(from, 1)).unwrap().unwrap();
    let log_bytes = serde_json::to_vec(&proof).unwrap().len() as u64 + leaves_answer.len() as u64;
    let round = metadata + envelope.len() as u64;
    let pct = |n: u64| n as f64 * 100.0 / full as f64;
    println!("full catalog download (10,000 apps): {full} bytes");
    println!(
        "incremental round (one new version): {round} bytes ({:.3} %), log proof and new leaf {log_bytes} bytes ({:.4} %), together {:.3} %",
        pct(round),
        pct(log_bytes),
        pct(round + log_bytes)
    );

    // 2. The origin's CPU per checkpoint and per proof, by log size.
    let key = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let mut leaves: Vec<_> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let start = Instant::now();
        let mut subtrees = Subtrees::default();
        subtrees.extend(&leaves);
        let first_read = start.elapsed();
        let start = Instant::now();
        let reps = 200;
        for r in 0..reps {
            leaves.push(leaf_hash(format!("timestamp {r}").as_bytes()));
            subtrees.extend(&leaves);
            let root = Tree::cached(&leaves, &subtrees).root();
            let cp = Checkpoint { origin: "bench/log".into(), size: leaves.len() as u64, root };
            std::hint::black_box(cp.sign(&key).unwrap());
        }
        let per_checkpoint = start.elapsed() / reps as u32;
        let tree = Tree::cached(&leaves, &subtrees);
        let note = Checkpoint { origin: "bench/log".into(), size: leaves.len() as u64, root: tree.root() }
            .sign(&key)
            .unwrap()
            .to_text();
        // A node one catalog state behind asks about the newest timestamp.
        let last = *leaves.last().unwrap();
        let start = Instant::now();
        let proof = LogProof::of(tree, note, &last, leaves.len() as u64 - 1).unwrap();
        let per_proof = start.elapsed();
        println!(
            "log of {n:>9} states: checkpoint {:>7.3} ms CPU, proof answer {:>7.3} ms CPU, {} bytes; first read {:>8.1} ms",
            per_checkpoint.as_secs_f64() * 1e3,
            per_proof.as_secs_f64() * 1e3,
            serde_json::to_vec(&proof).unwrap().len(),
            first_read.as_secs_f64() * 1e3
        );
    }
}
