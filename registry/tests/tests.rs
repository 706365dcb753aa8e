//! The registry's integration tests, one binary with one module per area.

mod blobs;
