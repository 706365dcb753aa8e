//! Trust computation over a synthetic graph: `cargo bench -p archy-trust --bench trust`.
//!
//! 100,000 keys, 1,000,000 follows, 50,000 endorsements, 5,000 reports, 10 seeds, all drawn from
//! a fixed-seed generator. Follow sources are uniform; targets are skewed towards popular keys
//! (index `⌊n·u³⌋` for uniform `u`: the most-followed 1% of keys receive about 21% of follows,
//! a power-law-like tail). Prints the graph build time, the score computation time, the time to
//! explain a few keys, and the process's peak resident memory (`VmHWM`), against the targets
//! (< 2 s, < 300 MB).

use std::time::Instant;

use catalog::trust::{GraphBuilder, Label, Params, PublicKey};

const KEYS: usize = 100_000;
const FOLLOWS: usize = 1_000_000;
const ENDORSEMENTS: usize = 50_000;
const REPORTS: usize = 5_000;
const SEEDS: usize = 10;

/// SplitMix64: small, fast, and the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uniform(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    fn popular(&mut self, n: usize) -> usize {
        (self.unit().powi(3) * n as f64) as usize
    }
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let mut rng = Rng(0x5eed_a7c4);
    let keys: Vec<PublicKey> = (0..KEYS)
        .map(|_| {
            let mut bytes = [0u8; 32];
            bytes.chunks_exact_mut(8).for_each(|c| c.copy_from_slice(&rng.next().to_le_bytes()));
            PublicKey::from_bytes(bytes)
        })
        .collect();
    let follows: Vec<(usize, usize)> = (0..FOLLOWS).map(|_| (rng.uniform(KEYS), rng.popular(KEYS))).collect();
    let endorsements: Vec<(usize, usize)> = (0..ENDORSEMENTS).map(|_| (rng.uniform(KEYS), rng.popular(KEYS))).collect();
    let reports: Vec<(usize, usize)> = (0..REPORTS).map(|_| (rng.uniform(KEYS), rng.uniform(KEYS))).collect();
    let seeds: Vec<usize> = (0..SEEDS).map(|_| rng.uniform(KEYS)).collect();

    let start = Instant::now();
    let mut builder = GraphBuilder::with_capacity(KEYS, FOLLOWS + ENDORSEMENTS);
    for &(f, t) in &follows {
        builder.follow(keys[f], keys[t]);
    }
    for &(f, t) in &endorsements {
        builder.label(keys[f], keys[t], Label::Endorse);
    }
    for &(f, t) in &reports {
        builder.label(keys[f], keys[t], Label::Report);
    }
    for &s in &seeds {
        builder.seed(keys[s], 1.0);
    }
    let graph = match builder.build() {
        Ok(graph) => graph,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(2);
        }
    };
    let build = start.elapsed();

    let start = Instant::now();
    let scores = graph.compute(&Params::default());
    let compute = start.elapsed();

    let ranked = scores.ranked();
    let start = Instant::now();
    let explained: usize = [10, 1_000, 10_000]
        .iter()
        .filter_map(|&rank| ranked.get(rank))
        .filter_map(|(key, _)| scores.explain(key, 3))
        .map(|e| e.paths.len())
        .sum();
    let explain = start.elapsed();

    println!(
        "graph: {} keys, {} follow/endorse edges, {} reports, {} seeds",
        graph.key_count(),
        graph.edge_count(),
        graph.report_count(),
        SEEDS
    );
    println!("build:   {:>8.1} ms", build.as_secs_f64() * 1e3);
    println!(
        "compute: {:>8.1} ms  ({} rounds; {} keys with a score > 0)  target < 2000 ms",
        compute.as_secs_f64() * 1e3,
        scores.iterations(),
        ranked.len()
    );
    println!("explain: {:>8.1} ms  (3 keys, {explained} paths)", explain.as_secs_f64() * 1e3);
    match peak_rss_mb() {
        Some(mb) => println!("peak RSS (VmHWM): {mb:.1} MB  target < 300 MB"),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}
