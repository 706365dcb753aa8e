//! An app's data over its life, on the real engine: the snapshot taken before an update puts
//! the volume back when the update fails (and keeps what the failed version wrote), a snapshot
//! is restored on a stopped app, old snapshots are pruned, and a backup moves an app to another
//! node with its data and generated secrets.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use crate::util::docker::*;
use crate::util::{node_bin, run_ok};
use node::orchestrator::Error;
use node::orchestrator::snapshot::Reason;

const WGET_CHECK: &str = r#""/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/""#;
const SERVE: &str = "trap 'exit 0' TERM; /bin/busybox httpd -f -p 8080 -h /www & wait";

/// The names of the files in a volume's tar copy.
fn names_in(tar_file: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar_file).unwrap());
    archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_update_that_wrote_to_its_volume_gets_the_volume_back_as_before() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("snaproll");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    // 2.0.0 migrates the data in its volume, then never becomes healthy.
    let broken = web_app(&id, "2.0.0", &image.image_id, &target(&id), port)
        .replace(SERVE, &format!("echo migrated > /www/data.txt; echo new > /www/only-in-2.txt; {SERVE}"))
        .replace(WGET_CHECK, r#""/bin/busybox", "sh", "-c", "echo migration left the data broken; exit 1""#);
    let source = source_with(vec![v1]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source.clone()).await;
    orch.install(&id, None).await.unwrap();
    let container = format!("archy_{id}_web");
    exec(&docker, &container, "echo precious > /www/data.txt").await;

    source.add(verified(&broken), [(target(&id), image.archive.clone())]);
    let err = orch.update(&id, None).await.expect_err("the update fails");
    let Error::RolledBack { reason, .. } = &err else { panic!("not a rollback: {err}") };
    assert!(reason.contains("the data is back as it was before the update (snapshot"), "{reason}");
    assert!(reason.contains("what 2.0.0 wrote is kept in snapshot"), "{reason}");

    // The volume is as it was: 1.0.0's data, nothing 2.0.0 created, owned so the app writes.
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("precious\n"));
    assert_eq!(http_get(port, "/only-in-2.txt"), None);
    exec(&docker, &container, "echo still writable > /www/after.txt").await;
    assert_eq!(http_get(port, "/after.txt").as_deref(), Some("still writable\n"));

    // Both snapshots are listed; the failed version's copy holds what it wrote.
    let snapshots = orch.snapshots(&id).unwrap();
    let to: semver::Version = "2.0.0".parse().unwrap();
    let failed = snapshots.iter().find(|s| s.reason == Reason::FailedUpdate { to: to.clone() }).expect("kept");
    assert!(snapshots.iter().any(|s| s.reason == Reason::BeforeUpdate { to: to.clone() }), "{snapshots:?}");
    assert!(reason.contains(&failed.id), "{reason}");
    let folder = orch.snapshot_path(failed).unwrap();
    assert!(names_in(&folder.join("www.tar")).iter().any(|n| n == "www/only-in-2.txt"));
    let mode = std::fs::metadata(folder.join("www.tar")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "snapshot copies are private");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_restored_on_a_stopped_app_and_what_it_replaces_is_kept() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("snaprest");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let source = source_with(vec![verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port))]).await;
    let data = data_dir("snapshots_keep = 2\n");
    let orch = orchestrator(data.path(), source).await;
    orch.install(&id, None).await.unwrap();
    let container = format!("archy_{id}_web");
    exec(&docker, &container, "echo one > /www/data.txt").await;
    let first = orch.snapshot(&id).await.unwrap();
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("one\n"), "running again after the copy");
    exec(&docker, &container, "echo two > /www/data.txt; echo later > /www/later.txt").await;

    let err = orch.restore(&id, &first.id).await.expect_err("running");
    assert!(matches!(err, Error::MustBeStopped { .. }), "{err}");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("two\n"), "a refused restore changes nothing");

    orch.stop(&id).await.unwrap();
    let replaced = orch.restore(&id, &first.id).await.unwrap().expect("the replaced data is kept");
    assert_eq!(replaced.reason, Reason::BeforeRestore { restored: first.id.clone() });
    assert_eq!(http_get(port, "/"), None, "the app stays stopped");
    orch.start(&id).await.unwrap();
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("one\n"));
    assert_eq!(http_get(port, "/later.txt"), None);

    // snapshots_keep = 2: a third snapshot prunes the oldest.
    let third = orch.snapshot(&id).await.unwrap();
    let ids: Vec<String> = orch.snapshots(&id).unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, [third.id.clone(), replaced.id.clone()], "newest first, the oldest pruned");

    // A purge deletes the snapshots with the data.
    orch.uninstall(&id, true).await.unwrap();
    assert!(orch.snapshots(&id).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_moves_an_app_to_another_node_with_its_data_and_secrets() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("backup");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let from = tempfile::tempdir().unwrap();
    let m = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    std::fs::create_dir_all(from.path().join(&id)).unwrap();
    std::fs::copy(&image.archive, from.path().join(target(&id))).unwrap();
    std::fs::write(from.path().join(format!("{id}-1.0.0.archy.json")), m.envelope().to_bytes()).unwrap();
    let node = |data: &Path, args: &[&str]| {
        let mut cmd = Command::new(node_bin());
        cmd.args(args).arg("--data").arg(data).arg("--from").arg(from.path());
        cmd
    };

    let a = data_dir("");
    run_ok(&mut node(a.path(), &["install", &id]));
    exec(&docker, &format!("archy_{id}_web"), "echo from node a > /www/data.txt").await;
    let secret_a = std::fs::read_to_string(a.path().join(format!("orchestrator/secrets/{id}/admin-password"))).unwrap();
    let backup = a.path().join("app.backup");
    let out = run_ok(&mut node(a.path(), &["backup", &id, backup.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 secrets"), "{out:?}");
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("from node a\n"), "running again after the copy");
    // Moving: the app leaves node A for good.
    run_ok(&mut node(a.path(), &["uninstall", &id, "--purge", "--yes"]));

    // Node B (its own names on the engine) restores it, running, with A's data and secret.
    let b = data_dir("engine_prefix = \"archyb\"\n");
    let backup_arg = backup.to_str().unwrap();
    run_ok(&mut node(b.path(), &["restore", "--backup", backup_arg]));
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("from node a\n"));
    let secret_file = b.path().join(format!("orchestrator/secrets/{id}/admin-password"));
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret_a);
    assert_eq!(std::fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777, 0o600);
    let env = exec(&docker, &format!("archyb_{id}_web"), "echo \"$ADMIN_PASSWORD\"").await;
    assert_eq!(env.trim(), secret_a.trim(), "the container has the restored secret");

    // Restoring again where the app is installed is refused and changes nothing.
    let again = node(b.path(), &["restore", "--backup", backup_arg]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is installed on this node"), "{again:?}");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("from node a\n"));

    // A backup whose envelope was altered is refused before anything is created.
    let forged = b.path().join("forged.backup");
    let mut archive = tar::Archive::new(std::fs::File::open(&backup).unwrap());
    let mut builder = tar::Builder::new(std::fs::File::create(&forged).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if path == Path::new("envelope.archy.json") {
            bytes = String::from_utf8(bytes).unwrap().replace("Test app", "Evil app").into_bytes();
        }
        let mut header = entry.header().clone();
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        builder.append_data(&mut header, &path, bytes.as_slice()).unwrap();
    }
    builder.finish().unwrap();
    let c = data_dir("engine_prefix = \"archyc\"\n");
    let out = node(c.path(), &["restore", "--backup", forged.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"), "{out:?}");
    assert!(!c.path().join(format!("orchestrator/secrets/{id}")).exists(), "no secret written");
    assert_eq!(volumes_of(&docker, &id).await.len(), 1, "only node B's volume exists");

    // A node whose engine names are node B's (same prefix, same engine) would fill B's volume:
    // refused, naming the owner, and nothing is written on either node.
    let d = data_dir("engine_prefix = \"archyb\"\n");
    let out = node(d.path(), &["restore", "--backup", backup_arg]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to"), "{out:?}");
    assert!(!d.path().join(format!("orchestrator/secrets/{id}")).exists(), "no secret written");
    assert!(!d.path().join(format!("orchestrator/apps/{id}")).exists(), "nothing recorded");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("from node a\n"), "node B's data untouched");

    run_ok(&mut node(b.path(), &["uninstall", &id, "--purge", "--yes"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_over_snapshot_max_mib_is_not_copied_and_the_rollback_says_so() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("snapbig");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    let broken = web_app(&id, "2.0.0", &image.image_id, &target(&id), port)
        .replace(WGET_CHECK, r#""/bin/busybox", "sh", "-c", "exit 1""#);
    let source = source_with(vec![v1]).await;
    let data = data_dir("snapshot_max_mib = 1\n");
    let orch = orchestrator(data.path(), source.clone()).await;
    orch.install(&id, None).await.unwrap();
    exec(&docker, &format!("archy_{id}_web"), "head -c 2097152 /dev/zero > /www/big").await;

    source.add(verified(&broken), [(target(&id), image.archive.clone())]);
    let err = orch.update(&id, None).await.expect_err("the update fails");
    let Error::RolledBack { reason, .. } = &err else { panic!("not a rollback: {err}") };
    assert!(
        reason.contains("except volume `www`, which was not copied (larger than snapshot_max_mib = 1 MiB)"),
        "{reason}"
    );
    let before = orch.snapshots(&id).unwrap().into_iter().find(|s| matches!(s.reason, Reason::BeforeUpdate { .. }));
    let before = before.expect("the snapshot records the volume it skipped");
    assert!(before.volumes[0].skipped.is_some() && before.bytes() == 0, "{before:?}");
    // The volume was left in place, data and all.
    assert_eq!(http_get(port, "/big").map(|b| b.len()), Some(2 << 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_filesystem_with_reflinks_a_snapshot_is_a_clone_and_a_failed_update_gets_it_back() {
    let engine = crate::util::engine::TestEngine::start_on_xfs(1024);
    let docker = engine.client().await;
    let image = test_image().await;
    let id = app_id("snapclone");
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    let broken = web_app(&id, "2.0.0", &image.image_id, &target(&id), port)
        .replace(SERVE, &format!("echo migrated > /www/data.txt; echo new > /www/only-in-2.txt; {SERVE}"))
        .replace(WGET_CHECK, r#""/bin/busybox", "sh", "-c", "exit 1""#);
    let source = source_with(vec![v1]).await;
    let data = data_dir(&format!("docker_socket = \"{}\"\n", engine.socket.display()));
    let orch = orchestrator(data.path(), source.clone()).await;
    orch.install(&id, None).await.unwrap();
    exec(&docker, &format!("archy_{id}_web"), "echo precious > /www/data.txt; head -c 8388608 /dev/zero > /www/big")
        .await;

    source.add(verified(&broken), [(target(&id), image.archive.clone())]);
    let err = orch.update(&id, None).await.expect_err("the update fails");
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("precious\n"));
    assert_eq!(http_get(port, "/only-in-2.txt"), None);
    assert_eq!(http_get(port, "/big").map(|b| b.len()), Some(8 << 20));

    // Both snapshots are clones held in engine volumes (no tar was written), counted by size.
    let snapshots = orch.snapshots(&id).unwrap();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    let mut clones = Vec::new();
    for s in &snapshots {
        let v = &s.volumes[0];
        assert!(v.bytes >= 8 << 20, "{v:?}");
        clones.push(v.clone_volume.clone().expect("a reflink clone on XFS"));
        assert!(!orch.snapshot_path(s).unwrap().join("www.tar").exists());
    }
    let mut on_engine = volumes_of(&docker, &id).await;
    on_engine.sort();
    for clone in &clones {
        assert!(on_engine.contains(clone), "{clone} not in {on_engine:?}");
    }
    // A purge deletes them with the app's volume.
    orch.uninstall(&id, true).await.unwrap();
    assert!(volumes_of(&docker, &id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_volumes_cannot_be_copied_is_not_started_and_the_app_runs_on() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let image = test_image().await;
    let id = app_id("snapfail");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    let v2 = verified(&web_app(&id, "2.0.0", &image.image_id, &target(&id), port));
    let source = source_with(vec![v1]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source.clone()).await;
    orch.install(&id, None).await.unwrap();
    // Where the snapshot would go, a file stands: the copy cannot be made.
    let snapshots = data.path().join("orchestrator/snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    std::fs::write(snapshots.join(&id), "in the way\n").unwrap();

    source.add(v2, [(target(&id), image.archive.clone())]);
    let err = orch.update(&id, None).await.expect_err("no copy, no update");
    assert!(err.to_string().contains("not started: copying its volumes failed"), "{err}");
    let status = &orch.status().await.unwrap()[0];
    assert_eq!((status.version.as_str(), status.state), ("1.0.0", node::orchestrator::AppState::Healthy), "{status:?}");
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
}
