//! The integration tests of `archy-node`, in one binary with one harness ([`util`]): the real
//! `archy-node` and `archy-registry` binaries on loopback, iroh peers and Nostr relays in this
//! process, and the real Docker engine for the orchestrator.
//!
//! Run one file's tests with `cargo test -p archy-node --test tests sync_attacks`; one test with
//! its full name, e.g. `cargo test -p archy-node --test tests sync_attacks::rollback`.
//!
//! The tests run in parallel threads of one process: nothing here may set environment variables
//! or listen on fixed ports, and the Docker tests share the engine through
//! [`util::docker::docker_or_skip`] (or take it alone with
//! [`util::docker::docker_alone_or_skip`]).

// A test binary exports nothing, and a panic is the failure report.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod util;

mod app_data;
mod dashboard;
mod engine_life;
mod layers;
mod local_api;
mod nostr_discovery;
mod nostr_install;
mod nostr_limits;
mod nostr_trust;
mod orchestrator_api;
mod orchestrator_crash;
mod orchestrator_e2e;
mod orchestrator_failures;
mod orchestrator_gate;
mod orchestrator_install;
mod orchestrator_names;
mod orchestrator_networks;
mod publisher_keys;
mod publisher_loop;
mod service;
mod swarm;
mod sync_attacks;
mod sync_paths;
mod transparency;
