//! The trust graph: Nostr keys interned to dense indices, follows and endorsements as one
//! weighted edge set in compressed sparse rows, reports kept apart, and the seeds.

use std::collections::HashMap;
use std::fmt;

/// A Nostr public key: the 32-byte x-only secp256k1 key that an `npub` encodes.
///
/// The trust engine never verifies signatures; events are verified when they are ingested,
/// before their follows and labels are handed to a [`GraphBuilder`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key with these 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for PublicKey {
    /// Lower-case hex, as Nostr events carry keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// An NIP-32 label (kind 1985, `archy` namespace) one key puts on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// The labeller vouches for the target as a publisher: adds weight to the edge between them.
    Endorse,
    /// The labeller warns against the target: withdraws trust from it, in proportion to the
    /// labeller's own score (see [`crate::trust::Params::report_weight`]).
    Report,
}

/// Why a graph could not be built.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GraphError {
    /// No seed: without trusted keys every score would be zero.
    NoSeeds,
    /// A seed weight that is not a finite number greater than zero.
    InvalidSeedWeight {
        /// The seed.
        key: PublicKey,
        /// The weight it was given.
        weight: f64,
    },
    /// More distinct keys than a `u32` index can name.
    TooManyKeys,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSeeds => write!(f, "no seed keys: trust has nowhere to start"),
            Self::InvalidSeedWeight { key, weight } => {
                write!(f, "seed {key} has weight {weight}; a seed weight must be finite and > 0")
            }
            Self::TooManyKeys => write!(f, "more than {} distinct keys", u32::MAX),
        }
    }
}

impl std::error::Error for GraphError {}

/// Edge flag: the source follows the target (kind 3 contact list).
pub(crate) const FOLLOW: u8 = 1;
/// Edge flag: the source endorses the target (kind 1985, `archy` namespace).
pub(crate) const ENDORSE: u8 = 2;

/// Collects follows, labels and seeds, then [`build`](GraphBuilder::build)s a [`Graph`].
///
/// Repeated follows or labels between the same two keys count once; a key following,
/// endorsing or reporting itself is ignored (it would only feed its own score).
#[derive(Debug, Default)]
pub struct GraphBuilder {
    index: HashMap<PublicKey, u32>,
    keys: Vec<PublicKey>,
    edges: Vec<(u32, u32, u8)>,
    reports: Vec<(u32, u32)>,
    seeds: Vec<(PublicKey, f64)>,
    too_many_keys: bool,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for about `keys` keys and `edges` follows and endorsements.
    pub fn with_capacity(keys: usize, edges: usize) -> Self {
        Self {
            index: HashMap::with_capacity(keys),
            keys: Vec::with_capacity(keys),
            edges: Vec::with_capacity(edges),
            ..Self::default()
        }
    }

