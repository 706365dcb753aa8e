//! Trust scores as the node sees them: seeds on top, trust falling with distance, sybil rings
//! held to what trusted keys give them, reports counted by the reporter's own trust, and
//! explanations that follow real edges.

use std::collections::HashSet;

use catalog::trust::{Graph, GraphBuilder, GraphError, Label, Params, PublicKey};

/// A distinct key per number.
fn key(i: u32) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    bytes[31] = 0xa5;
    PublicKey::from_bytes(bytes)
}

fn build(builder: GraphBuilder) -> Graph {
    builder.build().expect("the test graph has valid seeds")
}

const SEED: u32 = 1;
const SEED2: u32 = 2;

/// A small honest community: two seeds, ten publishers they follow, and a long chain of keys
/// hanging off publisher 10 (keys 100, 101, …).
fn community() -> GraphBuilder {
    let mut b = GraphBuilder::new();
    b.seed(key(SEED), 1.0).seed(key(SEED2), 1.0);
    for p in 10..20 {
        b.follow(key(SEED), key(p));
        b.follow(key(SEED2), key(p));
        b.follow(key(p), key(if p == 19 { 10 } else { p + 1 }));
    }
    b.follow(key(10), key(100));
    for c in 100..110 {
        b.follow(key(c), key(c + 1));
    }
    b
}

#[test]
fn a_seed_scores_highest() {
    let graph = build(community());
    let scores = graph.compute(&Params::default());
    let ranked = scores.ranked();
    assert!([key(SEED), key(SEED2)].contains(&ranked[0].0), "top key is {:?}", ranked[0].0);
    assert_eq!(ranked[0].1, 100.0);
    assert!(scores.score_of(&key(SEED2)) > scores.score_of(&key(10)));
}

#[test]
fn followed_by_two_seeds_outranks_followed_by_one() {
    let mut b = GraphBuilder::new();
    b.seed(key(SEED), 1.0).seed(key(SEED2), 1.0);
    // Both seeds follow two keys each, so their shares are equal.
    b.follow(key(SEED), key(10)).follow(key(SEED2), key(10));
    b.follow(key(SEED), key(11)).follow(key(SEED2), key(12));
    let graph_scores = build(b);
    let scores = graph_scores.compute(&Params::default());
    let (two, one_a, one_b) = (scores.score_of(&key(10)), scores.score_of(&key(11)), scores.score_of(&key(12)));
    assert!(two > one_a && two > one_b, "two seeds {two}, one seed {one_a} / {one_b}");
    assert!(one_a > 0.0);
}

#[test]
fn score_decreases_with_distance() {
    let graph_scores = build(community());
    let scores = graph_scores.compute(&Params::default());
    let chain: Vec<f64> = (100..=110).map(|c| scores.score_of(&key(c))).collect();
    assert!(chain.windows(2).all(|w| w[0] > w[1]), "{chain:?}");
    assert!(chain[10] > 0.0);
    assert!(scores.score_of(&key(10)) > chain[0]);
}

#[test]
fn an_endorsement_outweighs_a_bare_follow() {
    let mut b = GraphBuilder::new();
    b.seed(key(SEED), 1.0).follow(key(SEED), key(10)).follow(key(SEED), key(11));
    b.label(key(SEED), key(10), Label::Endorse);
    let graph_scores = build(b);
    let scores = graph_scores.compute(&Params::default());
    assert!(scores.score_of(&key(10)) > scores.score_of(&key(11)));
}

const RING: u32 = 1_000_000;
const RING_SIZE: u32 = 1_000;

/// 1,000 fresh keys that follow and endorse each other (a ring plus chords), follow honest
/// publishers, and report one of them.
fn add_sybil_ring(b: &mut GraphBuilder) {
    for i in 0..RING_SIZE {
        let me = key(RING + i);
        for step in [1, 7, 31] {
            let other = key(RING + (i + step) % RING_SIZE);
            b.follow(me, other).label(me, other, Label::Endorse);
        }
        b.follow(me, key(10)).label(me, key(11), Label::Report);
    }
}

fn ring_scores(scores: &catalog::trust::Scores<'_>) -> Vec<f64> {
    (0..RING_SIZE).map(|i| scores.score_of(&key(RING + i))).collect()
}

#[test]
fn an_unconnected_sybil_ring_scores_exactly_zero() {
    let mut b = community();
    add_sybil_ring(&mut b);
    let graph = build(b);
    let scores = graph.compute(&Params::default());
    assert!(ring_scores(&scores).iter().all(|&s| s == 0.0));
    // Their 1,000 reports took nothing from publisher 11, their follows gave nothing to 10.
    let graph_honest = build(community());
    let honest = graph_honest.compute(&Params::default());
    for p in 10..20 {
        assert_eq!(scores.score_of(&key(p)), honest.score_of(&key(p)), "publisher {p}");
    }
    let why = scores.explain(&key(RING), 3).expect("the ring is in the graph");
    assert!(why.paths.is_empty());
}

