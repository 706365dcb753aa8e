//! A publisher key over its whole life: succession and revocation statements, the rules that
//! turn a set of them into each DID's standing, and the key state the origin records in a
//! delegation.
//!
//! A publisher is a `did:key`, which cannot change. Two statements, signed by DID keys and valid
//! wherever they travel (files, Nostr events), say what became of one:
//!
//! - a **succession** `old → new`, signed by *both* keys: the publisher moved to a new key and its
//!   apps continue under it. The new key's signature keeps anyone from naming a stranger's DID as
//!   their successor (and so taking over its standing);
//! - a **revocation** of `did`, signed by that key alone, optionally naming a successor: the key is
//!   lost or stolen, nothing it signs is trusted any more. It is meant to be prepared in advance
//!   and kept offline, for the day the key is gone.
//!
//! Each statement signs its own domain prefix ([`SUCCESSION_PREFIX`], [`REVOCATION_PREFIX`]) so a
//! statement signature is never valid as an envelope, TUF, minisign or Nostr-binding signature
//! made with the same key, nor as the other statement.
//!
//! [`Lineage`] applies the rules (docs/nostr.md, "Key succession and revocation"):
//!
//! 1. **A revocation always wins.** A revoked DID is refused, whatever successions it signed before
//!    or after; there is no "un-revoke" (a thief holding the key can rotate it, but never undo the
//!    owner's revocation).
//! 2. **A succession from a revoked key is ignored**, and so is every key that holds its standing
//!    only through one: the thief's successor, and its successors, are refused too.
//! 3. **A revocation may name the successor** (the owner's backup key, chosen when the revocation
//!    was prepared): that DID continues the revoked key's apps, and a succession to it from the
//!    revoked key does not taint it. The successor is followed only when every revocation of the
//!    key names it: one naming another key, or none, means none is followed.
//! 4. **A key with two different successors follows neither** (only the key's owner and a thief
//!    both hold it; the owner settles it by revoking).
//! 5. **A key that moved on publishes nothing more**: after a succession, new releases come from
//!    the successor only (whoever else still holds the old key speaks for nobody).
//! 6. Chains are followed at most [`MAX_CHAIN`] steps (a longer one is refused); a node holds at
//!    most [`MAX_PER_KEY`] statements of each kind per key; statements are a set, so replaying an
//!    old one changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DidKey;
use crate::keys::SigningKey;

/// Domain prefix of a succession signature.
pub const SUCCESSION_PREFIX: &str = "archy-key-succession-v1\n";
/// Domain prefix of a revocation signature.
pub const REVOCATION_PREFIX: &str = "archy-key-revocation-v1\n";
/// Largest statement file accepted before parsing.
pub const MAX_STATEMENT_BYTES: usize = 4096;
/// Longest `reason` of a revocation.
pub const MAX_REASON_BYTES: usize = 256;
/// Longest succession chain followed.
pub const MAX_CHAIN: usize = 16;

/// Why a statement was refused. Each names the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Not a statement file.
    #[error("malformed key statement: {0}")]
    Malformed(String),
    /// A signature does not verify.
    #[error("{statement} is not signed by {did} (the {which} key must sign it)")]
    BadSignature {
        /// `succession` or `revocation`.
        statement: &'static str,
        /// The DID whose signature fails.
        did: String,
        /// `old`, `new` or `revoked`.
        which: &'static str,
    },
    /// More statements about one key than a node holds ([`MAX_PER_KEY`]).
    #[error("too many key statements: {0}")]
    TooMany(String),
    /// A succession from a key to itself, or a revocation naming itself as successor.
    #[error("a key cannot succeed itself ({0})")]
    SelfSuccession(String),
}

/// `old → new`: the publisher moved to a new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Succession {
    /// The key the publisher leaves.
    pub old: DidKey,
    /// The key it moves to.
    pub new: DidKey,
    /// When it was made (informative: clocks are claims; the rules never depend on it).
    #[serde(with = "crate::metadata::expires_format")]
    pub created: DateTime<Utc>,
    /// Ed25519 signature by `old` over [`Succession::message`], hex.
    pub sig_old: String,
    /// Ed25519 signature by `new` over the same message, hex.
    pub sig_new: String,
}

