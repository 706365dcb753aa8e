//! Shared by the publisher's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// Writes `<root>/apps/<id>-<version>/archy.toml`: the example manifest of `id` at `version`,
/// published by `did`. Returns the app folder.
pub fn write_app(root: &Path, id: &str, version: &str, did: &str) -> PathBuf {
    let dir = root.join(format!("apps/{id}-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = catalog::manifest::example_toml(id, &did.parse().unwrap()).replacen(
        "version = \"0.1.0\"",
        &format!("version = \"{version}\""),
        1,
    );
    std::fs::write(dir.join("archy.toml"), toml).unwrap();
    dir
}
