//! The origin's transparency log: an append-only Merkle tree of every catalog state it publishes,
//! with signed checkpoints that nodes check, cosign and compare.
//!
//! Everything here follows public specifications, so that an independent implementation can check
//! archy's log (`tests/interop/c2sp_verify.py` does):
//! - hashing: RFC 6962 §2.1 (a leaf is `SHA-256(0x00 || data)`, an inner node
//!   `SHA-256(0x01 || left || right)`), proofs as RFC 9162 §2.1.3 (inclusion) and §2.1.4
//!   (consistency) build and verify them;
//! - checkpoints: C2SP `tlog-checkpoint` (origin line, decimal tree size, base64 root hash),
//!   carried in a C2SP `signed-note` signed with Ed25519 (signature type `0x01`);
//! - cosignatures: C2SP `tlog-cosignature` v1 (signature type `0x04`, a timestamp under the
//!   signature).
//!
//! Parsing is bounded ([`MAX_NOTE`], [`MAX_SIGNATURES`], [`MAX_PROOF`], [`MAX_TREE_SIZE`]), so
//! garbage from a peer costs a bounded amount of work and memory.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

/// A node of the tree (SHA-256).
pub type Hash = [u8; 32];

/// The largest signed note accepted (a checkpoint with its cosignatures is well under 4 KiB).
pub const MAX_NOTE: usize = 8 * 1024;
/// The most signature lines a note may carry (the log's and its witnesses').
pub const MAX_SIGNATURES: usize = 32;
/// The most hashes in an inclusion or consistency proof (a tree of 2^40 leaves needs 80).
pub const MAX_PROOF: usize = 96;
/// The largest tree size believed (2^40 catalog states): anything larger is garbage.
pub const MAX_TREE_SIZE: u64 = 1 << 40;
/// The most extension lines a checkpoint may carry.
const MAX_EXTENSIONS: usize = 4;

/// Signature type of an Ed25519 signed-note key (C2SP signed-note, "Signatures").
const TYPE_ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 cosignature (C2SP tlog-cosignature).
const TYPE_COSIGNATURE: u8 = 0x04;

/// What is wrong with a note, checkpoint or proof.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlogError {
    /// Not a well-formed signed note or checkpoint; says which rule it breaks.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Larger than this implementation accepts.
    #[error("too large: {0}")]
    TooLarge(String),
    /// No valid signature by the named key.
    #[error("no valid signature by `{0}`")]
    Unsigned(String),
    /// A proof that does not lead to the signed root.
    #[error("{0}")]
    BadProof(String),
}

fn malformed(what: impl Into<String>) -> TlogError {
    TlogError::Malformed(what.into())
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The hash of a leaf holding `data` (RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// The hash of an inner node (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The largest power of two smaller than `n` (`n > 1`): where RFC 6962 splits a tree.
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - (n - 1).leading_zeros() - 1)
}

/// Complete subtrees of `2^CACHED_LEVEL` leaves and up are kept by [`Subtrees`].
const CACHED_LEVEL: u32 = 8;

/// The hashes of the complete, aligned subtrees of a log's tree from `2^8` leaves up (RFC 6962
/// §2.1: in an append-only log they never change once complete). With them a root or a proof
/// costs a few hundred hashes whatever the log's size, instead of one per leaf, so answering
/// proofs does not grow with the log. Memory: one hash per 128 leaves.
#[derive(Clone, Debug, Default)]
pub struct Subtrees {
    /// `levels[l]`: the subtrees of `2^(CACHED_LEVEL + l)` leaves, in order.
    levels: Vec<Vec<Hash>>,
}

impl Subtrees {
    /// Brings the cache up to `leaves`, which must begin with the leaves it was built from.
    pub fn extend(&mut self, leaves: &[Hash]) {
        let unit = 1usize << CACHED_LEVEL;
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let complete = leaves.len() / unit;
        for i in self.levels[0].len()..complete {
            let hash = Tree::new(&leaves[i * unit..(i + 1) * unit]).root();
            self.levels[0].push(hash);
        }
        let mut level = 1;
        while self.levels[level - 1].len() >= 2 {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let want = self.levels[level - 1].len() / 2;
            for i in self.levels[level].len()..want {
                let hash = node_hash(&self.levels[level - 1][2 * i], &self.levels[level - 1][2 * i + 1]);
                self.levels[level].push(hash);
            }
            level += 1;
        }
    }

    fn get(&self, start: usize, len: usize) -> Option<Hash> {
        let level = len.trailing_zeros().checked_sub(CACHED_LEVEL)?;
        self.levels.get(level as usize)?.get(start / len).copied()
    }
}

/// The tree of a log's leaf hashes, with its cached subtrees when there are some: roots and
/// proofs as RFC 6962 §2.1 defines them.
#[derive(Clone, Copy, Debug)]
pub struct Tree<'a> {
    leaves: &'a [Hash],
    subtrees: Option<&'a Subtrees>,
}