/// `did` is revoked, optionally naming its successor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The revoked key.
    pub did: DidKey,
    /// The key that continues its apps, if the owner chose one when preparing this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<DidKey>,
    /// When it was made (informative).
    #[serde(with = "crate::metadata::expires_format")]
    pub created: DateTime<Utc>,
    /// Why (printable text, at most [`MAX_REASON_BYTES`]).
    #[serde(default)]
    pub reason: String,
    /// Ed25519 signature by `did` over [`Revocation::message`], hex.
    pub sig: String,
}

/// A signed statement about a publisher key, as stored in a file or a Nostr event's content:
/// `{"archy_key_statement":1,"type":"succession"|"revocation",…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Statement {
    /// See [`Succession`].
    Succession(Succession),
    /// See [`Revocation`].
    Revocation(Revocation),
}

fn created_text(t: &DateTime<Utc>) -> String {
    crate::metadata::expires_format::format(t)
}

fn sign_hex(key: &SigningKey, message: &[u8]) -> String {
    hex::encode(key.sign(message))
}

fn verify_hex(did: &DidKey, message: &[u8], sig: &str) -> bool {
    let Some(bytes) = hex::decode(sig).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()) else { return false };
    did.verifying_key().verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
}

impl Succession {
    /// The signed message: prefix, then `old`, `new` and `created` one per line.
    pub fn message(old: &DidKey, new: &DidKey, created: &DateTime<Utc>) -> Vec<u8> {
        format!("{SUCCESSION_PREFIX}{old}\n{new}\n{}\n", created_text(created)).into_bytes()
    }

    /// Signs a succession with both keys.
    pub fn sign(old: &SigningKey, new: &SigningKey, created: DateTime<Utc>) -> Result<Self, StatementError> {
        let created = DateTime::from_timestamp(created.timestamp(), 0).unwrap_or(created);
        if old.did() == new.did() {
            return Err(StatementError::SelfSuccession(old.did().to_string()));
        }
        let message = Self::message(&old.did(), &new.did(), &created);
        Ok(Self {
            old: old.did(),
            new: new.did(),
            created,
            sig_old: sign_hex(old, &message),
            sig_new: sign_hex(new, &message),
        })
    }

    /// Checks both signatures.
    pub fn verify(&self) -> Result<(), StatementError> {
        if self.old == self.new {
            return Err(StatementError::SelfSuccession(self.old.to_string()));
        }
        let message = Self::message(&self.old, &self.new, &self.created);
        for (did, sig, which) in [(&self.old, &self.sig_old, "old"), (&self.new, &self.sig_new, "new")] {
            if !verify_hex(did, &message, sig) {
                return Err(StatementError::BadSignature { statement: "succession", did: did.to_string(), which });
            }
        }
        Ok(())
    }
}

impl Revocation {
    /// The signed message: prefix, then `did`, the successor (or `-`), `created` and the reason,
    /// one per line.
    pub fn message(did: &DidKey, successor: Option<&DidKey>, created: &DateTime<Utc>, reason: &str) -> Vec<u8> {
        let successor = successor.map_or_else(|| "-".to_owned(), ToString::to_string);
        format!("{REVOCATION_PREFIX}{did}\n{successor}\n{}\n{reason}", created_text(created)).into_bytes()
    }

    /// Signs a revocation of `key`'s own DID.
    pub fn sign(
        key: &SigningKey,
        successor: Option<DidKey>,
        reason: &str,
        created: DateTime<Utc>,
    ) -> Result<Self, StatementError> {
        let created = DateTime::from_timestamp(created.timestamp(), 0).unwrap_or(created);
        check_reason(reason)?;
        if successor.as_ref() == Some(&key.did()) {
            return Err(StatementError::SelfSuccession(key.did().to_string()));
        }
        let message = Self::message(&key.did(), successor.as_ref(), &created, reason);
        Ok(Self { did: key.did(), successor, created, reason: reason.to_owned(), sig: sign_hex(key, &message) })
    }

