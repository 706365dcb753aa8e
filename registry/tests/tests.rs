//! The registry's integration tests, one binary with one module per area: the origin's HTTP API,
//! driven through the real router (`tower::ServiceExt::oneshot`) over a repository folder as
//! `archy repo init` makes it.
#![allow(clippy::unwrap_used)]

mod blobs;
mod browser;
mod market;
mod submissions;
mod util;