impl<'a> Tree<'a> {
    /// The tree of `leaves`, every hash computed.
    pub fn new(leaves: &'a [Hash]) -> Self {
        Self { leaves, subtrees: None }
    }

    /// The tree of `leaves` with `subtrees` built from them (or from a prefix of them).
    pub fn cached(leaves: &'a [Hash], subtrees: &'a Subtrees) -> Self {
        Self { leaves, subtrees: Some(subtrees) }
    }

    /// The tree of its first `size` leaves (at most all of them).
    pub fn prefix(self, size: usize) -> Self {
        Self { leaves: &self.leaves[..size.min(self.leaves.len())], ..self }
    }

    /// How many leaves it has.
    pub fn size(&self) -> usize {
        self.leaves.len()
    }

    /// The leaves.
    pub fn leaves(&self) -> &'a [Hash] {
        self.leaves
    }

    /// The root of this tree with `more` leaves appended, computed aside (nothing cached changes).
    pub fn root_with(&self, more: &[Hash]) -> Hash {
        let mut leaves = self.leaves.to_vec();
        leaves.extend_from_slice(more);
        let mut subtrees = self.subtrees.cloned().unwrap_or_default();
        subtrees.extend(&leaves);
        Tree::cached(&leaves, &subtrees).root()
    }

    /// MTH of leaves `a..b`. Every range the definitions below ask for is either aligned to its
    /// own power-of-two length or ends the tree, so complete ones are found in the cache.
    fn mth(&self, a: usize, b: usize) -> Hash {
        let n = b - a;
        match n {
            0 => sha256(&[]),
            1 => self.leaves[a],
            _ => {
                if n.is_power_of_two()
                    && a.is_multiple_of(n)
                    && let Some(hash) = self.subtrees.and_then(|s| s.get(a, n))
                {
                    return hash;
                }
                let k = split(n);
                node_hash(&self.mth(a, a + k), &self.mth(a + k, b))
            }
        }
    }

    /// The root (RFC 6962 §2.1 MTH; the empty tree's root is the hash of nothing).
    pub fn root(&self) -> Hash {
        self.mth(0, self.leaves.len())
    }

    /// The inclusion proof of leaf `index` (RFC 6962 §2.1.1 PATH); empty when there is no such leaf.
    pub fn inclusion_proof(&self, index: usize) -> Vec<Hash> {
        let mut out = Vec::new();
        if index < self.leaves.len() {
            self.path(index, 0, self.leaves.len(), &mut out);
        }
        out
    }

    fn path(&self, m: usize, a: usize, b: usize, out: &mut Vec<Hash>) {
        if b - a <= 1 {
            return;
        }
        let k = split(b - a);
        if m < k {
            self.path(m, a, a + k, out);
            out.push(self.mth(a + k, b));
        } else {
            self.path(m - k, a + k, b, out);
            out.push(self.mth(a, a + k));
        }
    }

    /// The consistency proof from the tree of its first `old_size` leaves to the whole tree
    /// (RFC 6962 §2.1.2 PROOF); empty when `old_size` is 0 or the whole size.
    pub fn consistency_proof(&self, old_size: usize) -> Vec<Hash> {
        let mut out = Vec::new();
        if old_size > 0 && old_size < self.leaves.len() {
            self.subproof(old_size, 0, self.leaves.len(), true, &mut out);
        }
        out
    }

    fn subproof(&self, m: usize, a: usize, b: usize, whole: bool, out: &mut Vec<Hash>) {
        let n = b - a;
        if m == n {
            if !whole {
                out.push(self.mth(a, b));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, a, a + k, whole, out);
            out.push(self.mth(a + k, b));
        } else {
            self.subproof(m - k, a + k, b, false, out);
            out.push(self.mth(a, a + k));
        }
    }
}

/// The root of the tree whose leaf hashes are `leaves` (RFC 6962 §2.1 MTH; the empty tree's root
/// is the hash of nothing).
pub fn root(leaves: &[Hash]) -> Hash {
    Tree::new(leaves).root()
}

/// The inclusion proof of leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1 PATH).
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    Tree::new(leaves).inclusion_proof(index)
}