    /// Checks the signature: a revocation is valid only when signed by the key it revokes, so
    /// nobody can revoke someone else's DID.
    pub fn verify(&self) -> Result<(), StatementError> {
        check_reason(&self.reason)?;
        if self.successor.as_ref() == Some(&self.did) {
            return Err(StatementError::SelfSuccession(self.did.to_string()));
        }
        let message = Self::message(&self.did, self.successor.as_ref(), &self.created, &self.reason);
        if !verify_hex(&self.did, &message, &self.sig) {
            return Err(StatementError::BadSignature {
                statement: "revocation",
                did: self.did.to_string(),
                which: "revoked",
            });
        }
        Ok(())
    }
}

fn check_reason(reason: &str) -> Result<(), StatementError> {
    if reason.len() > MAX_REASON_BYTES || reason.chars().any(char::is_control) {
        return Err(StatementError::Malformed(format!(
            "a revocation reason is printable text of at most {MAX_REASON_BYTES} bytes"
        )));
    }
    Ok(())
}

impl Statement {
    /// Parses a statement file (structure only; call [`Statement::verify`]).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, StatementError> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(StatementError::Malformed(format!(
                "{} bytes; the limit is {MAX_STATEMENT_BYTES}",
                bytes.len()
            )));
        }
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| StatementError::Malformed(e.to_string()))?;
        let obj = value.as_object_mut().ok_or_else(|| StatementError::Malformed("not a JSON object".into()))?;
        if obj.remove("archy_key_statement").and_then(|v| v.as_u64()) != Some(1) {
            return Err(StatementError::Malformed("`archy_key_statement` is not 1".into()));
        }
        serde_json::from_value(value).map_err(|e| StatementError::Malformed(e.to_string()))
    }

    /// The statement file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("archy_key_statement".into(), 1.into());
        }
        serde_json::to_vec_pretty(&value).unwrap_or_default()
    }

    /// Checks the signatures.
    pub fn verify(&self) -> Result<(), StatementError> {
        match self {
            Self::Succession(s) => s.verify(),
            Self::Revocation(r) => r.verify(),
        }
    }

    /// The DID the statement is about (the old key of a succession, the revoked key).
    pub fn subject(&self) -> &DidKey {
        match self {
            Self::Succession(s) => &s.old,
            Self::Revocation(r) => &r.did,
        }
    }

    /// `succession` or `revocation`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Succession(_) => "succession",
            Self::Revocation(_) => "revocation",
        }
    }
}

/// What the statements a node holds say about one DID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// No statement concerns it: it stands on its own.
    Active,
    /// It moved to `by`; its apps continue under that key (its own releases stay valid).
    Succeeded {
        /// The successor.
        by: DidKey,
    },
    /// Revoked by its own key (rule 1).
    Revoked {
        /// The successor the revocation names, if one is followed (rule 3).
        successor: Option<DidKey>,
    },
    /// It holds its standing only through a succession from the revoked key `from` (rule 2).
    SuccessorOfRevoked {
        /// The revoked key up the chain.
        from: DidKey,
    },
    /// It signed successions to several keys; none is followed (rule 4).
    Conflicting {
        /// The successors it named.
        successors: Vec<DidKey>,
    },
    /// It descends from more successions than a node follows ([`MAX_CHAIN`]): refused.
    ChainTooLong,
}