    fn intern(&mut self, key: PublicKey) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let Ok(i) = u32::try_from(self.keys.len()) else {
            self.too_many_keys = true;
            return u32::MAX;
        };
        self.index.insert(key, i);
        self.keys.push(key);
        i
    }

    /// `from` follows `to` (a `p` tag in `from`'s kind 3 contact list).
    pub fn follow(&mut self, from: PublicKey, to: PublicKey) -> &mut Self {
        self.edge(from, to, FOLLOW)
    }

    /// `from` puts `label` on `to`.
    pub fn label(&mut self, from: PublicKey, to: PublicKey, label: Label) -> &mut Self {
        match label {
            Label::Endorse => self.edge(from, to, ENDORSE),
            Label::Report => {
                if from != to {
                    let (f, t) = (self.intern(from), self.intern(to));
                    self.reports.push((f, t));
                }
                self
            }
        }
    }

    fn edge(&mut self, from: PublicKey, to: PublicKey, flag: u8) -> &mut Self {
        if from != to {
            let (f, t) = (self.intern(from), self.intern(to));
            self.edges.push((f, t, flag));
        }
        self
    }

    /// Trusts `key` from the start with `weight` (relative to the other seeds): the node
    /// operator's own keys and the origin's key. A key seeded twice keeps the sum.
    pub fn seed(&mut self, key: PublicKey, weight: f64) -> &mut Self {
        self.seeds.push((key, weight));
        self
    }

    /// The graph, ready for [`Graph::compute`].
    ///
    /// # Errors
    /// [`GraphError::NoSeeds`] without seeds, [`GraphError::InvalidSeedWeight`] for a weight
    /// that is not finite and positive, [`GraphError::TooManyKeys`] past `u32::MAX` keys.
    pub fn build(mut self) -> Result<Graph, GraphError> {
        if self.seeds.is_empty() {
            return Err(GraphError::NoSeeds);
        }
        let mut seeds: Vec<(u32, f64)> = Vec::with_capacity(self.seeds.len());
        for (key, weight) in std::mem::take(&mut self.seeds) {
            if !(weight.is_finite() && weight > 0.0) {
                return Err(GraphError::InvalidSeedWeight { key, weight });
            }
            let i = self.intern(key);
            match seeds.iter_mut().find(|(s, _)| *s == i) {
                Some((_, w)) => *w += weight,
                None => seeds.push((i, weight)),
            }
        }
        if self.too_many_keys {
            return Err(GraphError::TooManyKeys);
        }
        seeds.sort_unstable_by_key(|&(i, _)| i);
        let total: f64 = seeds.iter().map(|&(_, w)| w).sum();
        seeds.iter_mut().for_each(|(_, w)| *w /= total);

        let n = self.keys.len();
        // Merge duplicate edges, OR-ing follow and endorse flags.
        let mut edges = self.edges;
        edges.sort_unstable();
        edges.dedup_by(|next, kept| {
            let same = next.0 == kept.0 && next.1 == kept.1;
            if same {
                kept.2 |= next.2;
            }
            same
        });
        let mut out_offsets = vec![0usize; n + 1];
        let mut in_offsets = vec![0usize; n + 1];
        for &(f, t, _) in &edges {
            out_offsets[f as usize + 1] += 1;
            in_offsets[t as usize + 1] += 1;
        }
        for i in 0..n {
            out_offsets[i + 1] += out_offsets[i];
            in_offsets[i + 1] += in_offsets[i];
        }
        let out_targets: Vec<u32> = edges.iter().map(|e| e.1).collect();
        let out_flags: Vec<u8> = edges.iter().map(|e| e.2).collect();
        // Reverse adjacency by counting sort; sources stay ascending within each target.
        let mut cursor = in_offsets.clone();
        let mut in_sources = vec![0u32; edges.len()];
        let mut in_flags = vec![0u8; edges.len()];
        for &(f, t, flags) in &edges {
            let slot = &mut cursor[t as usize];
            in_sources[*slot] = f;
            in_flags[*slot] = flags;
            *slot += 1;
        }
        drop(edges);

        // Reports sorted by target, for the reporters of a key; reporters' report counts.
        let mut reports: Vec<(u32, u32)> = self.reports.into_iter().map(|(r, t)| (t, r)).collect();
        reports.sort_unstable();
        reports.dedup();

        Ok(Graph {
            index: self.index,
            keys: self.keys,
            out_offsets,
            out_targets,
            out_flags,
            in_offsets,
            in_sources,
            in_flags,
            reports,
            seeds,
        })
    }
}

/// An immutable trust graph over dense key indices.
///
/// Follows and endorsements share one edge per ordered pair of keys, stored twice in compressed
/// sparse rows (out-edges for propagation, in-edges for explanations): 5 bytes per edge each way.
#[derive(Debug)]
pub struct Graph {
    pub(crate) index: HashMap<PublicKey, u32>,
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) out_offsets: Vec<usize>,
    pub(crate) out_targets: Vec<u32>,
    pub(crate) out_flags: Vec<u8>,
    pub(crate) in_offsets: Vec<usize>,
    pub(crate) in_sources: Vec<u32>,
    pub(crate) in_flags: Vec<u8>,
    /// `(target, reporter)`, sorted and without duplicates.
    pub(crate) reports: Vec<(u32, u32)>,
    /// `(key, weight)`, sorted by key, weights summing to 1.
    pub(crate) seeds: Vec<(u32, f64)>,
}

impl Graph {
    /// How many distinct keys the graph names.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// How many distinct follow-or-endorse edges it holds.
    pub fn edge_count(&self) -> usize {
        self.out_targets.len()
    }

    /// How many distinct reports it holds.
    pub fn report_count(&self) -> usize {
        self.reports.len()
    }

    /// Whether `key` is a seed.
    pub fn is_seed(&self, key: &PublicKey) -> bool {
        self.index.get(key).is_some_and(|&i| self.seeds.binary_search_by_key(&i, |&(s, _)| s).is_ok())
    }

    /// Out-edges of `u`: `(target, flags)`.
    pub(crate) fn out_edges(&self, u: usize) -> impl Iterator<Item = (u32, u8)> + '_ {
        let range = self.out_offsets[u]..self.out_offsets[u + 1];
        self.out_targets[range.clone()].iter().copied().zip(self.out_flags[range].iter().copied())
    }

    /// In-edges of `v`: `(source, flags)`.
    pub(crate) fn in_edges(&self, v: usize) -> impl Iterator<Item = (u32, u8)> + '_ {
        let range = self.in_offsets[v]..self.in_offsets[v + 1];
        self.in_sources[range.clone()].iter().copied().zip(self.in_flags[range].iter().copied())
    }

    /// The keys that reported `v`.
    pub(crate) fn reporters_of(&self, v: u32) -> impl Iterator<Item = u32> + '_ {
        let start = self.reports.partition_point(|&(t, _)| t < v);
        self.reports[start..].iter().take_while(move |&&(t, _)| t == v).map(|&(_, r)| r)
    }
}