/// The consistency proof from the tree of the first `old_size` leaves to the tree of all of
/// `leaves` (RFC 6962 §2.1.2 PROOF).
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Vec<Hash> {
    Tree::new(leaves).consistency_proof(old_size)
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), TlogError> {
    let bad = |why: &str| Err(TlogError::BadProof(format!("inclusion proof of leaf {index} in {size}: {why}")));
    if index >= size {
        return bad("the leaf is not in the tree");
    }
    if proof.len() > MAX_PROOF {
        return bad("too many hashes");
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return bad("longer than the tree is deep");
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return bad("shorter than the tree is deep");
    }
    if r != *root {
        return bad("does not lead to the signed root");
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2). An empty old tree is a prefix of
/// every tree; equal sizes need equal roots and an empty proof.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), TlogError> {
    let bad = |why: &str| Err(TlogError::BadProof(format!("consistency proof from {old_size} to {new_size}: {why}")));
    if proof.len() > MAX_PROOF {
        return bad("too many hashes");
    }
    if old_size > new_size {
        return bad("the old tree is larger");
    }
    if old_size == 0 {
        return if proof.is_empty() { Ok(()) } else { bad("an empty tree needs no proof") };
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return bad("trees of one size need no proof");
        }
        return if old_root == new_root { Ok(()) } else { bad("same size, different roots") };
    }
    let mut hashes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        hashes.push(*old_root);
    }
    hashes.extend_from_slice(proof);
    let Some((first, rest)) = hashes.split_first() else { return bad("empty") };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return bad("longer than the tree is deep");
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return bad("shorter than the tree is deep");
    }
    if fr != *old_root {
        return bad("does not lead to the old root");
    }
    if sr != *new_root {
        return bad("does not lead to the new root");
    }
    Ok(())
}

/// A signed-note verifier key: a name, a signature type and an Ed25519 public key (C2SP
/// signed-note "Verifier keys"). The log's key has type `0x01`, a witness's `0x04`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteKey {
    name: String,
    kind: u8,
    key: ed25519_dalek::VerifyingKey,
}

impl NoteKey {
    /// The log's key: it signs checkpoints.
    pub fn log(name: &str, key: ed25519_dalek::VerifyingKey) -> Result<Self, TlogError> {
        Self::new(name, TYPE_ED25519, key)
    }

    /// A witness's key: it cosigns checkpoints (C2SP tlog-cosignature).
    pub fn witness(name: &str, key: ed25519_dalek::VerifyingKey) -> Result<Self, TlogError> {
        Self::new(name, TYPE_COSIGNATURE, key)
    }

    fn new(name: &str, kind: u8, key: ed25519_dalek::VerifyingKey) -> Result<Self, TlogError> {
        check_key_name(name)?;
        Ok(Self { name: name.to_owned(), kind, key })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 public key.
    pub fn public(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }

    /// The key id: the first 4 bytes of SHA-256(name || 0x0A || type || public key).
    pub fn id(&self) -> [u8; 4] {
        let h = sha256(&[self.name.as_bytes(), b"\n", &[self.kind], self.key.as_bytes()]);
        [h[0], h[1], h[2], h[3]]
    }

    /// The verifier key string `<name>+<hex id>+<base64(type || key)>`.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.kind];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id()), B64.encode(raw))
    }

    /// Parses a verifier key string; only Ed25519 (`0x01`) and cosignature (`0x04`) keys.
    pub fn from_vkey(s: &str) -> Result<Self, TlogError> {
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("a verifier key is <name>+<hex id>+<base64 key>"));
        };
        let raw = B64.decode(key).map_err(|_| malformed("a verifier key's key is not base64"))?;
        let (kind, key) = raw.split_first().ok_or_else(|| malformed("a verifier key without a key"))?;
        if *kind != TYPE_ED25519 && *kind != TYPE_COSIGNATURE {
            return Err(malformed(format!("signature type {kind:#04x} is not Ed25519 (0x01) or a cosignature (0x04)")));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| malformed("an Ed25519 key is 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| malformed("not an Ed25519 point"))?;
        let out = Self::new(name, *kind, key)?;
        if hex::encode(out.id()) != id {
            return Err(malformed("the verifier key's id does not match its name and key"));
        }
        Ok(out)
    }
}

/// A key name: non-empty, no spaces, no `+` (C2SP signed-note).
fn check_key_name(name: &str) -> Result<(), TlogError> {
    if name.is_empty() || name.len() > 256 || name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(malformed(format!("`{name}` is not a key name (non-empty, no spaces, no `+`)")));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// Key id (4 bytes) then the signature bytes.
    pub blob: Vec<u8>,
}

/// A signed note split into its text and its signature lines (C2SP signed-note), not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The text, ending in a newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

const SIG_PREFIX: &str = "\u{2014} ";

