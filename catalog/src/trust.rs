//! Publisher trust scores for an archy node: personalized to the node, sybil-resistant,
//! explainable.
//!
//! Trust starts at the node's seeds (the operator's trusted Nostr keys and the origin's key) and
//! flows along the Nostr follow graph (kind 3) and `archy` endorsements (NIP-32, kind 1985) as a
//! personalized PageRank; `archy` reports withdraw trust in proportion to the reporter's own
//! score. A key no trusted key points to scores exactly 0, however many keys vouch for it. The
//! rules and their reasons are in `docs/trust.md`.
//!
//! Scores are per Nostr key; a publisher's DID is mapped to its key by the DID↔Nostr binding
//! event before asking for its score.
//!
//! ```
//! use catalog::trust::{GraphBuilder, Label, Params, PublicKey};
//!
//! let [operator, alice, bob, mallory] = [1, 2, 3, 4].map(|b| PublicKey::from_bytes([b; 32]));
//! let mut builder = GraphBuilder::new();
//! builder.seed(operator, 1.0).follow(operator, alice).follow(alice, bob);
//! builder.label(mallory, alice, Label::Report); // mallory is trusted by no one: no effect
//! let graph = builder.build()?;
//! let scores = graph.compute(&Params::default());
//! assert_eq!(scores.score_of(&operator), 100.0);
//! assert!(scores.score_of(&alice) > scores.score_of(&bob));
//! assert_eq!(scores.score_of(&mallory), 0.0);
//!
//! let why = scores.explain(&bob, 3).expect("bob is in the graph");
//! assert_eq!(why.paths[0].keys, [operator, alice, bob]);
//! # Ok::<(), catalog::trust::GraphError>(())
//! ```

mod explain;
mod graph;
mod score;

pub use explain::{Explanation, TrustPath};
pub use graph::{Graph, GraphBuilder, GraphError, Label, PublicKey};
pub use score::{Params, Scores};
