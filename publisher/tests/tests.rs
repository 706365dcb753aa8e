//! The publisher's integration tests, one binary: each module drives the real `archy` binary
//! for one area, and `util` holds the harness they share.

mod util;

mod cli;
mod import;
mod nostr;
mod publish;
mod python_tuf_interop;