impl Note {
    /// Parses a signed note, bounded by [`MAX_NOTE`] and [`MAX_SIGNATURES`].
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogError> {
        if bytes.len() > MAX_NOTE {
            return Err(TlogError::TooLarge(format!("a note of {} bytes (at most {MAX_NOTE})", bytes.len())));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| malformed("a note is UTF-8"))?;
        if s.chars().any(|c| c.is_control() && c != '\n') {
            return Err(malformed("a note holds no control characters but newlines"));
        }
        let split = s.rfind("\n\n").ok_or_else(|| malformed("a note has a blank line before its signatures"))?;
        let (text, sigs) = (&s[..=split], &s[split + 2..]);
        if !sigs.ends_with('\n') {
            return Err(malformed("a note ends with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(TlogError::TooLarge(format!("more than {MAX_SIGNATURES} signatures")));
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| malformed("a signature line starts with `— `"))?;
            let (name, sig) =
                rest.split_once(' ').ok_or_else(|| malformed("a signature line is `— <name> <base64>`"))?;
            check_key_name(name)?;
            let blob = B64.decode(sig).map_err(|_| malformed("a signature is base64"))?;
            if blob.len() < 5 {
                return Err(malformed("a signature is a key id and at least one byte"));
            }
            signatures.push(NoteSignature { name: name.to_owned(), blob });
        }
        if signatures.is_empty() {
            return Err(malformed("a signed note has at least one signature"));
        }
        Ok(Self { text: text.to_owned(), signatures })
    }

    /// The note as text: the text, a blank line, the signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&format!("{SIG_PREFIX}{} {}\n", s.name, B64.encode(&s.blob)));
        }
        out
    }

    /// The signature lines claiming to be by `key` (its name and id), without their key id.
    fn by<'a>(&'a self, key: &'a NoteKey) -> impl Iterator<Item = &'a [u8]> + 'a {
        let id = key.id();
        self.signatures.iter().filter(move |s| s.name == key.name && s.blob[..4] == id).map(|s| &s.blob[4..])
    }

    /// Checks that `key` (type `0x01`) signed the text.
    pub fn verify(&self, key: &NoteKey) -> Result<(), TlogError> {
        let ok = key.kind == TYPE_ED25519
            && self.by(key).any(|sig| {
                <[u8; 64]>::try_from(sig).is_ok_and(|s| {
                    key.key.verify_strict(self.text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&s)).is_ok()
                })
            });
        if ok { Ok(()) } else { Err(TlogError::Unsigned(key.name.clone())) }
    }

    /// The time (seconds since the epoch) at which witness `key` (type `0x04`) cosigned this
    /// checkpoint, if it did (C2SP tlog-cosignature).
    pub fn cosigned_at(&self, key: &NoteKey) -> Option<u64> {
        if key.kind != TYPE_COSIGNATURE {
            return None;
        }
        self.by(key).find_map(|blob| {
            let blob: &[u8; 72] = blob.try_into().ok()?;
            let time = u64::from_be_bytes(blob[..8].try_into().ok()?);
            let sig = ed25519_dalek::Signature::from_bytes(blob[8..].try_into().ok()?);
            key.key.verify_strict(&cosigned_message(&self.text, time), &sig).ok().map(|()| time)
        })
    }

    /// Adds (or replaces) `key`'s signature line.
    fn put(&mut self, name: &str, blob: Vec<u8>) {
        let id = &blob[..4];
        self.signatures.retain(|s| !(s.name == name && s.blob[..4] == *id));
        self.signatures.push(NoteSignature { name: name.to_owned(), blob });
    }
}

/// What a cosignature signs (C2SP tlog-cosignature): a header with the time, then the checkpoint.
fn cosigned_message(checkpoint_text: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{checkpoint_text}").into_bytes()
}

/// A log's signed statement of its size and root (C2SP tlog-checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (its name).
    pub origin: String,
    /// How many leaves the tree has.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, each on its own line.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Parses a checkpoint's note text (extension lines are allowed and ignored).
    pub fn parse_text(text: &str) -> Result<Self, TlogError> {
        let lines: Vec<&str> =
            text.strip_suffix('\n').ok_or_else(|| malformed("a checkpoint ends with a newline"))?.split('\n').collect();
        if lines.len() < 3 || lines.len() > 3 + MAX_EXTENSIONS {
            return Err(malformed("a checkpoint is an origin, a size, a root hash and at most 4 extension lines"));
        }
        if lines.iter().any(|l| l.is_empty()) {
            return Err(malformed("a checkpoint has no empty lines"));
        }
        let origin = lines[0];
        let size = lines[1];
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(malformed("a checkpoint's size is a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| TlogError::TooLarge("a tree size over 2^64".into()))?;
        if size > MAX_TREE_SIZE {
            return Err(TlogError::TooLarge(format!("a tree of {size} leaves (at most {MAX_TREE_SIZE})")));
        }
        let root: Hash = B64
            .decode(lines[2])
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| malformed("a checkpoint's root is 32 bytes in base64"))?;
        Ok(Self { origin: origin.to_owned(), size, root })
    }

    /// The checkpoint as a note signed by the log's `key` named `name` (its origin line).
    pub fn sign(&self, key: &ed25519_dalek::SigningKey) -> Result<Note, TlogError> {
        let nk = NoteKey::log(&self.origin, key.verifying_key())?;
        let text = self.text();
        let sig = ed25519_dalek::Signer::sign(key, text.as_bytes());
        let mut blob = nk.id().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(Note { text, signatures: vec![NoteSignature { name: nk.name.clone(), blob }] })
    }
}

