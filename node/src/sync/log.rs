//! The origin's transparency log, as a node checks it (docs/protocol.md, "The transparency log").
//!
//! When the trusted root names a log (`custom.archy.log`, see `catalog::tlog`), a round takes a
//! new timestamp only with the origin's proof that its bytes are a leaf of a checkpoint the log
//! key signed, consistent with the newest checkpoint this node has seen
//! ([`catalog::tlog::advance`]: RFC 9162 §2.1.3 inclusion and §2.1.4 consistency). That
//! checkpoint is kept in `<data>/log/checkpoint`, written before the round's generation and only
//! ever for a larger tree, so a restart keeps it and nothing moves it backwards.
//!
//! Two checkpoints that can't both be true (the same size with different roots, or no valid
//! consistency proof between them) prove a split view: both signed notes go to
//! `<data>/evidence/split-view-<size>-<root>.json` and `<data>/log/split-view.json`, and every new
//! catalog is refused until the operator runs `archy-node trust-origin-again`.

use std::path::PathBuf;

use catalog::tlog::{AdvanceError, Hash, LogProof, NoteKey, SignedCheckpoint};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::data_dir::DataDir;
use crate::sync::RefusalKind;

/// The largest proof answer read (a checkpoint with cosignatures and two proofs of at most
/// `catalog::tlog::MAX_PROOF` hashes each).
pub const MAX_PROOF_BYTES: u64 = 32 * 1024;

/// A proof that the origin showed two inconsistent histories.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SplitView {
    /// The log's verifier key (C2SP signed-note `<name>+<id>+<key>`).
    pub log: String,
    /// The checkpoint this node had (signed note).
    pub known: String,
    /// The checkpoint that contradicts it (signed note).
    pub shown: String,
    /// Which check failed.
    pub why: String,
    /// Where the contradicting checkpoint came from (`origin`, `peer <id>`).
    pub from: String,
    /// When it was seen.
    pub seen_at: DateTime<Utc>,
}

fn checkpoint_path(data: &DataDir) -> PathBuf {
    data.log_dir().join("checkpoint")
}

fn split_view_path(data: &DataDir) -> PathBuf {
    data.log_dir().join("split-view.json")
}

/// The newest checkpoint of `log` this node has verified, if any. One that no longer verifies
/// with `log` (the root named another log) does not count.
pub fn known(data: &DataDir, log: &NoteKey) -> Option<SignedCheckpoint> {
    let bytes = std::fs::read(checkpoint_path(data)).ok()?;
    SignedCheckpoint::open(&bytes, log).ok()
}

