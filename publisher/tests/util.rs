//! The harness of the publisher's integration tests: the workspace's binaries, child processes
//! that end with the test, and app folders to publish.

use std::path::{Path, PathBuf};
use std::process::Child;

use catalog::testing::TestApp;

/// The workspace binary `name` (`archy-registry`, `archy-relay`, `archy-node`), built beside
/// `archy` by `cargo build --workspace`.
pub(crate) fn bin(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_archy")).with_file_name(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` first (tests/run.sh does)", path.display());
    path
}

/// A child process killed when the test ends, whatever happens.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Writes `<root>/apps/<id>-<version>/archy.toml`: the example manifest of `id` at `version`,
/// published by `did`. Returns the app folder.
pub(crate) fn write_app(root: &Path, id: &str, version: &str, did: &str) -> PathBuf {
    let dir = root.join(format!("apps/{id}-{version}"));
    TestApp::new(id).version(version).write(&dir, &did.parse().expect("a did:key"));
    dir
}

/// Copies the workspace's `apps/<id>/` to `<root>/<id>/` and makes `did` its publisher.
/// Returns the copy.
pub(crate) fn copy_app(root: &Path, id: &str, did: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps").join(id);
    let dst = root.join(id);
    copy_dir(&src, &dst);
    let toml = std::fs::read_to_string(dst.join("archy.toml")).expect("archy.toml");
    let toml: Vec<String> = toml
        .lines()
        .map(|l| if l.starts_with("publisher = ") { format!("publisher = \"{did}\"") } else { l.to_owned() })
        .collect();
    std::fs::write(dst.join("archy.toml"), toml.join("\n")).expect("write archy.toml");
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read dir").flatten() {
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).expect("copy");
        }
    }
}
