//! The harness of the node's integration tests: the binaries under test ([`node_bin`],
//! [`registry_bin`], [`archy_bin`]) and
//!
//! - [`origin`]: an origin repository built with archy's repository code, a real HTTP server on
//!   loopback that can be told to misbehave, nodes driven through the `archy-node` binary, the
//!   `archy-registry` process, and iroh peers (honest, slow or malicious) in the test process;
//! - [`docker`]: the Docker engine, the shared test image, signed test manifests, free host
//!   ports, and guards that remove what a test created;
//! - [`engine`]: a container engine owned by one test, to kill, restart and cut the power of;
//! - [`netns`]: hosts as Linux network namespaces on a private switch (a bridge in a namespace
//!   of its own), to cut off, block from each other, or limit the uplink of;
//! - [`nostr`]: relays (the embedded archy relay and a hostile one), publishers and the Nostr
//!   side of `archy-node`.

pub mod docker;
pub mod engine;
pub mod netns;
pub mod nostr;
pub mod origin;
pub mod split_view;
pub mod swarm_hosts;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `archy-node` binary of this build.
pub fn node_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_archy-node"))
}

/// The publisher's `archy` binary, built beside `archy-node` by `cargo test --workspace`.
pub fn archy_bin() -> PathBuf {
    let path = node_bin().with_file_name("archy");
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` (tests/run.sh does)", path.display());
    path
}

/// The origin's binary, built beside `archy-node` by `cargo test --workspace`.
pub fn registry_bin() -> PathBuf {
    let path = node_bin().with_file_name("archy-registry");
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` (tests/run.sh does)", path.display());
    path
}

/// Runs `cmd` and fails the test, with its output, unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