impl Standing {
    /// Whether the key is refused: nothing it signed is installed or updated to, and installed
    /// apps it signed are flagged.
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Revoked { .. } | Self::SuccessorOfRevoked { .. } | Self::ChainTooLong)
    }

    /// The refusal, naming its rule, if the key is refused ([`Standing::is_refused`]).
    pub fn refusal(&self, did: &DidKey) -> Option<String> {
        match self {
            Self::Revoked { .. } => Some(format!("{did} is revoked by its own key (a revocation always wins)")),
            Self::SuccessorOfRevoked { from } => Some(format!(
                "{did} holds its standing only through a succession from the revoked key {from} (a succession \
                 from a revoked key is ignored)"
            )),
            Self::ChainTooLong => {
                Some(format!("{did} descends from more than {MAX_CHAIN} successions (a longer chain is not followed)"))
            }
            _ => None,
        }
    }

    /// Why new releases signed by this DID are not taken: it is refused, or it moved on — a key
    /// that named a successor publishes nothing more (its apps continue under the successor, and
    /// whoever else still holds it, such as a thief of an old key file, speaks for nobody), and
    /// neither does a key that named two (rule 4).
    pub fn release_refusal(&self, did: &DidKey) -> Option<String> {
        match self {
            Self::Succeeded { by } => Some(format!(
                "{did} moved to {by}: a key with a successor publishes nothing more (its apps continue under {by})"
            )),
            Self::Conflicting { successors } => Some(format!(
                "{did} named {} different successors: none is followed and the key publishes nothing more",
                successors.len()
            )),
            other => other.refusal(did),
        }
    }
}

/// Most statements of each kind about one key: revocations of it, successions from it, and
/// successions *to* it. Bounds what a flood of statements can cost (each DID's standing is then
/// found in a bounded number of steps) and what it can hold per key.
pub const MAX_PER_KEY: usize = 4;

/// Every verified statement a node holds, and the standing of each DID under the rules above.
#[derive(Debug, Default)]
pub struct Lineage {
    /// old → new → statement.
    successions: BTreeMap<DidKey, BTreeMap<DidKey, Succession>>,
    /// new → the old keys whose succession names it.
    predecessors: BTreeMap<DidKey, BTreeSet<DidKey>>,
    revocations: BTreeMap<DidKey, Vec<Revocation>>,
    /// Standings computed since the last change (statements only ever add, so a change clears
    /// them all).
    memo: std::sync::Mutex<std::collections::HashMap<DidKey, Standing>>,
}

impl Clone for Lineage {
    fn clone(&self) -> Self {
        Self {
            successions: self.successions.clone(),
            predecessors: self.predecessors.clone(),
            revocations: self.revocations.clone(),
            memo: std::sync::Mutex::default(),
        }
    }
}

/// A signature as lowercase hex of its decoded bytes, so `AB…` and `ab…` are one statement.
fn normal_hex(sig: &str) -> String {
    hex::decode(sig).map_or_else(|_| sig.to_owned(), hex::encode)
}

impl Lineage {
    /// An empty lineage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies and adds a statement; `Ok(false)` when it was already held (a replay).
    pub fn add(&mut self, statement: Statement) -> Result<bool, StatementError> {
        statement.verify()?;
        let too_many =
            |what: &str, did: &DidKey| StatementError::TooMany(format!("{MAX_PER_KEY} {what} {did} are already held"));
        let added = match statement {
            Statement::Succession(mut s) => {
                s.sig_old = normal_hex(&s.sig_old);
                s.sig_new = normal_hex(&s.sig_new);
                let from = self.successions.get(&s.old);
                if from.and_then(|to| to.get(&s.new)) == Some(&s) {
                    return Ok(false);
                }
                if from.is_some_and(|to| to.len() >= MAX_PER_KEY && !to.contains_key(&s.new)) {
                    return Err(too_many("successions from", &s.old));
                }
                let into = self.predecessors.get(&s.new);
                if into.is_some_and(|p| p.len() >= MAX_PER_KEY && !p.contains(&s.old)) {
                    return Err(too_many("successions to", &s.new));
                }
                self.predecessors.entry(s.new.clone()).or_default().insert(s.old.clone());
                // Two statements of one succession (signed at two times) are one succession.
                self.successions.entry(s.old.clone()).or_default().entry(s.new.clone()).or_insert(s);
                true
            }
            Statement::Revocation(mut r) => {
                r.sig = normal_hex(&r.sig);
                let held = self.revocations.entry(r.did.clone()).or_default();
                if held.contains(&r) {
                    return Ok(false);
                }
                if held.len() >= MAX_PER_KEY {
                    return Err(too_many("revocations of", &r.did));
                }
                held.push(r);
                true
            }
        };
        self.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        Ok(added)
    }

