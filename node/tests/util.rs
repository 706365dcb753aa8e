//! The harness of the node's integration tests:
//!
//! - [`origin`]: an origin repository built with archy's repository code, a real HTTP server on
//!   loopback that can be told to misbehave, nodes driven through the `archy-node` binary, the
//!   `archy-registry` process, and iroh peers (honest, slow or malicious) in the test process;
//! - [`docker`]: the Docker engine, the shared test image, signed test manifests, free host
//!   ports, and guards that remove what a test created;
//! - [`nostr`]: relays (the embedded archy relay and a hostile one), publishers and the Nostr
//!   side of `archy-node`.

pub mod docker;
pub mod nostr;
pub mod origin;
