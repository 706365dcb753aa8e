//! Benchmarks that run an archy origin and nodes together, each printing its figure:
//!
//! - `cargo bench -p archy-bench --bench incremental_sync`: the bytes a node downloads when one
//!   app of a 10,000-app catalog changes, over a full download;
//! - `cargo bench -p archy-bench --bench blob_transfer`: a 200 MB archive over iroh against nginx
//!   over HTTPS and bare iroh-blobs (`bash scripts/bench-blob-transfer.sh` sets nginx up).
//!
//! They live apart from the crates they measure so that the node does not depend on the origin
//! server. The library is empty.
