//! Scores: personalized PageRank from the seeds over follows and endorsements, then reports.
//!
//! The rules, and why they are these, are in `docs/trust.md`.

use crate::trust::graph::{ENDORSE, FOLLOW, Graph, PublicKey};

/// The engine's settings. [`Params::default`] is what the node uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Probability of returning to the seeds at each step (PageRank's `1 - d`), in `(0, 1)`.
    /// Higher keeps trust closer to the seeds; it also bounds what a sybil region can gain:
    /// at most `(1 - restart) / restart` times the trust of the keys that point into it.
    pub restart: f64,
    /// Weight of a follow edge.
    pub follow_weight: f64,
    /// Weight an endorsement adds to an edge (a follow plus an endorsement weighs the sum).
    pub endorse_weight: f64,
    /// Trust a report withdraws, as a multiple of the reporter's score shared over its reports.
    pub report_weight: f64,
    /// Upper bound on propagation rounds (per pass).
    pub max_iterations: u32,
    /// Stop when the L1 change of the score vector in one round falls below this.
    pub tolerance: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            restart: 0.25,
            follow_weight: 1.0,
            endorse_weight: 2.0,
            report_weight: 1.0,
            max_iterations: 100,
            tolerance: 1e-9,
        }
    }
}

impl Params {
    /// Weight of an edge with these flags.
    pub(crate) fn edge_weight(&self, flags: u8) -> f64 {
        let mut w = 0.0;
        if flags & FOLLOW != 0 {
            w += self.follow_weight;
        }
        if flags & ENDORSE != 0 {
            w += self.endorse_weight;
        }
        w
    }
}

impl Graph {
    /// Computes every key's score. Deterministic: the same graph and parameters give the same
    /// scores, bit for bit.
    ///
    /// 1. Propagate: personalized PageRank restarting at the seeds (their weights normalized),
    ///    each key passing `1 - restart` of its trust to its follows and endorsements in
    ///    proportion to edge weight. A key without out-edges returns its share to the seeds.
    /// 2. Reports: a key `t` reported by `r` loses `report_weight * s(r) / reports(r)` of its
    ///    step-1 trust `s(t)`, keeping the fraction `keep(t) = max(0, 1 - loss / s(t))`.
    /// 3. If any key lost trust, propagate again with each key's outflow scaled by `keep`
    ///    (what a reported key no longer passes on returns to the seeds); a key's score is its
    ///    trust from that pass times its `keep`.
    /// 4. Normalize to `0..=100`, the highest-scoring key at 100.
    pub fn compute(&self, params: &Params) -> Scores<'_> {
        let n = self.keys.len();
        let out_weight: Vec<f64> =
            (0..n).map(|u| self.out_edges(u).map(|(_, f)| params.edge_weight(f)).sum()).collect();
        let mut keep = vec![1.0; n];
        let (first, mut iterations) = self.propagate(params, &out_weight, &keep, None);

        // Step 2: what each report withdraws, from the reporter's step-1 trust.
        let mut report_counts = vec![0u32; n];
        for &(_, r) in &self.reports {
            report_counts[r as usize] += 1;
        }
        let mut loss = vec![0.0; n];
        for &(t, r) in &self.reports {
            let r = r as usize;
            loss[t as usize] += params.report_weight * first[r] / f64::from(report_counts[r]);
        }
        let mut reported = false;
        for t in 0..n {
            if loss[t] > 0.0 && first[t] > 0.0 {
                keep[t] = (1.0 - loss[t] / first[t]).max(0.0);
                reported = true;
            }
        }

        // Step 3, only when a report took something away.
        let mut raw = if reported {
            let (second, more) = self.propagate(params, &out_weight, &keep, Some(first));
            iterations += more;
            second
        } else {
            first
        };
        raw.iter_mut().zip(&keep).for_each(|(s, k)| *s *= k);
        let max = raw.iter().copied().fold(0.0, f64::max);
        Scores { graph: self, params: *params, raw, keep, out_weight, max, iterations }
    }

    /// Power iteration from `start` (the seed distribution when `None`) until converged.
    fn propagate(&self, params: &Params, out_weight: &[f64], keep: &[f64], start: Option<Vec<f64>>) -> (Vec<f64>, u32) {
        let n = self.keys.len();
        let alpha = params.restart;
        let mut s = start.unwrap_or_else(|| {
            let mut s = vec![0.0; n];
            self.seeds.iter().for_each(|&(i, w)| s[i as usize] = w);
            s
        });
        let mut next = vec![0.0; n];
        let mut rounds = 0;
        while rounds < params.max_iterations {
            rounds += 1;
            next.iter_mut().for_each(|x| *x = 0.0);
            // Mass that returns to the seeds: the restart, plus what dangling or reported
            // keys do not pass on.
            let mut back = 0.0;
            for u in 0..n {
                let su = s[u];
                if su == 0.0 {
                    continue;
                }
                back += alpha * su;
                let passed = (1.0 - alpha) * su * keep[u];
                back += (1.0 - alpha) * su - passed;
                if out_weight[u] == 0.0 || passed == 0.0 {
                    back += passed;
                    continue;
                }
                let per_weight = passed / out_weight[u];
                for (v, flags) in self.out_edges(u) {
                    next[v as usize] += per_weight * params.edge_weight(flags);
                }
            }
            for &(i, w) in &self.seeds {
                next[i as usize] += back * w;
            }
            let delta: f64 = s.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
            std::mem::swap(&mut s, &mut next);
            if delta < params.tolerance {
                break;
            }
        }
        (s, rounds)
    }
}

/// The scores of every key in one [`Graph`], for one set of [`Params`].
#[derive(Debug)]
pub struct Scores<'g> {
    pub(crate) graph: &'g Graph,
    pub(crate) params: Params,
    /// Final trust mass per key (after reports), before normalization.
    pub(crate) raw: Vec<f64>,
    /// Fraction of its trust each key keeps after reports (1 when not reported).
    pub(crate) keep: Vec<f64>,
    /// Sum of out-edge weights per key.
    pub(crate) out_weight: Vec<f64>,
    /// Highest raw score (the normalization's 100).
    pub(crate) max: f64,
    iterations: u32,
}

impl Scores<'_> {
    /// The score of `key` in `0.0..=100.0`; `0.0` for a key the graph does not name or that no
    /// trusted key points to.
    pub fn score_of(&self, key: &PublicKey) -> f64 {
        self.graph.index.get(key).map_or(0.0, |&i| self.normalized(self.raw[i as usize]))
    }

    /// Scales a raw trust mass to `0..=100`.
    pub(crate) fn normalized(&self, raw: f64) -> f64 {
        if self.max > 0.0 { (100.0 * raw / self.max).min(100.0) } else { 0.0 }
    }

    /// Propagation rounds run in all (both passes when reports applied).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Keys with a score above zero, highest first (ties by key bytes).
    pub fn ranked(&self) -> Vec<(PublicKey, f64)> {
        let mut ranked: Vec<(PublicKey, f64)> = (0..self.raw.len())
            .filter(|&i| self.raw[i] > 0.0)
            .map(|i| (self.graph.keys[i], self.normalized(self.raw[i])))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }
}