#[test]
fn a_ring_attached_by_one_edge_gets_only_what_that_edge_carries() {
    let params = Params::default();
    let mut b = community();
    add_sybil_ring(&mut b);
    // The end of the chain, barely trusted, follows one ring member.
    let gate = key(110);
    b.follow(gate, key(RING));
    let graph = build(b);
    let scores = graph.compute(&params);

    let gate_score = scores.score_of(&gate);
    let ring = ring_scores(&scores);
    let total: f64 = ring.iter().sum();
    assert!(total > 0.0, "the edge does carry some trust");
    // What enters per step is at most (1 - restart) of the gate's trust, and the ring keeps at
    // most (1 - restart) of what it holds per step: in all at most (1 - restart) / restart
    // times the gate's trust.
    let bound = (1.0 - params.restart) / params.restart * gate_score;
    assert!(total <= bound, "ring total {total} > bound {bound} (gate {gate_score})");
    let publisher = scores.score_of(&key(15));
    // No sybil outranks the key that let the ring in; the one it follows directly gets
    // (1 - restart) of the gate's trust, the other 999 share the rest.
    let top_sybil = ring.iter().copied().fold(0.0, f64::max);
    assert!(top_sybil < gate_score, "sybil {top_sybil} vs gate {gate_score}");
    assert!(top_sybil * 20.0 < publisher, "sybil {top_sybil} vs publisher {publisher}");
    let mean = total / f64::from(RING_SIZE);
    assert!(mean * 10_000.0 < publisher, "mean sybil {mean} vs publisher {publisher}");
}

#[test]
fn a_report_by_a_seed_lowers_the_publishers_score() {
    let before = build(community()).compute(&Params::default()).score_of(&key(12));
    let mut b = community();
    b.label(key(SEED2), key(12), Label::Report);
    let graph = build(b);
    let scores = graph.compute(&Params::default());
    let after = scores.score_of(&key(12));
    assert!(after < before / 2.0, "before {before}, after {after}");
    let why = scores.explain(&key(12), 3).expect("12 is in the graph");
    assert_eq!(why.reporters.first().map(|r| r.0), Some(key(SEED2)));
}

#[test]
fn a_report_by_an_untrusted_key_changes_nothing() {
    let honest = build(community()).compute(&Params::default()).ranked();
    let mut b = community();
    b.label(key(999), key(12), Label::Report).follow(key(999), key(12));
    let graph = build(b);
    let scores = graph.compute(&Params::default());
    assert_eq!(scores.ranked(), honest);
}

#[test]
fn explain_returns_paths_that_exist_in_the_graph() {
    let mut b = community();
    b.label(key(SEED), key(105), Label::Endorse);
    let mut edges: HashSet<(PublicKey, PublicKey)> = HashSet::new();
    // Re-create the community's edges to check paths against.
    for p in 10..20 {
        edges.insert((key(SEED), key(p)));
        edges.insert((key(SEED2), key(p)));
        edges.insert((key(p), key(if p == 19 { 10 } else { p + 1 })));
    }
    edges.insert((key(10), key(100)));
    for c in 100..110 {
        edges.insert((key(c), key(c + 1)));
    }
    edges.insert((key(SEED), key(105)));
    let graph = build(b);
    let scores = graph.compute(&Params::default());

    let target = key(107);
    let why = scores.explain(&target, 3).expect("107 is in the graph");
    assert!(!why.paths.is_empty());
    assert_eq!(why.score, scores.score_of(&target));
    for path in &why.paths {
        assert!(graph.is_seed(&path.keys[0]), "{path:?}");
        assert_eq!(path.keys.last(), Some(&target));
        assert!(path.keys.windows(2).all(|w| edges.contains(&(w[0], w[1]))), "{path:?}");
        assert!(path.contribution > 0.0 && path.contribution <= why.score);
    }
    // The endorsement shortcut is the strongest way in.
    assert_eq!(why.paths[0].keys, [key(SEED), key(105), key(106), key(107)]);
    assert!(why.paths.windows(2).all(|w| w[0].contribution >= w[1].contribution));

    let endorsed = scores.explain(&key(105), 3).expect("105 is in the graph");
    assert_eq!(endorsed.endorsers.first().map(|e| e.0), Some(key(SEED)));
}

#[test]
fn explain_returns_nothing_for_an_unreachable_key() {
    let mut b = community();
    b.follow(key(500), key(501));
    let graph_scores = build(b);
    let scores = graph_scores.compute(&Params::default());
    let why = scores.explain(&key(501), 3).expect("501 is in the graph");
    assert!(why.paths.is_empty());
    assert_eq!(why.score, 0.0);
    assert!(scores.explain(&key(77_777), 3).is_none());
    assert_eq!(scores.score_of(&key(77_777)), 0.0);
}

#[test]
fn the_same_input_gives_the_same_scores() {
    let make = || {
        let mut b = community();
        add_sybil_ring(&mut b);
        b.follow(key(110), key(RING)).label(key(SEED), key(13), Label::Report);
        build(b)
    };
    let (g1, g2) = (make(), make());
    let (s1, s2) = (g1.compute(&Params::default()), g2.compute(&Params::default()));
    assert_eq!(s1.ranked(), s2.ranked());
    assert_eq!(s1.explain(&key(RING + 500), 3), s2.explain(&key(RING + 500), 3));
}

#[test]
fn a_graph_needs_valid_seeds() {
    let mut b = GraphBuilder::new();
    b.follow(key(1), key(2));
    assert_eq!(b.build().err(), Some(GraphError::NoSeeds));
    for weight in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut b = GraphBuilder::new();
        b.seed(key(1), weight);
        assert!(matches!(b.build(), Err(GraphError::InvalidSeedWeight { .. })), "weight {weight}");
    }
}

#[test]
fn a_seed_explains_itself() {
    let graph_scores = build(community());
    let scores = graph_scores.compute(&Params::default());
    let why = scores.explain(&key(SEED), 3).expect("the seed is in the graph");
    assert!(why.seed);
    assert!(why.paths.iter().all(|p| p.keys[0] != key(SEED) || p.keys.len() == 1));
}
