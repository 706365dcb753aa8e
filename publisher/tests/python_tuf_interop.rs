//! Interop: a repository written by `archy repo` is accepted by python-tuf, the reference TUF
//! client (PyPI `tuf`), fetching over real HTTP on 127.0.0.1.
//!
//! Needs a Python with `tuf` installed: `tests/interop/setup-venv.sh` makes one under
//! `~/.cache/archy-interop-venv` (`tests/run.sh` runs it); `ARCHY_INTEROP_PYTHON` overrides.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::Digest as _;

use crate::util::{Running, copy_app, free_port};

fn interop_python() -> PathBuf {
    let python = std::env::var_os("ARCHY_INTEROP_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/archy-interop-venv/bin/python")
    });
    let ok = Command::new(&python).args(["-c", "import tuf.ngclient"]).status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import tuf: run tests/interop/setup-venv.sh (or set ARCHY_INTEROP_PYTHON)",
        python.display()
    );
    python
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn archy(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_archy"))
        .arg("--json")
        .args(args)
        .env("ARCHY_KEY", dir.join("publisher.key"))
        .output()
        .expect("run archy");
    assert!(out.status.success(), "archy {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn serve(python: &Path, dir: &Path) -> (Running, String) {
    let port = free_port();
    let child = Command::new(python)
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start http.server");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (Running(child), base)
}

#[test]
fn python_tuf_reads_an_archy_repository_with_delegations_and_rotations() {
    let python = interop_python();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let did = archy(dir, &["key", "new"])["did"].as_str().expect("did").to_owned();
    let origin = dir.join("origin");
    let origin_s = origin.to_str().expect("utf8");
    archy(dir, &["repo", "init", origin_s]);
    archy(
        dir,
        &["repo", "add-publisher", origin_s, "--name", "alice", "--did", &did, "--app", "hello-web", "--app", "wiki"],
    );

    // hello-web ships its image as an archive target next to the manifest.
    let hello = copy_app(dir, "hello-web", &did);
    let toml = std::fs::read_to_string(hello.join("archy.toml")).expect("toml");
    let archive = toml
        .lines()
        .find_map(|l| l.split("target = \"").nth(1).and_then(|r| r.split('"').next()))
        .expect("archive target")
        .to_owned();
    let archive_file = dir.join(archive.rsplit('/').next().expect("file name"));
    std::fs::write(&archive_file, b"not really an image, but the bytes python-tuf must verify").expect("archive");
    archy(
        dir,
        &["repo", "add", origin_s, hello.to_str().expect("utf8"), "--file", archive_file.to_str().expect("utf8")],
    );
    let wiki = copy_app(dir, "wiki", &did);
    archy(dir, &["repo", "add", origin_s, wiki.to_str().expect("utf8")]);
    // A root rotation and a timestamp key rotation the client must follow from root v1.
    archy(dir, &["repo", "rotate", origin_s, "--role", "root"]);
    archy(dir, &["repo", "rotate", origin_s, "--role", "timestamp"]);
    let ours = archy(dir, &["repo", "verify", origin_s]);

    let (_server, base) = serve(&python, &origin.join("repository"));
    let targets: Vec<String> =
        ours["targets"].as_array().expect("targets").iter().map(|t| t.as_str().expect("path").to_owned()).collect();
    assert_eq!(targets.len(), 5, "two envelopes, one image archive and the two icons: {targets:?}");
    let mut cmd = Command::new(&python);
    cmd.arg(repo_root().join("tests/interop/python_tuf_client.py"))
        .args(["--metadata-url", &format!("{base}/metadata/"), "--target-base-url", &format!("{base}/targets/")])
        .arg("--root")
        .arg(origin.join("repository/metadata/1.root.json"))
        .arg("--out")
        .arg(dir.join("downloads"));
    for t in &targets {
        cmd.args(["--target", t]);
    }
    let out = cmd.output().expect("run python-tuf client");
    assert!(out.status.success(), "python-tuf refused the repository: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: Value = serde_json::from_slice(&out.stdout).expect("json from python-tuf client");
    for field in ["root_version", "timestamp_version", "snapshot_version"] {
        assert_eq!(theirs[field], ours[field], "{field}");
    }
    assert_eq!(theirs["root_version"], 3);
    let archive_sha = hex::encode(sha2::Sha256::digest(std::fs::read(&archive_file).expect("archive")));
    assert_eq!(theirs["downloaded"][format!("images/{archive}")], archive_sha);
    for t in &targets {
        assert!(theirs["downloaded"][t].is_string(), "python-tuf downloaded {t}");
    }
}