/// A checkpoint whose log signature verified, with the note it came in (cosignatures included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
}

impl SignedCheckpoint {
    /// Parses `bytes` as a signed note and checks it is a checkpoint of the log `key` signed: the
    /// origin line must be the key's name (C2SP tlog-checkpoint).
    pub fn open(bytes: &[u8], key: &NoteKey) -> Result<Self, TlogError> {
        let note = Note::parse(bytes)?;
        let checkpoint = Checkpoint::parse_text(&note.text)?;
        if checkpoint.origin != key.name {
            return Err(malformed(format!("the checkpoint is of log `{}`, not `{}`", checkpoint.origin, key.name)));
        }
        note.verify(key)?;
        Ok(Self { checkpoint, note })
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The note, as text.
    pub fn to_text(&self) -> String {
        self.note.to_text()
    }

    /// The note.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// Adds a cosignature by witness `name` with `key` at `time` (seconds since the epoch).
    pub fn cosign(&mut self, name: &str, key: &ed25519_dalek::SigningKey, time: u64) -> Result<(), TlogError> {
        let nk = NoteKey::witness(name, key.verifying_key())?;
        let sig = ed25519_dalek::Signer::sign(key, &cosigned_message(&self.note.text, time));
        let mut blob = nk.id().to_vec();
        blob.extend_from_slice(&time.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        if self.note.signatures.len() >= MAX_SIGNATURES {
            return Err(TlogError::TooLarge(format!("more than {MAX_SIGNATURES} signatures")));
        }
        self.note.put(name, blob);
        Ok(())
    }

    /// Takes in the cosignatures of `other` (the same checkpoint) by the `witnesses` that verify
    /// (the line that verifies, when there are several); returns how many were new.
    pub fn merge_cosignatures(&mut self, other: &Note, witnesses: &[NoteKey]) -> usize {
        if other.text != self.note.text {
            return 0;
        }
        let mut added = 0;
        for w in witnesses {
            if self.note.cosigned_at(w).is_some() || self.note.signatures.len() >= MAX_SIGNATURES {
                continue;
            }
            let verified = other.signatures.iter().find(|s| {
                s.name == w.name
                    && s.blob[..4] == w.id()
                    && Note { text: other.text.clone(), signatures: vec![(*s).clone()] }.cosigned_at(w).is_some()
            });
            if let Some(line) = verified.cloned() {
                self.note.put(&line.name, line.blob);
                added += 1;
            }
        }
        added
    }

    /// The note as text with only the signature lines of the named signers (the log's and one
    /// witness's, say: what a witness gossips stays small).
    pub fn text_signed_by(&self, names: &[&str]) -> String {
        let note = Note {
            text: self.note.text.clone(),
            signatures: self.note.signatures.iter().filter(|s| names.contains(&s.name.as_str())).cloned().collect(),
        };
        note.to_text()
    }

    /// The witnesses among `witnesses` whose cosignature verifies.
    pub fn cosigners<'a>(&self, witnesses: &'a [NoteKey]) -> Vec<&'a NoteKey> {
        witnesses.iter().filter(|w| self.note.cosigned_at(w).is_some()).collect()
    }
}

/// Encodes hashes for transport (base64, one per element).
pub fn encode_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

/// Decodes hashes received from elsewhere, bounded by [`MAX_PROOF`].
pub fn decode_hashes(hashes: &[String]) -> Result<Vec<Hash>, TlogError> {
    if hashes.len() > MAX_PROOF {
        return Err(TlogError::TooLarge(format!("a proof of {} hashes (at most {MAX_PROOF})", hashes.len())));
    }
    hashes
        .iter()
        .map(|h| {
            B64.decode(h)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| malformed("a proof hash is 32 bytes in base64"))
        })
        .collect()
}

/// A consistency proof as the origin answers it: the proof from the tree of its first `old`
/// leaves to its tree of `new` leaves (RFC 9162 §2.1.4), and the root of those first `old` leaves
/// in that tree (`prefix`). With the prefix, a proof that leads to the signed new root shows what
/// the new tree holds first, so a kept checkpoint whose root differs from it is *provably* not in
/// the new tree: the two signed checkpoints, the prefix and the proof are a portable proof of a
/// split view. A proof that does not lead to the signed root proves nothing (garbage).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Consistency {
    /// The proof's hashes (base64).
    pub consistency: Vec<String>,
    /// The root of the first `old` leaves of the new tree (base64).
    pub prefix: String,
}

impl Consistency {
    /// The proof between the first `old` leaves of `leaves` and all of them.
    pub fn build(leaves: &[Hash], old: usize) -> Self {
        Self::of(Tree::new(leaves), old)
    }