/// The proof of a split view this node holds, if any: while it does, the origin is refused.
pub fn split_view(data: &DataDir) -> Option<SplitView> {
    let bytes = std::fs::read(split_view_path(data)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Keeps `checkpoint` if its tree is larger than the kept one's; for the same tree, takes in its
/// cosignatures by node witnesses and by `witnesses` that verify (none is ever lost). A smaller
/// or other tree changes nothing.
pub(crate) fn keep(
    data: &DataDir,
    log: &NoteKey,
    checkpoint: &SignedCheckpoint,
    witnesses: &[NoteKey],
) -> anyhow::Result<()> {
    let write = match known(data, log) {
        None => checkpoint.clone(),
        Some(kept) if checkpoint.checkpoint().size > kept.checkpoint().size => checkpoint.clone(),
        Some(mut kept) if kept.checkpoint() == checkpoint.checkpoint() => {
            let mut keys: Vec<NoteKey> = checkpoint
                .note()
                .signatures
                .iter()
                .filter_map(|s| crate::sync::witness::node_witness(&s.name))
                .collect();
            keys.extend_from_slice(witnesses);
            if kept.merge_cosignatures(checkpoint.note(), &keys) == 0 {
                return Ok(());
            }
            kept
        }
        Some(_) => return Ok(()),
    };
    std::fs::create_dir_all(data.log_dir())?;
    catalog::repo::write_atomic(&checkpoint_path(data), write.to_text().as_bytes())?;
    Ok(())
}

/// Records a proven split view: the evidence file and the marker that refuses the origin.
pub(crate) fn record(data: &DataDir, log: &NoteKey, view: &SplitView) -> anyhow::Result<PathBuf> {
    let shown = SignedCheckpoint::open(view.shown.as_bytes(), log).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = data.evidence_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!(
        "split-view-{}-{}.json",
        shown.checkpoint().size,
        &hex::encode(shown.checkpoint().root)[..16]
    ));
    let bytes = serde_json::to_vec_pretty(view)?;
    catalog::repo::write_atomic(&path, &bytes)?;
    std::fs::create_dir_all(data.log_dir())?;
    if !split_view_path(data).exists() {
        catalog::repo::write_atomic(&split_view_path(data), &bytes)?;
    }
    tracing::error!(evidence = %path.display(), "split view: the origin's log signed two inconsistent checkpoints; new catalogs are refused until `archy-node trust-origin-again`");
    Ok(path)
}

/// Why a round's timestamp was not taken: the rule and a sentence for people.
pub(crate) type LogRefusal = (RefusalKind, String);

/// Checks that `timestamp` (its bytes) is in the log, in a checkpoint consistent with the one
/// kept, asking `prove` (leaf hash, the kept tree size) for the proof. Keeps the new checkpoint;
/// records a split view when the log contradicts itself. `evidence` receives the evidence files
/// written.
pub(crate) fn check(
    data: &DataDir,
    log: &NoteKey,
    timestamp: &[u8],
    source: &str,
    prove: &mut dyn FnMut(&Hash, u64) -> Result<LogProof, String>,
    evidence: &mut Vec<PathBuf>,
) -> Result<(), LogRefusal> {
    if let Some(view) = split_view(data) {
        return Err((RefusalKind::SplitView, refused_while(&view)));
    }
    let kept = known(data, log);
    let leaf = catalog::tlog::leaf_hash(timestamp);
    let from = kept.as_ref().map_or(0, |k| k.checkpoint().size);
    let proof = prove(&leaf, from)
        .map_err(|e| (RefusalKind::Log, format!("no proof that the timestamp is in the log `{}`: {e}", log.name())))?;
    match catalog::tlog::advance(log, kept.as_ref(), &leaf, &proof) {
        Ok(checkpoint) => keep(data, log, &checkpoint, &[])
            .map_err(|e| (RefusalKind::Other, format!("keeping the log checkpoint: {e:#}"))),
        Err(AdvanceError::Invalid(e)) => Err((RefusalKind::Log, format!("the log `{}`'s proof: {e}", log.name()))),
        Err(e @ AdvanceError::Behind { .. }) => Err((RefusalKind::Rollback, format!("the log `{}`: {e}", log.name()))),
        Err(AdvanceError::Inconsistent { known, shown, why }) => {
            let view = SplitView {
                log: log.to_vkey(),
                known: known.to_text(),
                shown: shown.to_text(),
                why,
                from: source.to_owned(),
                seen_at: Utc::now(),
            };
            match record(data, log, &view) {
                Ok(path) => evidence.push(path),
                Err(e) => tracing::error!("writing the split-view evidence: {e:#}"),
            }
            Err((RefusalKind::SplitView, refused_while(&view)))
        }
    }
}

pub(crate) fn refused_while(view: &SplitView) -> String {
    format!(
        "the origin's log showed a split view ({}, seen {}); new catalogs are refused until `archy-node trust-origin-again`",
        view.why,
        view.seen_at.format("%Y-%m-%d %H:%M UTC")
    )
}

/// The operator's decision to trust the origin again after a split view: the proof is moved to
/// the evidence folder's history and the kept checkpoint forgotten, so the next round starts the
/// log afresh from the origin's answer. Returns the proof that was held.
pub fn trust_again(data: &DataDir) -> anyhow::Result<Option<SplitView>> {
    let Some(view) = split_view(data) else { return Ok(None) };
    std::fs::remove_file(split_view_path(data))?;
    match std::fs::remove_file(checkpoint_path(data)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::File::open(data.log_dir())?.sync_all()?;
    Ok(Some(view))
}
