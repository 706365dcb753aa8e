//! A developer's own loop, with the real binaries and the real engine: `archy key new`, `archy
//! app new`, edit, `archy app sign`, then `archy-node install --from` the folder the envelope was
//! written to, and the app serves.

use std::path::Path;
use std::process::Command;

use crate::util::docker::*;
use crate::util::{archy_bin, node_bin, run_ok};

fn node(data: &Path, from: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(node_bin());
    cmd.args(args).arg("--data").arg(data).arg("--from").arg(from);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_new_then_sign_then_install_from_the_folder_serves_the_app() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("loop");
    let _cleanup = Cleanup(vec![id.clone()]);
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("publisher.key");
    run_ok(Command::new(archy_bin()).args(["key", "new", "--key"]).arg(&key));
    run_ok(Command::new(archy_bin()).args(["app", "new", &id, "--dir"]).arg(work.path()).arg("--key").arg(&key));

    // The developer keeps the head `app new` wrote (id, version, their DID) and describes their
    // own container: the local image archive, served on a free port.
    let app_dir = work.path().join(&id);
    let template = std::fs::read_to_string(app_dir.join("archy.toml")).unwrap();
    let head = &template[..template.find("[[volumes]]").expect("the template has volumes")];
    let port = free_port();
    let manifest = format!(
        "{head}[[volumes]]\nname = \"www\"\n{}",
        web_container(
            "web",
            &image.image_id,
            &target(&id),
            Some(port),
            "volumes = [{ volume = \"www\", target = \"/www\" }]\ndata_uid = 65534\n"
        )
    );
    std::fs::write(app_dir.join("archy.toml"), manifest).unwrap();
    run_ok(Command::new(archy_bin()).args(["app", "validate"]).arg(&app_dir));

    // `archy app sign` in the folder the node will read: the default name is the one it reads.
    let from = work.path().join("release");
    std::fs::create_dir_all(from.join(&id)).unwrap();
    std::fs::copy(&image.archive, from.join(target(&id))).unwrap();
    let signed =
        run_ok(Command::new(archy_bin()).current_dir(&from).args(["app", "sign"]).arg(&app_dir).arg("--key").arg(&key));
    let envelope = format!("{id}-0.1.0.archy.json");
    assert!(String::from_utf8_lossy(&signed.stdout).contains(&format!("wrote {envelope}")), "{signed:?}");
    assert!(from.join(&envelope).is_file());

    let data = data_dir("");
    run_ok(&mut node(data.path(), &from, &["install", &id]));
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
    let ps: serde_json::Value =
        serde_json::from_slice(&run_ok(&mut node(data.path(), &from, &["ps", "--json"])).stdout).unwrap();
    assert_eq!(ps[0]["app"], id.as_str(), "{ps}");
    assert_eq!(ps[0]["version"], "0.1.0", "{ps}");
    assert_eq!(ps[0]["state"], "healthy", "{ps}");
    run_ok(&mut node(data.path(), &from, &["uninstall", &id, "--purge", "--yes"]));
    assert!(containers_of(&docker, &id).await.is_empty());

    // An envelope under the former name is still installed, with a warning to rename it.
    std::fs::rename(from.join(&envelope), from.join(format!("{id}-0.1.0.envelope.json"))).unwrap();
    let out = run_ok(node(data.path(), &from, &["install", &id]).env("ARCHY_LOG", "warn"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("signed envelopes are named *.archy.json now; rename this file"), "{stderr}");
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
    run_ok(&mut node(data.path(), &from, &["uninstall", &id, "--purge", "--yes"]));
}

/// An app folder for `archy app test`: the test image's web container (its archive in
/// `dist/`) on `port`, with `extra` container lines.
fn app_folder(dir: &Path, id: &str, port: u16, extra: &str, image: &TestImage) -> std::path::PathBuf {
    let (image_id, archive) = (&image.image_id, &image.archive);
    let app = dir.join(id);
    std::fs::create_dir_all(app.join("dist")).unwrap();
    let mut toml = head(id, "1.0.0");
    toml.push_str("\n[[volumes]]\nname = \"www\"\n");
    toml.push_str(&web_container(
        "web",
        image_id,
        &target(id),
        Some(port),
        &format!("volumes = [{{ volume = \"www\", target = \"/www\" }}]\ndata_uid = 65534\n{extra}"),
    ));
    std::fs::write(app.join("archy.toml"), toml).unwrap();
    std::fs::copy(archive, app.join("dist").join(target(id).rsplit('/').next().unwrap())).unwrap();
    app
}

/// The names of the engine objects an `archy app test` run of app `id` made (under the
/// `archytest-` first piece; other tests run `archy app test` at the same time).
async fn test_objects(docker: &bollard::Docker, id: &str) -> Vec<String> {
    let mut names = Vec::new();
    let all = bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).build();
    for c in docker.list_containers(Some(all)).await.unwrap() {
        names.extend(c.names.unwrap_or_default().into_iter().map(|n| n.trim_start_matches('/').to_owned()));
    }
    let volumes = docker.list_volumes(None::<bollard::query_parameters::ListVolumesOptions>).await.unwrap();
    names.extend(volumes.volumes.unwrap_or_default().into_iter().map(|v| v.name));
    for n in docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>).await.unwrap() {
        names.extend(n.name);
    }
    names.retain(|n| n.starts_with("archytest-") && n.contains(id));
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_test_walks_the_lifecycle_beside_a_real_install_of_the_same_app() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("apptest");
    let _cleanup = Cleanup(vec![id.clone()]);
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let app = app_folder(work.path(), &id, port, "", &image);

    // A node already runs the same app on the same engine, on the declared port.
    let from = work.path().join("release");
    std::fs::create_dir_all(from.join(&id)).unwrap();
    std::fs::copy(&image.archive, from.join(target(&id))).unwrap();
    let m = verified(&std::fs::read_to_string(app.join("archy.toml")).unwrap());
    std::fs::write(from.join(format!("{id}-1.0.0.archy.json")), m.envelope().to_bytes()).unwrap();
    let data = data_dir("");
    run_ok(&mut node(data.path(), &from, &["install", &id]));
    let before = containers_of(&docker, &id).await;
    assert_eq!(before.len(), 1);

    let out = Command::new(archy_bin()).args(["--json", "app", "test"]).arg(&app).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    let steps: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "install",
            "healthy",
            "port 8080/tcp answers".replace("8080", &port.to_string()).as_str(),
            "write data",
            "restart",
            "stop",
            "start",
            "update to 1.0.1",
            "data survived the update",
            "uninstall",
            "purge"
        ]
    );
    assert!(report["steps"].as_array().unwrap().iter().all(|s| s["ok"] == true), "{report:#}");
    assert!(report["steps"][2]["detail"].as_str().unwrap().starts_with("HTTP 200"), "{report:#}");
    assert!(test_objects(&docker, &id).await.is_empty(), "the test left objects behind");

    // The real install was never touched: same container, still serving.
    let after = containers_of(&docker, &id).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id);
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));
    run_ok(&mut node(data.path(), &from, &["uninstall", &id, "--purge", "--yes"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_test_names_the_first_failing_step_with_the_containers_last_log_lines() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("apptestfail");
    let _cleanup = Cleanup(vec![id.clone()]);
    let work = tempfile::tempdir().unwrap();
    // The page is served, but the healthcheck asks for one that is not there.
    let app = app_folder(work.path(), &id, free_port(), "", &image);
    let toml = std::fs::read_to_string(app.join("archy.toml")).unwrap();
    let toml = toml.replace(
        "command = [\"sh\", \"-c\", \"trap 'exit 0' TERM; /bin/busybox httpd -f -p 8080 -h /www & wait\"]",
        "command = [\"sh\", \"-c\", \"echo starting the broken app; trap 'exit 0' TERM; /bin/busybox httpd -f -p 8080 -h /www & wait\"]",
    );
    let toml = toml.replace("http://127.0.0.1:8080/", "http://127.0.0.1:8080/missing");
    std::fs::write(app.join("archy.toml"), toml).unwrap();

    let out =
        Command::new(archy_bin()).args(["app", "test"]).arg(&app).args(["--timeout-secs", "20"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("FAIL install"), "{stdout}");
    assert!(stdout.contains("failed at `install`"), "{stdout}");
    assert!(stdout.contains("is unhealthy"), "{stdout}");
    assert!(stdout.contains("last log lines:") && stdout.contains("starting the broken app"), "{stdout}");
    assert!(test_objects(&docker, &id).await.is_empty(), "a failed test leaves nothing behind");
}

/// `archy app new --template NAME`, then the folder's own `build.sh`, then `archy app test`:
/// each template passes every step with nothing edited, on an engine that reaches no registry.
fn template_passes_app_test_as_written(template: &str) {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let id = app_id(template);
    let _cleanup = Cleanup(vec![id.clone()]);
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("publisher.key");
    run_ok(Command::new(archy_bin()).args(["key", "new", "--key"]).arg(&key));
    let new = run_ok(
        Command::new(archy_bin())
            .args(["app", "new", &id, "--template", template, "--dir"])
            .arg(work.path())
            .arg("--key")
            .arg(&key),
    );
    let app = work.path().join(&id);
    assert!(String::from_utf8_lossy(&new.stdout).contains(&format!("{}/build.sh", app.display())), "{new:?}");
    run_ok(Command::new(archy_bin()).args(["app", "validate"]).arg(&app));

    let built = run_ok(&mut Command::new(app.join("build.sh")));
    let image_id = String::from_utf8_lossy(&built.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("image_id ").map(str::to_owned))
        .expect("build.sh prints the image id");
    let _image = RemoveImage(format!("archy.local/{id}:0.1.0"));
    let manifest = std::fs::read_to_string(app.join("archy.toml")).unwrap();
    assert!(manifest.contains(&format!("image_id = \"{image_id}\"")), "build.sh wrote the image id");
    assert!(app.join(format!("dist/{id}-0.1.0.tar")).is_file());

    let out = Command::new(archy_bin()).args(["--json", "app", "test"]).arg(&app).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["ok"] == true), "{report:#}");
    for step in ["install", "healthy", "update to 0.1.1", "data survived the update", "purge"] {
        assert!(steps.iter().any(|s| s["step"] == step), "no step {step}: {report:#}");
    }
    let port = steps.iter().find(|s| s["step"].as_str().unwrap().starts_with("port ")).expect("a port step");
    assert!(port["detail"].as_str().unwrap().starts_with("HTTP "), "{report:#}");
}

/// Removes an image tag the test built, even when the test fails.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["image", "rm", "--force", &self.0]).output();
    }
}

#[test]
fn the_web_template_passes_app_test_as_written() {
    template_passes_app_test_as_written("web");
}

#[test]
fn the_web_db_template_passes_app_test_as_written() {
    template_passes_app_test_as_written("web-db");
}

#[test]
fn the_file_share_template_passes_app_test_as_written() {
    template_passes_app_test_as_written("file-share");
}