    /// The proof between the first `old` leaves of `tree` and all of them.
    pub fn of(tree: Tree<'_>, old: usize) -> Self {
        let old = old.min(tree.size());
        Self {
            consistency: encode_hashes(&tree.consistency_proof(old)),
            prefix: encode_hashes(&[tree.prefix(old).root()]).pop().unwrap_or_default(),
        }
    }

    /// Compares the signed checkpoints `old` and `new` (`old.size <= new.size`) through this
    /// proof: `Ok(None)` when `old` is a prefix of `new`; `Ok(Some(why))` when the proof shows it is
    /// not; `Err` when the proof does not lead to `new`'s signed root (it proves nothing).
    pub fn compare(&self, old: &Checkpoint, new: &Checkpoint) -> Result<Option<String>, TlogError> {
        if old.size > new.size {
            return Err(TlogError::BadProof("the old tree is larger".into()));
        }
        if old.size == new.size {
            return Ok(
                (old.root != new.root).then(|| format!("two checkpoints of {} leaves with different roots", old.size))
            );
        }
        let prefix =
            decode_hashes(std::slice::from_ref(&self.prefix))?.pop().ok_or_else(|| malformed("no prefix root"))?;
        let proof = decode_hashes(&self.consistency)?;
        verify_consistency(old.size, &prefix, new.size, &new.root, &proof)?;
        Ok((prefix != old.root).then(|| {
            format!(
                "the log's tree of {} leaves does not begin with the tree of {} leaves it signed before",
                new.size, old.size
            )
        }))
    }
}

/// What the origin answers a node that asks whether a catalog state is in its log: the newest
/// signed checkpoint, the leaf's index and inclusion proof in it, and the consistency proof from
/// the tree size the node last saw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogProof {
    /// The signed checkpoint (note text).
    pub checkpoint: String,
    /// The leaf's index.
    pub index: u64,
    /// The inclusion proof of the leaf in the checkpoint's tree (base64 hashes).
    pub inclusion: Vec<String>,
    /// The consistency proof from the asked size to the checkpoint's.
    #[serde(flatten)]
    pub consistency: Consistency,
}

impl LogProof {
    /// The proof that `leaf` is in the tree of `leaves` that `checkpoint` (signed note text)
    /// signs, consistent with the tree of its first `from` leaves.
    pub fn build(leaves: &[Hash], checkpoint: String, leaf: &Hash, from: u64) -> Result<Self, TlogError> {
        Self::of(Tree::new(leaves), checkpoint, leaf, from)
    }

    /// [`LogProof::build`] from a [`Tree`] (with its cached subtrees).
    pub fn of(tree: Tree<'_>, checkpoint: String, leaf: &Hash, from: u64) -> Result<Self, TlogError> {
        let size = Checkpoint::parse_text(&Note::parse(checkpoint.as_bytes())?.text)?.size;
        let wanted = usize::try_from(size).unwrap_or(usize::MAX);
        if wanted > tree.size() {
            return Err(malformed(format!("the checkpoint says {size} leaves, the log holds {}", tree.size())));
        }
        let tree = tree.prefix(wanted);
        let index = tree
            .leaves()
            .iter()
            .rposition(|l| l == leaf)
            .ok_or_else(|| TlogError::BadProof("that leaf is not in the log".into()))?;
        if from > size {
            return Err(TlogError::BadProof(format!("the log has {size} leaves, fewer than {from}")));
        }
        Ok(Self {
            checkpoint,
            index: index as u64,
            inclusion: encode_hashes(&tree.inclusion_proof(index)),
            consistency: Consistency::of(tree, from as usize),
        })
    }
}

/// Why a node does not move to a checkpoint ([`advance`]).
#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    /// The answer is garbage: a bad signature, a malformed note or proof, a proof that does not
    /// lead to the signed root, or a leaf not in the tree. Nothing is proven about the log.
    #[error("{0}")]
    Invalid(TlogError),
    /// The log shows a smaller tree than one the node already saw.
    #[error("the log went back from {known} leaves to {shown}")]
    Behind {
        /// The size the node knows.
        known: u64,
        /// The size shown now.
        shown: u64,
    },
    /// Two checkpoints signed by the log that can't both be true: the same size with different
    /// roots, or a larger tree whose proven beginning is not the smaller one. Both signed notes
    /// (and the proof) are the proof of a split view.
    #[error("the log signed two inconsistent checkpoints ({why})")]
    Inconsistent {
        /// The checkpoint the node had.
        known: Box<SignedCheckpoint>,
        /// The checkpoint shown now.
        shown: Box<SignedCheckpoint>,
        /// Which check failed.
        why: String,
        /// The consistency proof that shows it (empty for two trees of one size).
        proof: Option<Consistency>,
    },
}

