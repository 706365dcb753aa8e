//! The origin's transparency log, as a node checks it (docs/protocol.md, "The transparency log").
//!
//! When the trusted root names a log (`custom.archy.log`, see `catalog::tlog`), a round takes a
//! new timestamp only with the origin's proof that its bytes are a leaf of a checkpoint the log
//! key signed, consistent with the newest checkpoint this node has seen
//! ([`catalog::tlog::advance`]: RFC 9162 §2.1.3 inclusion and §2.1.4 consistency). That
//! checkpoint is kept in `<data>/log/checkpoint`, written before the round's generation and only
//! ever for a larger tree (under `<data>/log/lock`), so a restart keeps it and nothing moves it
//! backwards. A larger checkpoint the log signed that gossip brought (`<data>/log/pending`) must
//! be proven part of the history the origin shows before the node moves on.
//!
//! Two checkpoints that can't both be true (the same size with different roots, or no valid
//! consistency proof between them) prove a split view: both signed notes go to
//! `<data>/evidence/split-view-<size>-<root>.json` and `<data>/log/split-view.json`, and every new
//! catalog is refused until the operator runs `archy-node trust-origin-again`.

use std::path::PathBuf;

use catalog::tlog::{AdvanceError, Consistency, LogProof, NoteKey, SignedCheckpoint};
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
    /// The consistency proof that shows the larger tree does not begin with the smaller one
    /// (none for two trees of one size).
    #[serde(default)]
    pub proof: Option<Consistency>,
}

/// The first bytes of a split-view proof gossiped on the swarm topic (then its JSON).
pub const SPLIT_VIEW_GOSSIP: &[u8] = b"archy-split-view\n";