    /// How many statements are held.
    pub fn len(&self) -> usize {
        self.successions.values().map(BTreeMap::len).sum::<usize>()
            + self.revocations.values().map(Vec::len).sum::<usize>()
    }

    /// Whether no statement is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some statement names `did` (as its subject, a new key or a named successor).
    pub fn names(&self, did: &DidKey) -> bool {
        self.successions.contains_key(did)
            || self.predecessors.contains_key(did)
            || self.revocations.contains_key(did)
            || self.revocations.values().flatten().any(|r| r.successor.as_ref() == Some(did))
    }

    /// Every DID some statement names, with its standing.
    pub fn standings(&self) -> BTreeMap<DidKey, Standing> {
        let mut dids: BTreeSet<&DidKey> = self.successions.keys().chain(self.revocations.keys()).collect();
        dids.extend(self.predecessors.keys());
        dids.extend(self.revocations.values().flatten().filter_map(|r| r.successor.as_ref()));
        dids.into_iter().map(|d| (d.clone(), self.standing(d))).collect()
    }

    /// The successor the revocations of `did` name, when every one of them names the same key
    /// (rule 3). A revocation that names none counts as a different answer: whoever else holds
    /// the key could otherwise add a revocation naming their own key as the only successor.
    fn revocation_successor(&self, did: &DidKey) -> Option<&DidKey> {
        let revocations = self.revocations.get(did)?;
        let first = revocations.first()?.successor.as_ref()?;
        revocations.iter().all(|r| r.successor.as_ref() == Some(first)).then_some(first)
    }

    /// The revoked keys whose revocations name `did` as their successor.
    fn named_by(&self, did: &DidKey) -> Vec<&DidKey> {
        self.revocations.keys().filter(|r| self.revocation_successor(r) == Some(did)).collect()
    }

    /// `did`'s standing.
    pub fn standing(&self, did: &DidKey) -> Standing {
        if let Some(known) = self.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(did) {
            return known.clone();
        }
        let standing = self.compute_standing(did);
        self.memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(did.clone(), standing.clone());
        standing
    }

    fn compute_standing(&self, did: &DidKey) -> Standing {
        if self.revocations.contains_key(did) {
            return Standing::Revoked { successor: self.revocation_successor(did).cloned() };
        }
        match self.revoked_ancestor(did) {
            Ancestry::Revoked(from) => return Standing::SuccessorOfRevoked { from },
            Ancestry::TooDeep => return Standing::ChainTooLong,
            Ancestry::Clean => {}
        }
        match self.successions.get(did).map(|to| to.keys().cloned().collect::<Vec<_>>()) {
            Some(to) if to.len() == 1 => Standing::Succeeded { by: to[0].clone() },
            Some(to) if to.len() > 1 => Standing::Conflicting { successors: to },
            _ => Standing::Active,
        }
    }

    /// A revoked key from which `did` descends through successions alone (rule 2). A key named
    /// by a revocation as its successor does not descend from it: the owner chose it. A chain
    /// longer than [`MAX_CHAIN`] is refused rather than followed to its end.
    fn revoked_ancestor(&self, did: &DidKey) -> Ancestry {
        let mut frontier = vec![did];
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_CHAIN {
            let mut next = Vec::new();
            for d in frontier {
                if !seen.insert(d) {
                    continue;
                }
                for p in self.predecessors.get(d).into_iter().flatten() {
                    if self.revocations.contains_key(p) {
                        if self.revocation_successor(p) == Some(d) {
                            continue;
                        }
                        return Ancestry::Revoked(p.clone());
                    }
                    next.push(p);
                }
            }
            if next.is_empty() {
                return Ancestry::Clean;
            }
            frontier = next;
        }
        Ancestry::TooDeep
    }

