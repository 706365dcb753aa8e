//! What goes wrong, and what the operator sees: a failed update rolls back, the policy gate
//! refuses, secrets are reused, dependencies are installed first, and a container deleted
//! behind archy's back comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::docker::*;
use node::orchestrator::{AppState, Error, run_reconciler};

const WGET_CHECK: &str = r#""/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_update_rolls_back_to_the_previous_version_and_says_why() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("rollback");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    // 2.0.0's healthcheck never passes.
    let broken = web_app(&id, "2.0.0", &image.image_id, &target(&id), port)
        .replace(WGET_CHECK, r#""/bin/busybox", "sh", "-c", "echo database migration failed; exit 1""#);
    let v2 = verified(&broken);
    let source = source_with(vec![v1]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source.clone()).await;
    orch.install(&id, None).await.unwrap();
    exec(&docker, &format!("archy_{id}_web"), "echo precious > /www/data.txt").await;

    source.add(v2, [(target(&id), image.archive.clone())]);
    let err = orch.update(&id, None).await.expect_err("the update fails");
    let Error::RolledBack { from, to, reason, .. } = &err else { panic!("not a rollback: {err}") };
    assert_eq!((from.as_str(), to.as_str()), ("1.0.0", "2.0.0"));
    assert!(reason.contains("unhealthy") && reason.contains("database migration failed"), "{reason}");

    let status = &orch.status().await.unwrap()[0];
    assert_eq!(status.version, "1.0.0");
    assert_eq!(status.state, AppState::Healthy, "{status:?}");
    let last = status.last_update.as_ref().expect("the rollback is reported");
    assert!(last.rolled_back.as_deref().is_some_and(|r| r.contains("unhealthy")));
    let containers = containers_of(&docker, &id).await;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].labels.as_ref().unwrap()["archy.version"], "1.0.0");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("precious\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refuses_ungranted_permissions_before_creating_anything() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("policy");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("file.txt"), "from the host\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = shared.path().display().to_string();
    let mut toml = head(&id, "1.0.0");
    toml.push_str(&format!(
        "permissions = [{{ kind = \"host_path\", host = \"{host}\", target = \"/www/shared\", read_only = true }}]\n"
    ));
    toml.push_str(&web_container(
        "web",
        &image.image_id,
        &target(&id),
        Some(port),
        &format!("binds = [{{ host = \"{host}\", target = \"/www/shared\", read_only = true }}]\n"),
    ));
    let manifest = verified(&toml);

    let data = data_dir("");
    let orch = orchestrator(data.path(), source_with(vec![manifest.clone()]).await).await;
    let err = orch.install(&id, None).await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, Error::PolicyRefused { .. }), "{text}");
    assert!(text.contains(&format!("app `{id}`")) && text.contains(&format!("host_path {host}")), "{text}");
    assert!(containers_of(&docker, &id).await.is_empty());
    assert!(networks_of(&docker, &id).await.is_empty());
    assert!(orch.status().await.unwrap().is_empty());

    // A privileged container is refused the same way, naming the permission.
    let mut privileged = head(&id, "1.0.1");
    privileged.push_str("permissions = [{ kind = \"privileged\" }]\n");
    privileged.push_str(&web_container("web", &image.image_id, &target(&id), None, "privileged = true\n"));
    let orch2 = orchestrator(data.path(), source_with(vec![verified(&privileged)]).await).await;
    let err = orch2.install(&id, None).await.expect_err("refused");
    assert!(err.to_string().contains("needs permission `privileged`"), "{err}");

    // Granted in config.toml: it installs, and the host folder is visible read-only.
    let granted = data_dir(&format!(
        "[apps.{id}]\npermissions = [{{ kind = \"host_path\", host = \"{host}\", read_only = true }}]\n"
    ));
    let orch = orchestrator(granted.path(), source_with(vec![manifest]).await).await;
    orch.install(&id, None).await.expect("granted");
    assert_eq!(http_get(port, "/shared/file.txt").as_deref(), Some("from the host\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_secret_is_private_and_reused_across_update_reinstall_and_node_restart() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("secret");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    let v2 = verified(&web_app(&id, "1.0.1", &image.image_id, &target(&id), port));
    let data = data_dir("");
    let source = source_with(vec![v1]).await;
    let container = format!("archy_{id}_web");
    let injected = || async {
        let env = docker.inspect_container(&container, None).await.unwrap().config.unwrap().env.unwrap();
        env.into_iter().find_map(|e| e.strip_prefix("ADMIN_PASSWORD=").map(str::to_owned)).expect("injected")
    };

    let orch = orchestrator(data.path(), source.clone()).await;
    orch.install(&id, None).await.unwrap();
    let file = data.path().join(format!("orchestrator/secrets/{id}/admin-password"));
    let value = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value.len(), 24);
    assert!(value.bytes().all(|b| b.is_ascii_alphanumeric()));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(injected().await, value);

    source.add(v2, [(target(&id), image.archive.clone())]);
    orch.update(&id, None).await.unwrap();
    assert_eq!(injected().await, value, "kept by update");
    orch.uninstall(&id, false).await.unwrap();
    orch.install(&id, None).await.unwrap();
    assert_eq!(injected().await, value, "kept by reinstall");
    drop(orch);
    let orch = orchestrator(data.path(), source).await;
    orch.reconcile_once(true).await.unwrap();
    assert_eq!(injected().await, value, "kept by node restart");
    // The value is in no state file but its own.
    for entry in walk(&data.path().join("orchestrator")) {
        if entry != file {
            let text = std::fs::read(&entry).unwrap();
            assert!(!String::from_utf8_lossy(&text).contains(&value), "secret found in {}", entry.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_generated_secret_is_not_replaced_and_the_app_is_not_started() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let image = test_image().await;
    let id = app_id("lostsecret");
    let _cleanup = Cleanup(vec![id.clone()]);
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), free_port()));
    let data = data_dir("");
    let orch = orchestrator(data.path(), source_with(vec![v1]).await).await;
    orch.install(&id, None).await.unwrap();
    let file = data.path().join(format!("orchestrator/secrets/{id}/admin-password"));
    std::fs::remove_file(&file).unwrap();

    // Reinstalling (or anything that applies the app) refuses instead of making a new value.
    orch.uninstall(&id, false).await.unwrap();
    let err = orch.install(&id, None).await.expect_err("a lost secret is refused");
    assert!(
        matches!(&err, node::orchestrator::Error::SecretLost { app, name, .. } if *app == id && name == "admin-password"),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("archy-node uninstall {id} --purge --yes")), "{err}");
    assert!(!file.exists(), "a new value was generated");

    // Purging the app's data for good lets it start afresh, with a new secret.
    orch.uninstall(&id, true).await.unwrap();
    orch.install(&id, None).await.unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap().len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_damaged_desired_state_stops_nothing_else() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let (damaged, healthy) = (app_id("damaged"), app_id("healthy"));
    let _cleanup = Cleanup(vec![damaged.clone(), healthy.clone()]);
    let (port_d, port_h) = (free_port(), free_port());
    let data = data_dir("");
    let source = source_with(vec![
        verified(&web_app(&damaged, "1.0.0", &image.image_id, &target(&damaged), port_d)),
        verified(&web_app(&healthy, "1.0.0", &image.image_id, &target(&healthy), port_h)),
    ])
    .await;
    let orch = orchestrator(data.path(), source).await;
    orch.install(&damaged, None).await.unwrap();
    orch.install(&healthy, None).await.unwrap();
    let state = data.path().join(format!("orchestrator/apps/{damaged}/state.json"));
    std::fs::write(&state, b"{ not json").unwrap();
    let damaged_containers = containers_of(&docker, &damaged).await;
    assert_eq!(damaged_containers.len(), 1);

    // `ps` reports the damaged app and still shows the other.
    let status = orch.status().await.expect("status despite a damaged app");
    let of = |id: &str| status.iter().find(|s| s.app == id).unwrap_or_else(|| panic!("{id} not listed"));
    assert_eq!(of(&damaged).state, node::orchestrator::AppState::Failed);
    assert!(of(&damaged).reason.as_deref().unwrap_or_default().contains("state.json"), "{:?}", of(&damaged).reason);
    assert_ne!(of(&healthy).state, node::orchestrator::AppState::Failed);

    // The reconciler keeps managing the healthy app, and leaves the damaged one's containers.
    for c in containers_of(&docker, &healthy).await {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build();
        docker.remove_container(c.id.as_deref().unwrap(), Some(options)).await.unwrap();
    }
    let report = orch.reconcile_once(true).await.expect("reconcile despite a damaged app");
    assert!(report.failed.iter().any(|(app, why)| *app == damaged && why.contains("state.json")), "{report:?}");
    assert_eq!(containers_of(&docker, &healthy).await.len(), 1, "the healthy app was converged");
    let left: Vec<_> = containers_of(&docker, &damaged).await.into_iter().map(|c| c.id).collect();
    assert_eq!(left, damaged_containers.into_iter().map(|c| c.id).collect::<Vec<_>>(), "left as it was");

    // Uninstalling is the way out.
    orch.uninstall(&damaged, false).await.expect("uninstall a damaged app");
    assert!(containers_of(&docker, &damaged).await.is_empty());
}

