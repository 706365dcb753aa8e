//! The catalog's integration tests, one binary: each module is one topic, and `util` holds the
//! harness they share. Fixtures are under `tests/data/<case>/`.

mod util;

mod client_workflow;
mod did_ssi;
mod envelope_kept;
mod manifest;
mod minisign_cli;
mod publisher_keys;
mod tamper_props;
mod trust;
mod tuf_fixtures;
