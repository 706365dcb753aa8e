//! Explanations: the strongest paths by which trust reaches a key, and who labelled it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::trust::graph::{ENDORSE, PublicKey};
use crate::trust::score::Scores;

/// Why a key has its score: what `archy-node trust <npub>` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The key explained.
    pub target: PublicKey,
    /// Its score, `0..=100`.
    pub score: f64,
    /// Whether it is a seed (trusted by the operator's configuration, not by the graph).
    pub seed: bool,
    /// The strongest paths from a seed to the target, strongest first, each through a different
    /// last key (so they read "followed by A, B and C"). Empty when no trust reaches the target.
    pub paths: Vec<TrustPath>,
    /// Keys that endorse the target, with their scores, highest first.
    pub endorsers: Vec<(PublicKey, f64)>,
    /// Keys that report the target, with their scores, highest first. A reporter with score 0
    /// took nothing away.
    pub reporters: Vec<(PublicKey, f64)>,
}

/// One path along which trust flows from a seed to a key.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustPath {
    /// The keys in order: a seed first, the explained key last. Every consecutive pair is a
    /// follow or an endorsement in the graph.
    pub keys: Vec<PublicKey>,
    /// How much of the target's score comes along this path alone, in score units (`0..=100`):
    /// the seed's score times the share each hop passes on.
    pub contribution: f64,
}

/// A heap entry ordered by largest trust first, then lowest index (for determinism).
#[derive(PartialEq)]
struct Entry(f64, u32);

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then_with(|| other.1.cmp(&self.1))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Scores<'_> {
    /// Explains `target`'s score with up to `max_paths` paths; `None` for a key the graph does
    /// not name.
    ///
    /// The strongest path to each key is found best-first (Dijkstra on products of shares,
    /// which only shrink along a path), starting from every seed at its own score, and stopping
    /// once every trusted key that points at the target is settled. Each path then ends with one
    /// of those keys and the hop into the target.
    pub fn explain(&self, target: &PublicKey, max_paths: usize) -> Option<Explanation> {
        let graph = self.graph;
        let t = *graph.index.get(target)?;
        let tu = t as usize;
        let alpha = self.params.restart;
        // What key `u` passes along one unit of edge weight, per unit of its own trust.
        let share = |u: usize| {
            if self.out_weight[u] > 0.0 { (1.0 - alpha) * self.keep[u] / self.out_weight[u] } else { 0.0 }
        };

        // Trusted keys pointing at the target: the last hop of every path.
        let mut wanted: Vec<(u32, f64)> = graph
            .in_edges(tu)
            .filter(|&(u, _)| self.raw[u as usize] > 0.0 && share(u as usize) > 0.0)
            .map(|(u, flags)| (u, share(u as usize) * self.params.edge_weight(flags)))
            .collect();

        let n = graph.keys.len();
        let mut best = vec![0.0f64; n];
        let mut pred = vec![u32::MAX; n];
        let mut settled = vec![false; n];
        let mut heap = BinaryHeap::new();
        for &(s, _) in &graph.seeds {
            let su = s as usize;
            best[su] = self.raw[su];
            heap.push(Entry(self.raw[su], s));
        }
        let mut is_wanted = vec![false; n];
        wanted.iter().for_each(|&(u, _)| is_wanted[u as usize] = true);
        let mut pending = wanted.len();
        while pending > 0 {
            let Some(Entry(flow, u)) = heap.pop() else { break };
            let uu = u as usize;
            if settled[uu] || flow < best[uu] || flow == 0.0 {
                continue;
            }
            settled[uu] = true;
            if is_wanted[uu] {
                pending -= 1;
            }
            let per = share(uu) * flow;
            // Paths end at the target; none passes through it.
            if per == 0.0 || uu == tu {
                continue;
            }
            for (v, flags) in graph.out_edges(uu) {
                let vv = v as usize;
                let f = per * self.params.edge_weight(flags);
                if !settled[vv] && f > best[vv] {
                    best[vv] = f;
                    pred[vv] = u;
                    heap.push(Entry(f, v));
                }
            }
        }

        wanted.retain(|&(u, _)| settled[u as usize]);
        let mut paths: Vec<TrustPath> = wanted
            .iter()
            .map(|&(u, last)| {
                let mut keys = vec![*target];
                let mut at = u;
                // Predecessor chains end at a seed and never pass through the target, which
                // is not expanded; only a target that is itself a seed can start one (dropped
                // below: the seed flag explains it).
                loop {
                    keys.push(graph.keys[at as usize]);
                    match pred[at as usize] {
                        u32::MAX => break,
                        p => at = p,
                    }
                }
                keys.reverse();
                let raw = best[u as usize] * last * self.keep[tu];
                TrustPath { keys, contribution: self.normalized(raw) }
            })
            .filter(|p| !p.keys[..p.keys.len() - 1].contains(target))
            .collect();
        paths.sort_by(|a, b| b.contribution.total_cmp(&a.contribution).then(a.keys.len().cmp(&b.keys.len())));
        paths.truncate(max_paths);

        let by_score = |mut v: Vec<(PublicKey, f64)>| {
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            v
        };
        let endorsers = by_score(
            graph
                .in_edges(tu)
                .filter(|&(_, flags)| flags & ENDORSE != 0)
                .map(|(u, _)| (graph.keys[u as usize], self.normalized(self.raw[u as usize])))
                .collect(),
        );
        let reporters = by_score(
            graph.reporters_of(t).map(|r| (graph.keys[r as usize], self.normalized(self.raw[r as usize]))).collect(),
        );

        Some(Explanation {
            target: *target,
            score: self.normalized(self.raw[tu]),
            seed: graph.is_seed(target),
            paths,
            endorsers,
            reporters,
        })
    }
}