impl SplitView {
    /// The proof as gossiped: [`SPLIT_VIEW_GOSSIP`], then the JSON.
    pub fn to_gossip(&self) -> Vec<u8> {
        let mut out = SPLIT_VIEW_GOSSIP.to_vec();
        out.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// Checks the proof on its own (anyone with the root can): both checkpoints are signed by
    /// `log`, and they can't both be true: one size with two roots, or a consistency proof that
    /// leads to the larger one's signed root and shows it begins with another tree than the
    /// smaller one. Returns why they contradict each other.
    pub fn verify(&self, log: &NoteKey) -> Result<String, String> {
        let known = SignedCheckpoint::open(self.known.as_bytes(), log).map_err(|e| format!("known: {e}"))?;
        let shown = SignedCheckpoint::open(self.shown.as_bytes(), log).map_err(|e| format!("shown: {e}"))?;
        let (a, b) = (known.checkpoint(), shown.checkpoint());
        let (old, new) = if a.size <= b.size { (a, b) } else { (b, a) };
        if old.size == new.size {
            return if old.root != new.root {
                Ok(format!("two checkpoints of {} leaves with different roots", old.size))
            } else {
                Err("the same checkpoint twice".into())
            };
        }
        let proof = self.proof.as_ref().ok_or("checkpoints of two sizes and no consistency proof")?;
        match proof.compare(old, new) {
            Ok(Some(why)) => Ok(why),
            Ok(None) => Err("the smaller checkpoint is part of the larger one".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn checkpoint_path(data: &DataDir) -> PathBuf {
    data.log_dir().join("checkpoint")
}

fn split_view_path(data: &DataDir) -> PathBuf {
    data.log_dir().join("split-view.json")
}

fn pending_path(data: &DataDir) -> PathBuf {
    data.log_dir().join("pending")
}

/// The node's copy of the log's leaf hashes (32 bytes each, as the origin keeps them).
fn leaves_path(data: &DataDir) -> PathBuf {
    data.log_dir().join("leaves")
}

/// The largest log a node copies (32 MiB of leaf hashes).
const MAX_COPIED_LEAVES: u64 = 1 << 20;

/// Brings the node's copy of the log's leaves (`<data>/log/leaves`) up to `checkpoint`, asking
/// `ask` for the leaves it lacks ([`catalog::repo::log_leaves_name`]), so that the node answers
/// the log's proofs for its peers as the origin does (`crate::catalog::GenerationMeta`).
///
/// The copy held is kept when it is the tree of `before` (the checkpoint kept before this step),
/// or when the candidate proves it is a prefix of `checkpoint` (`log-consistency.<held>.<size>`,
/// RFC 9162 §2.1.4: a copy a failed step left behind); anything else starts again. New leaves are
/// appended only once the copy with them hashes to the root the log signed (RFC 6962 §2.1), so
/// the copy only ever holds a tree the log signed, and a candidate that lies costs its own
/// answers, never the copy. Best effort: a round never fails for it.
fn copy_leaves(
    data: &DataDir,
    before: Option<&catalog::tlog::Checkpoint>,
    checkpoint: &SignedCheckpoint,
    ask: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<(), String> {
    use std::io::Write as _;
    let signed = checkpoint.checkpoint();
    let size = signed.size;
    if size > MAX_COPIED_LEAVES {
        return Err(format!("the log has {size} leaves; a node copies at most {MAX_COPIED_LEAVES}"));
    }
    let tree = |data: &DataDir| catalog::repo::log_tree(data.root()).map_err(|e| e.to_string());
    let (held, held_root) = tree(data)?;
    let held_is_before = before.is_some_and(|b| b.size == held && b.root == held_root);
    let mut proven_prefix = || {
        let old = catalog::tlog::Checkpoint { origin: signed.origin.clone(), size: held, root: held_root };
        ask(&catalog::repo::log_consistency_name(held, size))
            .ok()
            .and_then(|b| serde_json::from_slice::<Consistency>(&b).ok())
            .is_some_and(|proof| matches!(proof.compare(&old, signed), Ok(None)))
    };
    let held = if held > 0 && held <= size && (held_is_before || proven_prefix()) { held } else { 0 };
    let mut new = Vec::new();
    while held + (new.len() as u64) < size {
        let start = held + new.len() as u64;
        let count = (size - start).min(catalog::repo::MAX_LEAVES_PER_ANSWER);
        let bytes = ask(&catalog::repo::log_leaves_name(start, count))?;
        let answer: catalog::repo::LogLeaves = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let got = answer.hashes()?;
        if answer.start != start || got.len() as u64 != count {
            return Err(format!("asked for {count} leaves from {start}, got {} from {}", got.len(), answer.start));
        }
        new.extend(got);
    }
    let _lock = lock(data).map_err(|e| format!("{e:#}"))?;
    let path = leaves_path(data);
    if held == 0 {
        // A copy started again is a new file, and this process forgets what it read of the old.
        let _ = std::fs::remove_file(&path);
        catalog::repo::forget_log(data.root());
    } else if tree(data)? != (held, held_root) {
        return Err("the copy changed meanwhile (`trust-origin-again`?)".into());
    }
    let with_new = catalog::repo::log_tree_with(data.root(), &new).map_err(|e| e.to_string())?;
    if with_new != (size, signed.root) {
        return Err(format!("leaves {held}..{size} do not hash to the signed root; they were not kept"));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes: Vec<u8> = new.iter().flatten().copied().collect();
    // A record torn by a crash is cut to what was read.
    file.set_len(held * 32)
        .and_then(|()| file.write_all(&bytes))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Holds `<data>/log/lock` (every change to the files of `<data>/log/` takes it: the round, the
/// witness, `trust-origin-again`).
fn lock(data: &DataDir) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data.log_dir())?;
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(data.log_dir().join("lock"))?;
    file.lock()?;
    Ok(file)
}

/// A checkpoint the log signed, seen on gossip, larger than the kept one, whose consistency the
/// origin has not proven yet: the next step along the log must prove it ([`check`]).
pub fn pending(data: &DataDir, log: &NoteKey) -> Option<SignedCheckpoint> {
    SignedCheckpoint::open(&std::fs::read(pending_path(data)).ok()?, log).ok()
}

/// Keeps `checkpoint` as pending, if it is larger than the pending one.
pub(crate) fn set_pending(data: &DataDir, log: &NoteKey, checkpoint: &SignedCheckpoint) -> anyhow::Result<()> {
    let _lock = lock(data)?;
    if pending(data, log).is_none_or(|p| checkpoint.checkpoint().size > p.checkpoint().size) {
        catalog::repo::write_atomic(&pending_path(data), checkpoint.to_text().as_bytes())?;
    }
    Ok(())
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

/// Keeps `checkpoint` if its tree is larger than the kept one's (and, with `may_start`, when none
/// is kept); for the same tree, takes in its cosignatures by `witnesses` that verify (none is ever
/// lost). A smaller or other tree changes nothing.
pub(crate) fn keep(
    data: &DataDir,
    log: &NoteKey,
    checkpoint: &SignedCheckpoint,
    witnesses: &[NoteKey],
    may_start: bool,
) -> anyhow::Result<()> {
    let _lock = lock(data)?;
    let write = match known(data, log) {
        None if may_start => checkpoint.clone(),
        None => return Ok(()),
        Some(kept) if checkpoint.checkpoint().size > kept.checkpoint().size => checkpoint.clone(),
        Some(mut kept) if kept.checkpoint() == checkpoint.checkpoint() => {
            if kept.merge_cosignatures(checkpoint.note(), witnesses) == 0 {
                return Ok(());
            }
            kept
        }
        Some(_) => return Ok(()),
    };
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
    let _lock = lock(data)?;
    if !split_view_path(data).exists() {
        catalog::repo::write_atomic(&split_view_path(data), &bytes)?;
    }
    tracing::error!(evidence = %path.display(), "split view: the origin's log signed two inconsistent checkpoints; new catalogs are refused until `archy-node trust-origin-again`");
    Ok(path)
}

/// Why a round's timestamp was not taken: the rule and a sentence for people.
pub(crate) type LogRefusal = (RefusalKind, String);

/// Checks that `timestamp` (its bytes) is in the log, in a checkpoint consistent with the one
/// kept and with a larger checkpoint seen on gossip ([`pending`]), asking `ask` for metadata by
/// name (the proofs). Keeps the new checkpoint; records a split view when the log contradicts
/// itself. `evidence` receives the evidence files written.
pub(crate) fn check(
    data: &DataDir,
    log: &NoteKey,
    timestamp: &[u8],
    source: &str,
    ask: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    evidence: &mut Vec<PathBuf>,
) -> Result<(), LogRefusal> {
    if let Some(view) = split_view(data) {
        return Err((RefusalKind::SplitView, refused_while(&view)));
    }
    let kept = known(data, log);
    if kept.is_none() && checkpoint_path(data).exists() {
        return Err((
            RefusalKind::Other,
            format!(
                "{} does not verify with the log key the root names; move it away to start the log afresh",
                checkpoint_path(data).display()
            ),
        ));
    }
    let leaf = catalog::tlog::leaf_hash(timestamp);
    let from = kept.as_ref().map_or(0, |k| k.checkpoint().size);
    let no_proof =
        |e: String| (RefusalKind::Log, format!("no proof that the timestamp is in the log `{}`: {e}", log.name()));
    let bytes = ask(&catalog::repo::log_proof_name(&leaf, from)).map_err(no_proof)?;
    let proof: LogProof = serde_json::from_slice(&bytes).map_err(|e| no_proof(format!("not a log proof: {e}")))?;
    let split = |known: SignedCheckpoint,
                 shown: SignedCheckpoint,
                 why: String,
                 proof: Option<Consistency>,
                 evidence: &mut Vec<PathBuf>| {
        let view = SplitView {
            log: log.to_vkey(),
            known: known.to_text(),
            shown: shown.to_text(),
            why,
            from: source.to_owned(),
            seen_at: Utc::now(),
            proof,
        };
        match record(data, log, &view) {
            Ok(path) => evidence.push(path),
            Err(e) => tracing::error!("writing the split-view evidence: {e:#}"),
        }
        (RefusalKind::SplitView, refused_while(&view))
    };
    let checkpoint = match catalog::tlog::advance(log, kept.as_ref(), &leaf, &proof) {
        Ok(checkpoint) => checkpoint,
        Err(AdvanceError::Invalid(e)) => {
            return Err((RefusalKind::Log, format!("the log `{}`'s proof: {e}", log.name())));
        }
        Err(e @ AdvanceError::Behind { .. }) => {
            return Err((RefusalKind::Rollback, format!("the log `{}`: {e}", log.name())));
        }
        Err(AdvanceError::Inconsistent { known, shown, why, proof }) => {
            return Err(split(*known, *shown, why, proof, evidence));
        }
    };
    // A larger checkpoint seen on gossip must be part of this history too.
    if let Some(seen) = pending(data, log) {
        let (p, c) = (seen.checkpoint().clone(), checkpoint.checkpoint().clone());
        if p.size > c.size {
            return Err((
                RefusalKind::Log,
                format!(
                    "the log `{}` signed a tree of {} leaves (seen on gossip) but shows this node {}",
                    log.name(),
                    p.size,
                    c.size
                ),
            ));
        }
        let answer = ask(&catalog::repo::log_consistency_name(p.size, c.size))
            .and_then(|b| serde_json::from_slice::<Consistency>(&b).map_err(|e| e.to_string()));
        match answer.map(|proof| (proof.compare(&p, &c), proof)) {
            Ok((Ok(None), _)) => {
                let _lock = lock(data).map_err(|e| (RefusalKind::Other, format!("{e:#}")))?;
                let _ = std::fs::remove_file(pending_path(data));
            }
            Ok((Ok(Some(why)), proof)) => return Err(split(seen, checkpoint, why, Some(proof), evidence)),
            Ok((Err(e), _)) => {
                return Err((
                    RefusalKind::Log,
                    format!("the log `{}`'s proof from a checkpoint seen on gossip: {e}", log.name()),
                ));
            }
            Err(e) => {
                return Err((
                    RefusalKind::Log,
                    format!(
                        "no proof that the log `{}` of {} leaves (seen on gossip) is part of its tree of {}: {e}",
                        log.name(),
                        p.size,
                        c.size
                    ),
                ));
            }
        }
    }
    keep(data, log, &checkpoint, &[], true)
        .map_err(|e| (RefusalKind::Other, format!("keeping the log checkpoint: {e:#}")))?;
    if let Err(e) = copy_leaves(data, kept.as_ref().map(SignedCheckpoint::checkpoint), &checkpoint, ask) {
        tracing::info!("copying the log `{}`'s leaves from {source}: {e}", log.name());
    }
    Ok(())
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
    let _lock = lock(data)?;
    std::fs::remove_file(split_view_path(data))?;
    for path in [checkpoint_path(data), pending_path(data), leaves_path(data)] {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::File::open(data.log_dir())?.sync_all()?;
    Ok(Some(view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::tlog::{Checkpoint, Hash, leaf_hash, root};

    #[test]
    fn a_copy_of_the_leaves_grows_only_by_leaves_that_hash_to_the_signed_root() {
        let origin = tempfile::tempdir().expect("tempdir");
        let node = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(node.path());
        let log_key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let log = NoteKey::log("test/log", log_key.verifying_key()).expect("key");
        let all: Vec<Hash> = (0..1300).map(|i: u32| leaf_hash(&i.to_be_bytes())).collect();
        let sign = |leaves: &[Hash]| {
            let note = Checkpoint { origin: "test/log".into(), size: leaves.len() as u64, root: root(leaves) }
                .sign(&log_key)
                .expect("sign");
            SignedCheckpoint::open(note.to_text().as_bytes(), &log).expect("opens")
        };
        // The origin's folder, as `catalog::repo` keeps it.
        std::fs::create_dir_all(origin.path().join("log")).expect("dir");
        std::fs::write(origin.path().join("log/leaves"), all.iter().flatten().copied().collect::<Vec<u8>>())
            .expect("leaves");
        std::fs::write(origin.path().join("log/checkpoint"), sign(&all).to_text()).expect("checkpoint");
        let asked = std::cell::Cell::new(0);
        let mut honest = |name: &str| {
            asked.set(asked.get() + 1);
            let answer = catalog::repo::log_answer(origin.path(), name).expect("answer").ok_or("not found")?;
            // Every answer fits the bound a node reads proofs with.
            assert!(answer.len() as u64 <= MAX_PROOF_BYTES, "{name}: {} bytes", answer.len());
            Ok(answer)
        };
        let first = sign(&all[..600]);
        copy_leaves(&data, None, &first, &mut honest).expect("copy");
        assert_eq!(catalog::repo::log_tree(node.path()).expect("tree"), (600, root(&all[..600])));
        assert_eq!(asked.get(), 2, "600 leaves in answers of at most 512");

        // A candidate that sends other leaves gets nothing kept, and the copy stays as it was.
        let next = sign(&all);
        let mut liar = |name: &str| {
            let (start, count) = catalog::repo::parse_log_leaves_name(name).ok_or("not leaves")?;
            let fake: Vec<u8> = (0..count).flat_map(|i| leaf_hash(&(start + i).to_le_bytes())).collect();
            use base64::Engine as _;
            let leaves = base64::engine::general_purpose::STANDARD.encode(fake);
            Ok(serde_json::to_vec(&catalog::repo::LogLeaves { start, leaves }).expect("json"))
        };
        let refused = copy_leaves(&data, Some(first.checkpoint()), &next, &mut liar).expect_err("lies are not kept");
        assert!(refused.contains("do not hash to the signed root"), "{refused}");
        assert_eq!(catalog::repo::log_tree(node.path()).expect("tree"), (600, root(&all[..600])));

        // The next round starts from the checkpoint the failed step kept (`next`): the copy is
        // behind it, and the honest candidate proves it a prefix instead of sending it all again.
        // Its leaves extend the copy to the origin's, byte for byte, and the node then answers
        // proofs as the origin does.
        std::fs::write(node.path().join("log/checkpoint"), next.to_text()).expect("kept");
        asked.set(0);
        copy_leaves(&data, Some(next.checkpoint()), &next, &mut honest).expect("copy");
        assert_eq!(asked.get(), 3, "a consistency proof and 700 leaves in answers of at most 512");
        assert_eq!(
            std::fs::read(node.path().join("log/leaves")).expect("copy"),
            std::fs::read(origin.path().join("log/leaves")).expect("origin")
        );
        let name = catalog::repo::log_proof_name(&all[700], 600);
        assert_eq!(
            catalog::repo::log_answer(node.path(), &name).expect("answer"),
            catalog::repo::log_answer(origin.path(), &name).expect("answer")
        );

        // A copy that is neither the tree kept before nor proven a prefix starts again.
        std::fs::write(node.path().join("log/leaves"), all[..5].iter().rev().flatten().copied().collect::<Vec<u8>>())
            .expect("a bad copy");
        catalog::repo::forget_log(node.path());
        copy_leaves(&data, Some(first.checkpoint()), &next, &mut honest).expect("copy");
        assert_eq!(catalog::repo::log_tree(node.path()).expect("tree"), (1300, root(&all)));
    }
}
