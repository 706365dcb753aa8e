//! Every running node witnesses the origin's log (docs/protocol.md, "The transparency log";
//! decisions D40, D41).
//!
//! After each round the node cosigns the checkpoint it keeps (C2SP tlog-cosignature, with its
//! endpoint key; its witness name is `archy-node/<endpoint id>`) and gossips it on the catalog's
//! swarm topic. A gossiped checkpoint it receives is opened with the log key of its trusted root
//! and compared with the one it keeps:
//! - the same tree: the cosignatures of `[log] witnesses` that verify are merged into the kept
//!   note (other nodes' are checked, not kept);
//! - the same size with another root: a split view, proven by the two signed notes;
//! - another size: the origin is asked for the consistency proof between the two
//!   (`log-consistency.<old>.<new>.json`, with the root of the first `<old>` leaves of the larger
//!   tree): a proof that leads to the larger tree's signed root and shows it begins with another
//!   tree than the smaller checkpoint is a split view; one that shows it begins with it is
//!   remembered (with the kept checkpoint), so a replayed checkpoint costs nothing more. No proof
//!   (garbage, an error, no answer) proves nothing; a larger gossiped checkpoint is then kept as
//!   pending, and the node's next step along the log must prove it (`log::check`).
//!
//! A split view is recorded as [`super::log`] records one (the origin is refused until the
//! operator trusts it again) and its proof is gossiped (`archy-split-view` and the JSON of
//! [`SplitView`]): a node takes a gossiped proof when it proves the split on its own
//! ([`SplitView::verify`]), so every node learns it, whichever half it is in. At most `archy_net::swarm::NOTES_PER_SECOND` distinct gossiped
//! checkpoints a second are looked at.

use std::collections::VecDeque;
use std::sync::Mutex;

use catalog::client::{FetchError, Remote as _};
use catalog::metadata::{Root, SignedMetadata};
use catalog::tlog::{Consistency, NoteKey, SignedCheckpoint};

use crate::catalog::GenerationStore;
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::sync::log::{SplitView, known, record, split_view};

/// Checkpoints whose consistency with the kept one was verified, remembered (both by size and
/// root).
const REMEMBERED: usize = 64;

/// The witness name of the node with endpoint `id`.
pub fn witness_name(id: &iroh::EndpointId) -> String {
    format!("archy-node/{id}")
}

/// The cosignature key of a node witness, from its name (`archy-node/<endpoint id>`).
pub fn node_witness(name: &str) -> Option<NoteKey> {
    let id: iroh::EndpointId = name.strip_prefix("archy-node/")?.parse().ok()?;
    NoteKey::witness(name, ed25519_dalek::VerifyingKey::from_bytes(id.as_bytes()).ok()?).ok()
}

/// The witnesses whose cosignatures a node keeps: the configured ones (`[log] witnesses`). Other
/// nodes' cosignatures are checked as they come but not kept: anyone can make a node witness key,
/// and a kept note stays within its bounds.
pub fn configured(config: &Config) -> Vec<NoteKey> {
    config.log.witnesses.iter().filter_map(|v| NoteKey::from_vkey(v).ok()).collect()
}

/// The log the trusted root names, if any.
pub fn trusted_log(data: &DataDir) -> Option<NoteKey> {
    let store = GenerationStore::load(data).ok()?;
    let root = SignedMetadata::<Root>::from_slice(store.roles.get("root")?, "root").ok()?;
    root.signed.log().ok().flatten()
}

/// Whether anything may be installed from the current catalog, as far as the log goes: not while
/// a split view is held, and not before `[log] min_witnesses` of the `[log] witnesses` have
/// cosigned the kept checkpoint. The refusal says which.
pub fn install_gate(data: &DataDir, config: &Config) -> Result<(), String> {
    if let Some(view) = split_view(data) {
        return Err(format!(
            "the origin's log showed a split view ({}); nothing is installed from its catalogs until `archy-node trust-origin-again`",
            view.why
        ));
    }
    let need = config.log.min_witnesses;
    if need == 0 {
        return Ok(());
    }
    let Some(log) = trusted_log(data) else {
        return Err(format!("[log] min_witnesses is {need}, but the catalog keeps no transparency log"));
    };
    let Some(kept) = known(data, &log) else {
        return Err(format!("[log] min_witnesses is {need}, and no log checkpoint is kept yet: run `archy-node sync`"));
    };
    let have = kept.cosigners(&configured(config)).len();
    if have < need {
        return Err(format!(
            "{have} of the {need} witnesses required ([log] min_witnesses) have cosigned the log checkpoint of {} catalog states; waiting for them",
            kept.checkpoint().size
        ));
    }
    Ok(())
}