/// A node's step along the log: the catalog state `leaf` (the hash of the timestamp's bytes) is
/// taken only if `proof` shows it in a checkpoint the log `key` signed that is consistent with
/// the newest checkpoint the node has seen (`known`). Returns the checkpoint to keep.
pub fn advance(
    key: &NoteKey,
    known: Option<&SignedCheckpoint>,
    leaf: &Hash,
    proof: &LogProof,
) -> Result<SignedCheckpoint, AdvanceError> {
    let shown = SignedCheckpoint::open(proof.checkpoint.as_bytes(), key).map_err(AdvanceError::Invalid)?;
    let cp = shown.checkpoint().clone();
    let inclusion = decode_hashes(&proof.inclusion).map_err(AdvanceError::Invalid)?;
    verify_inclusion(leaf, proof.index, cp.size, &inclusion, &cp.root).map_err(AdvanceError::Invalid)?;
    let Some(known) = known else { return Ok(shown) };
    let old = known.checkpoint();
    if cp.size < old.size {
        return Err(AdvanceError::Behind { known: old.size, shown: cp.size });
    }
    match proof.consistency.compare(old, &cp) {
        Ok(None) => Ok(shown),
        Ok(Some(why)) => Err(AdvanceError::Inconsistent {
            known: Box::new(known.clone()),
            shown: Box::new(shown.clone()),
            why,
            proof: (cp.size > old.size).then(|| proof.consistency.clone()),
        }),
        Err(e) => Err(AdvanceError::Invalid(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
    }

    #[test]
    fn cached_subtrees_give_the_same_roots_and_proofs_as_hashing_every_leaf() {
        let all = leaves(1300);
        let mut subtrees = Subtrees::default();
        // Built in steps, as a log grows; and asked about trees smaller than what it was built on.
        for (built, sizes) in [(300, &[1usize, 255, 256, 257, 300][..]), (1300, &[511, 512, 513, 1024, 1299, 1300][..])]
        {
            subtrees.extend(&all[..built]);
            for &n in sizes {
                let plain = Tree::new(&all[..n]);
                let cached = Tree::cached(&all[..built], &subtrees).prefix(n);
                assert_eq!(cached.root(), plain.root(), "root of {n}");
                assert_eq!(cached.root(), root(&all[..n]));
                for i in [0, 1, n / 2, n.saturating_sub(2), n - 1] {
                    assert_eq!(cached.inclusion_proof(i), plain.inclusion_proof(i), "inclusion of {i} in {n}");
                }
                for m in [1, n / 3, 256, 257, n - 1] {
                    assert_eq!(cached.consistency_proof(m), plain.consistency_proof(m), "consistency {m} → {n}");
                }
            }
        }
        assert_eq!(subtrees.levels[0].len(), 1300 / 256);
        assert_eq!(subtrees.levels[2].len(), 1);
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_and_a_changed_one_does_not() {
        for n in 1..40usize {
            let all = leaves(n);
            let r = root(&all);
            for i in 0..n {
                let proof = inclusion_proof(&all, i);
                verify_inclusion(&all[i], i as u64, n as u64, &proof, &r).expect("inclusion");
                assert!(verify_inclusion(&all[(i + 1) % n], i as u64, n as u64, &proof, &r).is_err() || n == 1);
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(verify_inclusion(&all[i], i as u64, n as u64, &bad, &r).is_err());
                }
            }
            for m in 1..=n {
                let proof = consistency_proof(&all, m);
                let old = root(&all[..m]);
                verify_consistency(m as u64, &old, n as u64, &r, &proof).expect("consistency");
                // A history with one leaf rewritten is not consistent.
                let mut rewritten = all.clone();
                rewritten[m - 1] = leaf_hash(b"rewritten");
                let forged_old = root(&rewritten[..m]);
                assert!(verify_consistency(m as u64, &forged_old, n as u64, &r, &proof).is_err(), "{m} -> {n}");
            }
        }
    }

    #[test]
    fn the_root_follows_rfc_6962() {
        // RFC 6962 §2.1: MTH({d0, d1, d2}) = node(node(leaf d0, leaf d1), leaf d2).
        let l: Vec<Hash> = [b"a", b"b", b"c"].iter().map(|d| leaf_hash(*d)).collect();
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(root(&[]), sha256(&[]));
    }

    #[test]
    fn a_checkpoint_signs_verifies_and_carries_cosignatures() {
        let log = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let witness = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let cp = Checkpoint { origin: "example.org/log".into(), size: 3, root: [9; 32] };
        let text = cp.sign(&log).expect("sign").to_text();
        let key = NoteKey::log("example.org/log", log.verifying_key()).expect("key");
        assert_eq!(NoteKey::from_vkey(&key.to_vkey()).expect("vkey"), key);
        let mut signed = SignedCheckpoint::open(text.as_bytes(), &key).expect("open");
        assert_eq!(signed.checkpoint(), &cp);
        signed.cosign("witness-1", &witness, 1_700_000_000).expect("cosign");
        let wkey = NoteKey::witness("witness-1", witness.verifying_key()).expect("key");
        let again = SignedCheckpoint::open(signed.to_text().as_bytes(), &key).expect("reopen");
        assert_eq!(again.note().cosigned_at(&wkey), Some(1_700_000_000));
        // Another log's key, a tampered body, a forged cosignature: refused.
        let other = NoteKey::log("example.org/log", witness.verifying_key()).expect("key");
        assert_eq!(SignedCheckpoint::open(text.as_bytes(), &other), Err(TlogError::Unsigned("example.org/log".into())));
        let tampered = text.replace("\n3\n", "\n4\n");
        assert!(SignedCheckpoint::open(tampered.as_bytes(), &key).is_err());
        let forged = signed.to_text().replace(&cp.text(), &Checkpoint { size: 4, ..cp.clone() }.text());
        let forged = Note::parse(forged.as_bytes()).expect("parses");
        assert_eq!(forged.cosigned_at(&wkey), None);
    }

    #[test]
    fn a_node_advances_only_along_one_consistent_history() {
        let log = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let key = NoteKey::log("l", log.verifying_key()).expect("key");
        let sign = |leaves: &[Hash]| {
            Checkpoint { origin: "l".into(), size: leaves.len() as u64, root: root(leaves) }
                .sign(&log)
                .expect("sign")
                .to_text()
        };
        let mut history = leaves(5);
        let first = LogProof::build(&history, sign(&history), &history[4], 0).expect("proof");
        let known = advance(&key, None, &history[4], &first).expect("first step");
        history.push(leaf_hash(b"next"));
        let step = LogProof::build(&history, sign(&history), &history[5], 5).expect("proof");
        let known = advance(&key, Some(&known), &history[5], &step).expect("next step");
        assert_eq!(known.checkpoint().size, 6);
        // Another history of the same size: a split view, proven by the two signed notes.
        let mut fork = history.clone();
        fork[5] = leaf_hash(b"the other view");
        let split = LogProof::build(&fork, sign(&fork), &fork[5], 6).expect("proof");
        assert!(matches!(advance(&key, Some(&known), &fork[5], &split), Err(AdvanceError::Inconsistent { .. })));
        // A rewritten past, one leaf longer: no consistency proof exists.
        let mut rewritten = fork.clone();
        rewritten.push(leaf_hash(b"later"));
        let rewrite = LogProof::build(&rewritten, sign(&rewritten), &rewritten[6], 6).expect("proof");
        assert!(matches!(advance(&key, Some(&known), &rewritten[6], &rewrite), Err(AdvanceError::Inconsistent { .. })));
        // A genuine next step with a junk consistency proof proves nothing: it is refused, and it
        // is no split view (a peer or a man in the middle can send junk).
        let mut next = history.clone();
        next.push(leaf_hash(b"after"));
        let mut junk = LogProof::build(&next, sign(&next), &next[6], 6).expect("proof");
        junk.consistency.consistency.push(encode_hashes(&[[7; 32]]).remove(0));
        assert!(matches!(advance(&key, Some(&known), &next[6], &junk), Err(AdvanceError::Invalid(_))));
        let mut lying_prefix = LogProof::build(&next, sign(&next), &next[6], 6).expect("proof");
        lying_prefix.consistency.prefix = encode_hashes(&[[8; 32]]).remove(0);
        assert!(matches!(advance(&key, Some(&known), &next[6], &lying_prefix), Err(AdvanceError::Invalid(_))));
        // A smaller tree, or a leaf the checkpoint does not hold.
        let old = LogProof::build(&history[..5], sign(&history[..5]), &history[4], 0).expect("proof");
        assert!(matches!(
            advance(&key, Some(&known), &history[4], &old),
            Err(AdvanceError::Behind { known: 6, shown: 5 })
        ));
        assert!(matches!(advance(&key, Some(&known), &leaf_hash(b"elsewhere"), &step), Err(AdvanceError::Invalid(_))));
    }

    #[test]
    fn garbage_is_refused_with_its_reason() {
        let key = NoteKey::log("l", ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key()).expect("key");
        for (bytes, want) in [
            (vec![b'a'; MAX_NOTE + 1], "too large"),
            (b"l\n1\nAAAA\n".to_vec(), "blank line"),
            (b"l\n1\nAAAA\n\nno dash\n".to_vec(), "starts with"),
            ("l\n01\nAAAA\n\n\u{2014} l AAAAAAAA\n".as_bytes().to_vec(), "leading zeros"),
            ("l\n99999999999999\nAAAA\n\n\u{2014} l AAAAAAAA\n".as_bytes().to_vec(), "too large"),
            ("l\n1\nAAAA\n\n\u{2014} l AAAAAAAA\n".as_bytes().to_vec(), "32 bytes"),
        ] {
            let err = SignedCheckpoint::open(&bytes, &key).expect_err("garbage").to_string();
            assert!(err.contains(want), "{err} should say {want}");
        }
    }
}