/// The host addresses `app`'s container publishes its ports on.
async fn published_on(docker: &bollard::Docker, app: &str) -> Vec<String> {
    let mut ips = Vec::new();
    for c in containers_of(docker, app).await {
        let inspected = docker.inspect_container(c.id.as_deref().unwrap(), None).await.unwrap();
        for bindings in inspected.host_config.unwrap().port_bindings.unwrap_or_default().into_values().flatten() {
            ips.extend(bindings.into_iter().map(|b| b.host_ip.unwrap_or_default()));
        }
    }
    ips
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_are_published_on_loopback_unless_granted_and_low_ports_need_a_grant() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let (local, lan, low) = (app_id("local"), app_id("lan"), app_id("low"));
    let _cleanup = Cleanup(vec![local.clone(), lan.clone(), low.clone()]);
    let manifests = vec![
        verified(&web_app(&local, "1.0.0", &image.image_id, &target(&local), free_port())),
        verified(&web_app(&lan, "1.0.0", &image.image_id, &target(&lan), free_port())),
        verified(&web_app(&low, "1.0.0", &image.image_id, &target(&low), 80)),
    ];
    // No `publish_ip` in the config: the default.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("config.toml"),
        format!("[apps.{lan}]\npermissions = [{{ kind = \"lan_ports\" }}]\n"),
    )
    .unwrap();
    let orch = orchestrator(data.path(), source_with(manifests).await).await;

    orch.install(&local, None).await.unwrap();
    assert_eq!(published_on(&docker, &local).await, vec!["127.0.0.1".to_owned()], "this host only");
    orch.install(&lan, None).await.unwrap();
    let lan_ips = published_on(&docker, &lan).await;
    assert!(
        !lan_ips.is_empty() && lan_ips.iter().all(|ip| ip.is_empty() || ip == "0.0.0.0" || ip == "::"),
        "{lan_ips:?}"
    );

    let err = orch.install(&low, None).await.expect_err("port 80 needs a grant");
    assert!(err.to_string().contains("low_ports (host port 80/tcp)"), "{err}");
    assert!(err.to_string().contains(r#"{ kind = "low_ports" }"#), "{err}");
    assert!(containers_of(&docker, &low).await.is_empty(), "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_in_a_granted_folder_does_not_lead_out_of_it() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("symlink");
    let _cleanup = Cleanup(vec![id.clone()]);
    let granted = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(granted.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // What an app with write access to the granted folder could leave there.
    std::os::unix::fs::symlink("/etc", granted.path().join("evil")).unwrap();
    let host = granted.path().display().to_string();
    let evil = format!("{host}/evil");
    let mut toml = head(&id, "1.0.0");
    toml.push_str(&format!(
        "permissions = [{{ kind = \"host_path\", host = \"{evil}\", target = \"/www/shared\", read_only = true }}]\n"
    ));
    toml.push_str(&web_container(
        "web",
        &image.image_id,
        &target(&id),
        Some(free_port()),
        &format!("binds = [{{ host = \"{evil}\", target = \"/www/shared\", read_only = true }}]\n"),
    ));
    let data = data_dir(&format!(
        "[apps.{id}]\npermissions = [{{ kind = \"host_path\", host = \"{host}\", read_only = true }}]\n"
    ));
    let orch = orchestrator(data.path(), source_with(vec![verified(&toml)]).await).await;
    let err = orch.install(&id, None).await.expect_err("the symlink leads out of the grant");
    assert!(matches!(err, Error::PolicyRefused { .. }), "{err}");
    assert!(err.to_string().contains(&format!("host_path {evil} resolves to /etc")), "{err}");
    assert!(containers_of(&docker, &id).await.is_empty(), "nothing created");
    assert!(orch.status().await.unwrap().is_empty(), "nothing is recorded as installed");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_are_installed_first_at_a_matching_version() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let base = app_id("base");
    let top = app_id("top");
    let _cleanup = Cleanup(vec![base.clone(), top.clone()]);
    let app = |id: &str, version: &str, deps: &str| {
        let mut t = head(id, version);
        t.push_str(deps);
        t.push_str(&web_container("web", &image.image_id, &target(id), None, ""));
        verified(&t)
    };
    let source = source_with(vec![
        app(&base, "1.0.0", ""),
        app(&base, "1.4.0", ""),
        app(&base, "2.0.0", ""),
        app(&top, "1.0.0", &format!("[dependencies]\n{base} = \"^1.2\"\n")),
    ])
    .await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;
    let report = orch.install(&top, None).await.unwrap();
    assert_eq!(report.installed, vec![(base.clone(), "1.4.0".to_owned()), (top.clone(), "1.0.0".to_owned())]);
    assert_eq!(containers_of(&docker, &base).await.len(), 1);
    let err = orch.uninstall(&base, false).await.expect_err("needed");
    assert!(err.to_string().contains(&format!("needed by `{top}`")), "{err}");
    // An update of the dependency past the requirement is refused by the dependent's check on
    // its next install/update; the installed versions stay as they are.
    assert_eq!(orch.status().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_deleted_behind_archys_back_is_recreated_by_the_reconciler() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("recreate");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let data = data_dir("");
    let source = source_with(vec![verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port))]).await;
    let orch = Arc::new(orchestrator(data.path(), source).await);
    orch.install(&id, None).await.unwrap();
    let container = format!("archy_{id}_web");
    let old = docker.inspect_container(&container, None).await.unwrap().id.unwrap();

    // The interval is an hour: only the engine's events can bring the container back.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reconciler = tokio::spawn(run_reconciler(orch.clone(), Duration::from_secs(3600), async {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build();
    docker.remove_container(&container, Some(options)).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = http_get(port, "/data.txt").or_else(|| http_get(port, "/")) {
            assert_eq!(body, "hello from archy\n");
            break;
        }
        assert!(Instant::now() < deadline, "the container was not recreated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now = containers_of(&docker, &id).await;
    assert_eq!(now.len(), 1, "exactly one container");
    assert_ne!(now[0].id.as_deref(), Some(old.as_str()), "a new container");
    let _ = stop_tx.send(());
    reconciler.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_never_switches_an_installed_app_to_another_publisher() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let image = test_image().await;
    let id = app_id("publisher");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let v1 = verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port));
    // Someone else offers a newer version under the same app id (as anyone can on Nostr).
    let other = catalog::keys::SigningKey::generate();
    let toml = web_app(&id, "9.0.0", &image.image_id, &target(&id), port)
        .replace(&publisher().did().to_string(), &other.did().to_string());
    let manifest = catalog::manifest::Manifest::from_toml_str(&toml, &catalog::manifest::Limits::default()).unwrap();
    let theirs = catalog::envelope::SignedEnvelope::sign(&manifest, &other)
        .unwrap()
        .verify(&catalog::manifest::Limits::default())
        .unwrap();
    let source = source_with(vec![v1]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source.clone()).await;
    orch.install(&id, None).await.unwrap();

    source.add(theirs, [(target(&id), image.archive.clone())]);
    let err = orch.update(&id, None).await.expect_err("another publisher's version");
    assert!(matches!(err, Error::OtherPublisher { .. }), "{err}");
    assert!(err.to_string().contains(&other.did().to_string()), "{err}");
    let status = &orch.status().await.unwrap()[0];
    assert_eq!(status.version, "1.0.0", "the installed app is untouched");
}