/// This node's witness verifier key (`[log] witnesses` of other nodes), if it has an endpoint key.
pub fn own_vkey(data: &DataDir) -> Option<String> {
    if !data.iroh_key().exists() {
        return None;
    }
    let key = catalog::keyfile::read(&data.iroh_key()).ok()?;
    let name = witness_name(&iroh::SecretKey::from_bytes(&key.seed()).public());
    NoteKey::witness(&name, key.verifying_key()).ok().map(|k| k.to_vkey())
}

/// A running node's witness.
pub struct Witness {
    data: DataDir,
    key: ed25519_dalek::SigningKey,
    name: String,
    remembered: Mutex<VecDeque<(u64, catalog::tlog::Hash, u64, catalog::tlog::Hash)>>,
    /// The log the trusted root names, read again after each round ([`Witness::cosign_kept`]).
    log: Mutex<Option<NoteKey>>,
}

/// What a gossiped checkpoint led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Nothing to compare it with (no log, no kept checkpoint, or a split view held already).
    Ignored,
    /// Not a checkpoint of the trusted log; the reason.
    Invalid(String),
    /// The kept tree; this many cosignatures were new.
    Same(usize),
    /// Consistent with the kept tree.
    Consistent,
    /// The origin could not be asked; checked again when it is next gossiped.
    Unchecked(String),
    /// A split view: the evidence was written.
    SplitView,
}

impl Witness {
    /// The witness of the node whose endpoint key is `secret`.
    pub fn new(data: &DataDir, secret: &iroh::SecretKey) -> Self {
        Self {
            data: data.clone(),
            key: ed25519_dalek::SigningKey::from_bytes(&secret.to_bytes()),
            name: witness_name(&secret.public()),
            remembered: Mutex::new(VecDeque::new()),
            log: Mutex::new(trusted_log(data)),
        }
    }

    /// A witness of `log`, whatever the data folder's root says (for tests).
    #[cfg(test)]
    fn for_log(data: &DataDir, secret: &iroh::SecretKey, log: NoteKey) -> Self {
        let witness = Self::new(data, secret);
        *witness.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(log);
        witness
    }