    /// The key that speaks for `did`'s apps now: follow successions (and a revocation's named
    /// successor) to the end. `None` when `did` or a key on the way is refused; where the way
    /// forks (rule 4) the key before the fork speaks.
    pub fn head(&self, did: &DidKey) -> Option<DidKey> {
        let mut current = did.clone();
        for _ in 0..MAX_CHAIN {
            match self.standing(&current) {
                Standing::Active | Standing::Conflicting { .. } => return Some(current),
                Standing::Succeeded { by } => current = by,
                Standing::Revoked { successor: Some(next) } => current = next,
                Standing::Revoked { successor: None }
                | Standing::SuccessorOfRevoked { .. }
                | Standing::ChainTooLong => {
                    return None;
                }
            }
        }
        None
    }

    /// The keys whose apps `did` continues: itself and the keys that lead to it by successions
    /// or a revocation's named successor (what trust scores carry over from), at most
    /// [`MAX_CHAIN`] of them.
    pub fn lineage_of(&self, did: &DidKey) -> Vec<DidKey> {
        let mut out = vec![did.clone()];
        let mut i = 0;
        while i < out.len() && out.len() < MAX_CHAIN {
            let d = out[i].clone();
            let from_successions = self.predecessors.get(&d).into_iter().flatten();
            for p in from_successions.chain(self.named_by(&d)).cloned().collect::<Vec<_>>() {
                if out.len() >= MAX_CHAIN {
                    break;
                }
                if !out.contains(&p) && self.head(&p).as_ref() == Some(did) {
                    out.push(p);
                }
            }
            i += 1;
        }
        out
    }
}

/// What lies up a DID's succession chain.
enum Ancestry {
    Clean,
    Revoked(DidKey),
    TooDeep,
}

/// The key state the origin records in a publisher's delegation (`archy_key` in the delegated
/// role's entry of the top-level targets, signed by the targets key). A role without it is the
/// publisher's live role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeyState {
    /// `retired` (rotated away in the normal course) or `revoked` (compromised or removed).
    pub state: RoleState,
    /// The role that continues its apps (a rotation's new role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// When the origin recorded it (RFC 3339).
    pub since: String,
    /// Whether the role's versions were taken out of the catalog (its `paths` are empty).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yanked: bool,
}

/// A publisher role's key state on the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleState {
    /// The key was rotated: its published versions stay, nothing new is accepted from it.
    Retired,
    /// The key (or the publisher) was revoked: nothing new is accepted, nodes refuse to install
    /// its versions and flag installed ones.
    Revoked,
}

impl RoleKeyState {
    /// `retired`, `revoked`, or `revoked and yanked`.
    pub fn state_word(&self) -> &'static str {
        match (self.state, self.yanked) {
            (RoleState::Retired, _) => "retired",
            (RoleState::Revoked, false) => "revoked",
            (RoleState::Revoked, true) => "revoked and yanked",
        }
    }
}

/// The field of a delegated role entry holding its [`RoleKeyState`].
pub const ROLE_STATE_FIELD: &str = "archy_key";

