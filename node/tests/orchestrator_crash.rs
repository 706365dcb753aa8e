//! `archy-node` killed with SIGKILL in the middle of an install or an update converges on its
//! next run, with no duplicate container and no lost data. The real binary runs with
//! `ARCHY_TEST_PAUSE_AT=<step>`, which makes it stop at that step (and say so on stderr) so the
//! test kills it exactly there.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::docker::*;
use catalog::envelope::VerifiedManifest;

/// A folder of signed envelopes and the archive, for `--from`.
fn envelope_dir(dir: &Path, manifests: &[&VerifiedManifest], archive: &Path) {
    for m in manifests {
        let name = format!("{}-{}.archy.json", m.manifest().id, m.manifest().version);
        std::fs::write(dir.join(name), m.envelope().to_bytes()).unwrap();
        for c in &m.manifest().containers {
            if let catalog::manifest::Image::Archive { target, .. } = &c.image {
                let path = dir.join(target);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                if !path.exists() {
                    std::fs::copy(archive, &path).unwrap();
                }
            }
        }
    }
}

fn node(data: &Path, from: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(crate::util::node_bin());
    cmd.args(args).arg("--data").arg(data).arg("--from").arg(from);
    cmd
}

/// Runs `args` until it reports `paused at <step>`, then SIGKILLs it.
fn run_and_kill_at(data: &Path, from: &Path, args: &[&str], step: &str) {
    let mut child = node(data, from, args)
        .env("ARCHY_TEST_PAUSE_AT", step)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("archy-node runs");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains(&format!("paused at {step}")) {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
            return;
        }
        seen.push(line);
    }
    let status = child.wait().unwrap();
    panic!("archy-node {args:?} ended ({status}) without reaching {step}: {seen:?}");
}

fn ok(data: &Path, from: &Path, args: &[&str]) -> String {
    let out = node(data, from, args).output().unwrap();
    assert!(
        out.status.success(),
        "archy-node {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ps(data: &Path, from: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(data, from, &["ps", "--json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_install_and_mid_update_converges_without_duplicates_or_data_loss() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("crash");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    let v2 = verified(&web_app(&id, "1.1.0", &image.image_id, &target(&id), port));
    let from = tempfile::tempdir().unwrap();
    envelope_dir(from.path(), &[&v1], &image.archive);
    let data = data_dir("");
    let (d, f) = (data.path(), from.path());
    let container = format!("archy_{id}_web");

    // 1. Killed right after the desired state was written, before any container exists.
    run_and_kill_at(d, f, &["install", &id], "after-desired-state");
    assert!(containers_of(&docker, &id).await.is_empty());
    ok(d, f, &["reconcile"]);
    assert_eq!(containers_of(&docker, &id).await.len(), 1);
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
    let status = ps(d, f);
    assert_eq!(status[0]["state"], "healthy", "{status}");
    assert!(status[0]["pending"].is_null(), "{status}");
    exec(&docker, &container, "echo survived > /www/data.txt").await;

    // 2. Killed after the container was created, before it started: a new install of the same
    // app after an uninstall adopts it instead of creating a second one.
    ok(d, f, &["uninstall", &id]);
    run_and_kill_at(d, f, &["install", &id], &format!("after-create:{container}"));
    let created = containers_of(&docker, &id).await;
    assert_eq!(created.len(), 1);
    ok(d, f, &["install", &id]);
    let after = containers_of(&docker, &id).await;
    assert_eq!(after.len(), 1, "no duplicate");
    assert_eq!(after[0].id, created[0].id, "the container made before the kill is adopted");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("survived\n"));

    // 3. Killed mid-update, after the new version's container replaced the old one.
    envelope_dir(f, &[&v2], &image.archive);
    run_and_kill_at(d, f, &["update", &id, "--to", "1.1.0"], &format!("after-create:{container}"));
    ok(d, f, &["reconcile"]);
    let after = containers_of(&docker, &id).await;
    assert_eq!(after.len(), 1, "no duplicate");
    assert_eq!(after[0].labels.as_ref().unwrap()["archy.version"], "1.1.0");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("survived\n"), "no data lost");
    let status = ps(d, f);
    assert_eq!(status[0]["version"], "1.1.0");
    assert_eq!(status[0]["state"], "healthy", "{status}");
    assert!(status[0]["pending"].is_null(), "{status}");

    // Purge through the CLI needs --yes without a terminal.
    let out = node(d, f, &["uninstall", &id, "--purge"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(volumes_of(&docker, &id).await.len(), 1, "nothing deleted without confirmation");
    ok(d, f, &["uninstall", &id, "--purge", "--yes"]);
    assert!(volumes_of(&docker, &id).await.is_empty());
    assert!(containers_of(&docker, &id).await.is_empty());
}