    fn log(&self) -> Option<NoteKey> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Cosigns the kept checkpoint (once) and returns its note to gossip, if there is one.
    pub fn cosign_kept(&self) -> anyhow::Result<Option<String>> {
        let log = trusted_log(&self.data);
        *self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = log.clone();
        let Some(log) = log else { return Ok(None) };
        let Some(mut kept) = known(&self.data, &log) else { return Ok(None) };
        let me = NoteKey::witness(&self.name, self.key.verifying_key())?;
        if kept.note().cosigned_at(&me).is_none() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            kept.cosign(&self.name, &self.key, now)?;
            super::log::keep(&self.data, &log, &kept, std::slice::from_ref(&me), false)?;
        }
        // Gossiped with the log's signature and this node's only: small, and each witness
        // speaks for itself.
        Ok(Some(kept.text_signed_by(&[log.name(), &self.name])))
    }

    /// Checks a gossiped checkpoint against the kept one. `ask_origin` fetches a metadata name
    /// from the origin (blocking). Returns what it led to, and what to gossip on.
    pub fn seen(
        &self,
        note: &[u8],
        config: &Config,
        ask_origin: &mut dyn FnMut(&str) -> Result<Vec<u8>, FetchError>,
    ) -> (Seen, Vec<Vec<u8>>) {
        let Some(log) = self.log() else { return (Seen::Ignored, Vec::new()) };
        if split_view(&self.data).is_some() {
            return (Seen::Ignored, Vec::new());
        }
        // Another node's proof of a split view: taken if it proves it on its own.
        if let Some(json) = note.strip_prefix(super::log::SPLIT_VIEW_GOSSIP) {
            let Ok(mut view) = serde_json::from_slice::<SplitView>(json) else {
                return (Seen::Invalid("not a split-view proof".into()), Vec::new());
            };
            return match view.verify(&log) {
                Ok(why) => {
                    view.why = why;
                    view.from = "gossip".into();
                    view.seen_at = chrono::Utc::now();
                    if let Err(e) = record(&self.data, &log, &view) {
                        tracing::error!("writing the split-view evidence: {e:#}");
                    }
                    (Seen::SplitView, Vec::new())
                }
                Err(e) => (Seen::Invalid(format!("a split-view proof that proves nothing: {e}")), Vec::new()),
            };
        }
        let shown = match SignedCheckpoint::open(note, &log) {
            Ok(s) => s,
            Err(e) => return (Seen::Invalid(e.to_string()), Vec::new()),
        };
        let Some(mut kept) = known(&self.data, &log) else { return (Seen::Ignored, Vec::new()) };
        let (k, s) = (kept.checkpoint().clone(), shown.checkpoint().clone());
        if k == s {
            let witnesses = configured(config);
            let added = kept.merge_cosignatures(shown.note(), &witnesses);
            if added > 0
                && let Err(e) = super::log::keep(&self.data, &log, &kept, &witnesses, false)
            {
                tracing::warn!("keeping the cosigned checkpoint: {e:#}");
            }
            return (Seen::Same(added), Vec::new());
        }
        let pair = (k.size, k.root, s.size, s.root);
        if self.remembered.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&pair) {
            return (Seen::Consistent, Vec::new());
        }
        let (why, proof) = if k.size == s.size {
            (format!("two checkpoints of {} leaves with different roots", k.size), None)
        } else {
            let (old, new) = if s.size < k.size { (&s, &k) } else { (&k, &s) };
            let answer = ask_origin(&catalog::repo::log_consistency_name(old.size, new.size))
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<Consistency>(&b).map_err(|e| format!("not a consistency proof: {e}"))
                });
            match answer.map(|proof| (proof.compare(old, new).map_err(|e| e.to_string()), proof)) {
                Ok((Ok(None), _)) => {
                    let mut r = self.remembered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if r.len() == REMEMBERED {
                        r.pop_front();
                    }
                    r.push_back(pair);
                    return (Seen::Consistent, Vec::new());
                }
                Ok((Ok(Some(why)), proof)) => (why, Some(proof)),
                // No proof either way: a larger checkpoint must be proven by the next step along
                // the log (`log::check`), so the origin can stall this node but not fork it.
                Ok((Err(e), _)) | Err(e) => {
                    if s.size > k.size
                        && let Err(e) = super::log::set_pending(&self.data, &log, &shown)
                    {
                        tracing::warn!("keeping the gossiped checkpoint: {e:#}");
                    }
                    return (Seen::Unchecked(e), Vec::new());
                }
            }
        };
        let view = SplitView {
            log: log.to_vkey(),
            known: kept.to_text(),
            shown: shown.to_text(),
            why,
            from: "gossip".into(),
            seen_at: chrono::Utc::now(),
            proof,
        };
        if let Err(e) = record(&self.data, &log, &view) {
            tracing::error!("writing the split-view evidence: {e:#}");
        }
        (Seen::SplitView, vec![view.to_gossip()])
    }

    /// The proof of a split view this node holds, to gossip (every tick, like its checkpoint).
    pub fn held_proof(&self) -> Option<Vec<u8>> {
        split_view(&self.data).map(|v| v.to_gossip())
    }
}