impl RoleKeyState {
    /// The state a delegation records, if any (an unreadable record counts as revoked: the
    /// origin signed something this node does not understand about the key, so it trusts it
    /// least).
    pub fn of(role: &crate::metadata::DelegatedRole) -> Option<Self> {
        let value = role.unknown.get(ROLE_STATE_FIELD)?;
        Some(serde_json::from_value(value.clone()).unwrap_or(Self {
            state: RoleState::Revoked,
            successor: None,
            since: String::new(),
            yanked: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::t0;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed([n; 32])
    }

    fn succession(old: &SigningKey, new: &SigningKey) -> Statement {
        Statement::Succession(Succession::sign(old, new, t0()).expect("sign"))
    }

    fn revocation(key: &SigningKey, successor: Option<&SigningKey>) -> Statement {
        Statement::Revocation(Revocation::sign(key, successor.map(SigningKey::did), "lost", t0()).expect("sign"))
    }

    #[test]
    fn statements_round_trip_and_verify() {
        let (a, b) = (key(1), key(2));
        for s in [succession(&a, &b), revocation(&a, Some(&b)), revocation(&a, None)] {
            let parsed = Statement::from_slice(&s.to_bytes()).expect("parses");
            assert_eq!(parsed, s);
            parsed.verify().expect("verifies");
        }
    }

    #[test]
    fn a_succession_needs_both_signatures() {
        let (a, b, c) = (key(1), key(2), key(3));
        let Statement::Succession(mut s) = succession(&a, &b) else { unreachable!() };
        // Someone holding only `a` names `c` as the successor: `c` never signed.
        s.new = c.did();
        let err = s.verify().expect_err("new key did not sign");
        assert!(matches!(err, StatementError::BadSignature { which: "old", .. }), "{err}");
        let message = Succession::message(&a.did(), &c.did(), &s.created);
        s.sig_old = hex::encode(a.sign(&message));
        let err = s.verify().expect_err("new key did not sign");
        assert!(matches!(err, StatementError::BadSignature { which: "new", .. }), "{err}");
    }

    #[test]
    fn a_revocation_of_someone_elses_did_is_refused() {
        let (victim, attacker) = (key(1), key(2));
        let Statement::Revocation(mut r) = revocation(&attacker, None) else { unreachable!() };
        r.did = victim.did();
        let message = Revocation::message(&r.did, None, &r.created, &r.reason);
        r.sig = hex::encode(attacker.sign(&message));
        let mut lineage = Lineage::new();
        let err = lineage.add(Statement::Revocation(r)).expect_err("not signed by the victim");
        assert!(err.to_string().contains("revocation is not signed by"), "{err}");
        assert_eq!(lineage.standing(&victim.did()), Standing::Active);
    }

    #[test]
    fn signatures_are_domain_separated() {
        let (a, b) = (key(1), key(2));
        let Statement::Succession(s) = succession(&a, &b) else { unreachable!() };
        // The succession's signature by `a` is not a revocation by `a`.
        let forged =
            Revocation { did: a.did(), successor: None, created: s.created, reason: String::new(), sig: s.sig_old };
        assert!(forged.verify().is_err());
    }

    #[test]
    fn a_succession_is_followed_and_replays_change_nothing() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut lineage = Lineage::new();
        assert!(lineage.add(succession(&a, &b)).expect("add"));
        assert!(lineage.add(succession(&b, &c)).expect("add"));
        assert!(!lineage.add(succession(&a, &b)).expect("a replay is no news"));
        assert_eq!(lineage.standing(&a.did()), Standing::Succeeded { by: b.did() });
        assert_eq!(lineage.head(&a.did()), Some(c.did()));
        assert_eq!(lineage.lineage_of(&c.did()), vec![c.did(), b.did(), a.did()]);
        assert_eq!(lineage.len(), 2);
    }

    #[test]
    fn a_revocation_wins_over_the_thiefs_succession_and_its_descendants() {
        let (owner, thief1, thief2, backup) = (key(1), key(2), key(3), key(4));
        let mut lineage = Lineage::new();
        lineage.add(succession(&owner, &thief1)).expect("the thief rotates");
        lineage.add(succession(&thief1, &thief2)).expect("and again");
        assert_eq!(lineage.head(&owner.did()), Some(thief2.did()));
        lineage.add(revocation(&owner, Some(&backup))).expect("the owner's prepared revocation");
        assert!(lineage.standing(&owner.did()).is_refused());
        assert_eq!(lineage.standing(&thief1.did()), Standing::SuccessorOfRevoked { from: owner.did() });
        assert_eq!(lineage.standing(&thief2.did()), Standing::SuccessorOfRevoked { from: owner.did() });
        assert_eq!(lineage.head(&owner.did()), Some(backup.did()), "the backup named in the revocation continues");
        assert_eq!(lineage.head(&thief1.did()), None);
        assert_eq!(lineage.standing(&backup.did()), Standing::Active);
        // A succession signed after the revocation is ignored just the same.
        lineage.add(succession(&owner, &key(5))).expect("adds");
        assert_eq!(lineage.standing(&key(5).did()), Standing::SuccessorOfRevoked { from: owner.did() });
        assert!(lineage.standing(&owner.did()).is_refused());
    }

    #[test]
    fn two_successors_or_two_named_backups_are_followed_by_none() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut lineage = Lineage::new();
        lineage.add(succession(&a, &b)).expect("add");
        lineage.add(succession(&a, &c)).expect("add");
        assert!(matches!(lineage.standing(&a.did()), Standing::Conflicting { .. }));
        assert_eq!(lineage.head(&a.did()), Some(a.did()));
        lineage.add(revocation(&a, Some(&b))).expect("add");
        lineage.add(revocation(&a, Some(&c))).expect("add");
        assert_eq!(lineage.standing(&a.did()), Standing::Revoked { successor: None });
        assert_eq!(lineage.head(&a.did()), None);
    }

    #[test]
    fn a_revocation_naming_another_successor_or_none_cancels_the_named_one() {
        let (owner, backup, thief) = (key(1), key(2), key(3));
        let mut lineage = Lineage::new();
        lineage.add(revocation(&owner, None)).expect("the owner revokes");
        lineage.add(revocation(&owner, Some(&thief))).expect("the thief, holding the key, names itself");
        assert_eq!(lineage.standing(&owner.did()), Standing::Revoked { successor: None });
        assert_eq!(lineage.head(&owner.did()), None);
        assert_eq!(lineage.lineage_of(&thief.did()), vec![thief.did()], "no trust carried to the thief");
        let mut lineage = Lineage::new();
        lineage.add(revocation(&owner, Some(&backup))).expect("add");
        assert_eq!(lineage.head(&owner.did()), Some(backup.did()));
    }

    #[test]
    fn revoking_a_rotated_away_key_in_favour_of_its_successor_keeps_the_successor() {
        let (old, new) = (key(1), key(2));
        let mut lineage = Lineage::new();
        lineage.add(succession(&old, &new)).expect("add");
        assert!(lineage.standing(&old.did()).release_refusal(&old.did()).is_some(), "a retired key publishes nothing");
        assert_eq!(lineage.standing(&old.did()).refusal(&old.did()), None, "but is not refused");
        lineage.add(revocation(&old, Some(&new))).expect("add");
        assert_eq!(lineage.standing(&new.did()), Standing::Active);
        assert_eq!(lineage.head(&old.did()), Some(new.did()));
    }

    #[test]
    fn statements_per_key_are_capped_and_hex_case_is_no_new_statement() {
        let target = key(50);
        let mut lineage = Lineage::new();
        for n in 0..MAX_PER_KEY as u8 {
            lineage.add(succession(&key(60 + n), &target)).expect("within the cap");
        }
        let err = lineage.add(succession(&key(99), &target)).expect_err("over the cap");
        assert!(matches!(err, StatementError::TooMany(_)), "{err}");
        let Statement::Revocation(mut r) = revocation(&key(60), None) else { unreachable!() };
        lineage.add(Statement::Revocation(r.clone())).expect("add");
        r.sig = r.sig.to_uppercase();
        assert!(!lineage.add(Statement::Revocation(r)).expect("verifies"), "the same revocation");
    }

    #[test]
    fn a_chain_longer_than_followed_is_refused() {
        let keys: Vec<SigningKey> = (0..=MAX_CHAIN as u8 + 1).map(|n| key(100 + n)).collect();
        let mut lineage = Lineage::new();
        for pair in keys.windows(2) {
            lineage.add(succession(&pair[0], &pair[1])).expect("add");
        }
        lineage.add(revocation(&keys[0], None)).expect("add");
        let last = keys.last().expect("keys");
        assert!(lineage.standing(&last.did()).is_refused(), "{:?}", lineage.standing(&last.did()));
    }
}