/// Fetches metadata `name` from the origin: its HTTP URL, then its iroh endpoint (blocking).
pub(crate) fn ask_origin(
    config: &Config,
    endpoint: &iroh::Endpoint,
    handle: &tokio::runtime::Handle,
    name: &str,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    let mut last = Err(FetchError::Other("no origin configured".into()));
    if let Some(url) = &config.origin.url {
        let mut remote = crate::http::HttpRemote::new(&format!("{}/metadata", url.trim_end_matches('/')), None);
        last = remote.fetch_metadata(name, max);
        if !matches!(last, Err(FetchError::Other(_))) {
            return last;
        }
    }
    if let Some(addr) = &config.origin.iroh {
        let mut remote = super::IrohRemote {
            handle: handle.clone(),
            endpoint: endpoint.clone(),
            peer: addr.clone(),
            connection: None,
            timeout: config.provider_timeout(),
        };
        last = remote.fetch_metadata(name, max);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_witness_key_is_read_from_its_name() {
        let secret = iroh::SecretKey::from_bytes(&[5; 32]);
        let name = witness_name(&secret.public());
        let key = node_witness(&name).expect("a node witness name");
        let signing = ed25519_dalek::SigningKey::from_bytes(&secret.to_bytes());
        assert_eq!(key, NoteKey::witness(&name, signing.verifying_key()).expect("key"));
        assert!(node_witness("archy-node/not-an-id").is_none());
        assert!(node_witness("someone-else").is_none());
    }

    #[test]
    fn gossiped_checkpoints_replayed_junk_or_forked_are_judged_only_on_proof() {
        use catalog::tlog::{Checkpoint, Hash, leaf_hash, root};
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let log_key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let log = NoteKey::log("test/log", log_key.verifying_key()).expect("key");
        let sign = |leaves: &[Hash]| {
            let note = Checkpoint { origin: "test/log".into(), size: leaves.len() as u64, root: root(leaves) }
                .sign(&log_key)
                .expect("sign");
            SignedCheckpoint::open(note.to_text().as_bytes(), &log).expect("opens")
        };
        let leaves: Vec<Hash> = (0..6u8).map(|i| leaf_hash(&[i])).collect();
        super::super::log::keep(&data, &log, &sign(&leaves), &[], true).expect("keep");
        let kept_file = data.log_dir().join("checkpoint");
        let before = std::fs::read(&kept_file).expect("kept");
        let witness = Witness::for_log(&data, &iroh::SecretKey::from_bytes(&[4; 32]), log.clone());
        let config = Config::default();
        // The honest origin proves from its own leaves.
        let mut origin = |name: &str| {
            let (old, new) = catalog::repo::parse_log_consistency_name(name).expect("a consistency name");
            Ok(serde_json::to_vec(&Consistency::build(&leaves[..new as usize], old as usize)).expect("json"))
        };

        // An old checkpoint replayed: proven part of the kept tree, nothing changes.
        assert_eq!(witness.seen(sign(&leaves[..4]).to_text().as_bytes(), &config, &mut origin).0, Seen::Consistent);
        // Replayed again, with the origin down or answering junk: nothing is proven either way.
        let mut down = |_: &str| Err(FetchError::Other("down".into()));
        assert!(matches!(
            witness.seen(sign(&leaves[..3]).to_text().as_bytes(), &config, &mut down).0,
            Seen::Unchecked(_)
        ));
        let mut junk = |_: &str| {
            let junk =
                Consistency { consistency: Vec::new(), prefix: catalog::tlog::encode_hashes(&[[9; 32]]).remove(0) };
            Ok(serde_json::to_vec(&junk).expect("json"))
        };
        assert!(matches!(
            witness.seen(sign(&leaves[..2]).to_text().as_bytes(), &config, &mut junk).0,
            Seen::Unchecked(_)
        ));
        assert_eq!(std::fs::read(&kept_file).expect("kept"), before, "the kept checkpoint changed");
        assert!(split_view(&data).is_none() && super::super::log::pending(&data, &log).is_none());
        // A larger checkpoint nobody can prove yet is kept pending for the next round to prove.
        let mut more = leaves.clone();
        more.push(leaf_hash(b"later"));
        assert!(matches!(witness.seen(sign(&more).to_text().as_bytes(), &config, &mut junk).0, Seen::Unchecked(_)));
        assert_eq!(super::super::log::pending(&data, &log).map(|p| p.checkpoint().size), Some(7));
        // Not the log's signature: dropped.
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let forged = Checkpoint { origin: "test/log".into(), size: 6, root: [1; 32] }.sign(&stranger).expect("sign");
        assert!(matches!(witness.seen(forged.to_text().as_bytes(), &config, &mut origin).0, Seen::Invalid(_)));
        // A fork of the same size: a split view, whose proof verifies on its own and is gossiped.
        let mut fork = leaves.clone();
        fork[5] = leaf_hash(b"the other view");
        let (seen, gossip) = witness.seen(sign(&fork).to_text().as_bytes(), &config, &mut origin);
        assert_eq!(seen, Seen::SplitView);
        let view = split_view(&data).expect("held");
        assert!(view.verify(&log).is_ok());
        assert_eq!(gossip, vec![view.to_gossip()]);
        assert_eq!(std::fs::read(&kept_file).expect("kept"), before, "the kept checkpoint changed");
    }

    #[test]
    fn nothing_is_installed_while_a_split_view_is_held_or_before_the_witnesses_required() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let mut config = Config::default();
        assert_eq!(install_gate(&data, &config), Ok(()));
        config.log.min_witnesses = 1;
        let refused = install_gate(&data, &config).expect_err("a witness is required");
        assert!(refused.contains("no transparency log"), "{refused}");
        config.log.min_witnesses = 0;
        let view = SplitView {
            log: "l+00000000+AQ==".into(),
            known: String::new(),
            shown: String::new(),
            why: "two checkpoints of 3 leaves with different roots".into(),
            from: "gossip".into(),
            seen_at: chrono::Utc::now(),
            proof: None,
        };
        std::fs::create_dir_all(data.log_dir()).expect("dir");
        std::fs::write(data.log_dir().join("split-view.json"), serde_json::to_vec(&view).expect("json"))
            .expect("write");
        let refused = install_gate(&data, &config).expect_err("a split view is held");
        assert!(refused.contains("split view") && refused.contains("trust-origin-again"), "{refused}");
    }
}
