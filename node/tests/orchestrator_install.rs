//! Installing apps through the real Docker engine, offline: images arrive as archives.

use std::sync::Arc;

use crate::util::docker::*;
use node::orchestrator::{AppState, Error, MemorySource};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_container_app_installs_from_its_archive_and_answers_from_the_host() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let id = app_id("single");
    let _cleanup = Cleanup(vec![id.clone()]);
    // A fresh image that is not on the engine: the install must `docker load` it.
    let tag = format!("archy-test/{id}:1");
    let _image_cleanup = ImageCleanup(tag.clone());
    let image_id = build_image(&docker, &tag, &id).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    save_image(&docker, &tag, &archive).await;
    docker.remove_image(&tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await.unwrap();
    assert!(docker.inspect_image(&image_id).await.is_err(), "the image is gone before the install");

    let port = free_port();
    let manifest = verified(&web_app(&id, "1.0.0", &image_id, &target(&id), port));
    let source = Arc::new(MemorySource::default());
    source.add(manifest, [(target(&id), archive)]);
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;

    let report = orch.install(&id, None).await.expect("install");
    assert_eq!(report.installed, vec![(id.clone(), "1.0.0".to_owned())]);
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"));

    // Labels, name, limits, user, tmpfs and restart policy as the manifest says.
    let c = docker.inspect_container(&format!("archy_{id}_web"), None).await.unwrap();
    let labels = c.config.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels["archy.managed"], "true");
    assert_eq!(labels["archy.app"], id);
    assert_eq!(labels["archy.version"], "1.0.0");
    assert_eq!(labels["archy.role"], "web");
    assert_eq!(c.image.as_deref(), Some(image_id.as_str()));
    let hc = c.host_config.as_ref().unwrap();
    assert_eq!(hc.memory, Some(32 * 1024 * 1024));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(c.config.as_ref().unwrap().user.as_deref(), Some("65534:65534"));
    let env = c.config.as_ref().unwrap().env.clone().unwrap();
    assert!(env.contains(&"APP_VERSION=1.0.0".to_owned()), "{env:?}");
    assert!(exec(&docker, &format!("archy_{id}_web"), "cat /proc/mounts").await.contains("/tmp"));
    assert_eq!(volumes_of(&docker, &id).await, vec![format!("archy_{id}_www")]);
    assert_eq!(networks_of(&docker, &id).await, vec![format!("archy_{id}")]);

    // data_uid: the container user owns its volume's root and can write there.
    let wrote = exec(&docker, &format!("archy_{id}_web"), "echo kept > /www/data.txt && echo ok").await;
    assert_eq!(wrote.trim(), "ok");
    assert_eq!(http_get(port, "/data.txt").as_deref(), Some("kept\n"));

    let status = orch.status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].state, AppState::Healthy, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_container_app_starts_in_dependency_order_and_its_containers_talk() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("multi");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let mut toml = head(&id, "2.1.0");
    // Declared web first: the plan still starts db first, and waits for it to be healthy.
    toml.push_str(&web_container(
        "web",
        &image.image_id,
        &target(&id),
        Some(port),
        "depends_on = [\"db\"]\nenv = { UPSTREAM = \"db:8080\" }\nderived_env = { APP_VERSION = \"app_version\" }\n",
    ));
    toml.push_str(&web_container("db", &image.image_id, &target(&id), None, ""));
    let source = source_with(vec![verified(&toml)]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;
    orch.install(&id, None).await.expect("install");

    // The web container reaches db by its name on the app's own network.
    let page = http_get(port, "/cgi-bin/upstream").expect("web answers");
    assert_eq!(page, "version=2.1.0\nhello from archy\n");
    let db = docker.inspect_container(&format!("archy_{id}_db"), None).await.unwrap();
    let web = docker.inspect_container(&format!("archy_{id}_web"), None).await.unwrap();
    let started = |c: &bollard::models::ContainerInspectResponse| c.state.as_ref().unwrap().started_at.clone().unwrap();
    assert!(started(&db) < started(&web), "db started before web");
    let status = orch.status().await.unwrap();
    assert_eq!(status[0].state, AppState::Healthy);
    let roles: Vec<&str> = status[0].containers.iter().map(|c| c.role.as_str()).collect();
    assert_eq!(roles, ["db", "web"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_holding_another_image_creates_nothing() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    test_image().await;
    let id = app_id("mismatch");
    let _cleanup = Cleanup(vec![id.clone()]);
    let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let manifest = verified(&web_app(&id, "1.0.0", wrong, &target(&id), free_port()));
    let source = source_with(vec![manifest]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;
    let err = orch.install(&id, None).await.expect_err("refused");
    assert!(matches!(err, Error::ImageMismatch { .. }), "{err}");
    assert!(err.to_string().contains(wrong), "{err}");
    assert!(containers_of(&docker, &id).await.is_empty());
    assert!(volumes_of(&docker, &id).await.is_empty());
    assert!(networks_of(&docker, &id).await.is_empty());
    assert!(orch.status().await.unwrap().is_empty(), "nothing is recorded as installed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_cannot_retag_an_image_the_operator_uses() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let operators = test_image().await;
    let id = app_id("retag");
    let _cleanup = Cleanup(vec![id.clone()]);
    // The app's own image, saved under a name the operator uses for another image, then gone
    // from the engine so that installing loads it from the archive.
    let victim = format!("{id}-victim:latest");
    let app_image = build_image(&docker, &victim, &id).await;
    let archive = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{id}.tar"));
    save_image(&docker, &victim, &archive).await;
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::new().force(true).build();
    docker.remove_image(&victim, Some(options), None).await.expect("remove the app image");
    let (repo, tag) = victim.split_once(':').expect("repo:tag");
    let tag_options = bollard::query_parameters::TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
    docker.tag_image(&operators.image_id, Some(tag_options)).await.expect("the operator's tag");

    let source = Arc::new(MemorySource::default());
    source
        .add(verified(&web_app(&id, "1.0.0", &app_image, &target(&id), free_port())), [(target(&id), archive.clone())]);
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;
    let installed = orch.install(&id, None).await;
    let victim_now = docker.inspect_image(&victim).await.expect("the operator's tag is still there").id;
    let app_loaded = docker.inspect_image(&app_image).await.is_ok();
    // Leave the engine as it was before asserting.
    let _ = docker.remove_image(&victim, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
    let _ = std::fs::remove_file(&archive);
    installed.expect("installs from the archive");
    assert_eq!(victim_now.as_deref(), Some(operators.image_id.as_str()), "the archive retagged the operator's image");
    assert!(app_loaded, "the app's image was loaded by id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_get_no_new_privileges_fewer_capabilities_and_a_process_limit() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("hardened");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let source = source_with(vec![verified(&web_app(&id, "1.0.0", &image.image_id, &target(&id), port))]).await;
    let data = data_dir("");
    let orch = orchestrator(data.path(), source).await;
    orch.install(&id, None).await.unwrap();
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"), "the app still works");
    let containers = containers_of(&docker, &id).await;
    let inspected = docker.inspect_container(containers[0].id.as_deref().unwrap(), None).await.unwrap();
    let host = inspected.host_config.unwrap();
    assert!(host.security_opt.unwrap_or_default().contains(&"no-new-privileges:true".to_owned()));
    let dropped = host.cap_drop.unwrap_or_default();
    for cap in ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"] {
        assert!(dropped.iter().any(|c| c.trim_start_matches("CAP_") == cap), "{cap} not dropped: {dropped:?}");
    }
    assert_eq!(host.pids_limit, Some(1024));
}

/// The bounding set of the container's processes as `/proc/self/status` shows it (a hex mask of
/// capability numbers).
async fn bounding_set(docker: &bollard::Docker, container: &str) -> u64 {
    let status = exec(docker, container, "cat /proc/self/status").await;
    let line = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap_or_else(|| panic!("{status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

/// `cap_add` with the operator's grant: the engine is asked to add the capability and not to
/// drop it, and the container's processes can hold it; the other defaults stay. Without the
/// grant nothing of the app is created and the refusal names the grant to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capability_the_manifest_adds_runs_only_when_granted_and_leaves_the_drop_list() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("caps");
    let _cleanup = Cleanup(vec![id.clone()]);
    let port = free_port();
    let mut toml = head(&id, "1.0.0");
    toml.push_str(
        "permissions = [{ kind = \"capability\", name = \"NET_ADMIN\" }, { kind = \"capability\", name = \"NET_RAW\" }]\n\
         [[volumes]]\nname = \"www\"\n",
    );
    toml.push_str(&web_container(
        "web",
        &image.image_id,
        &target(&id),
        Some(port),
        "volumes = [{ volume = \"www\", target = \"/www\" }]\ndata_uid = 65534\ncap_add = [\"NET_ADMIN\", \"NET_RAW\"]\n",
    ));
    let manifest = verified(&toml);

    // Not granted: refused before anything exists, naming each capability and its grant.
    let data = data_dir("");
    let orch = orchestrator(data.path(), source_with(vec![manifest.clone()]).await).await;
    let err = orch.install(&id, None).await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, Error::PolicyRefused { .. }), "{text}");
    assert!(text.contains("container web needs permission `capability NET_ADMIN`"), "{text}");
    assert!(text.contains("container web needs permission `capability NET_RAW`"), "{text}");
    assert!(
        text.contains(&format!(
            "[apps.{id}]\n  permissions = [{{ kind = \"capability\", name = \"NET_ADMIN\" }}, {{ kind = \"capability\", name = \"NET_RAW\" }}]"
        )),
        "{text}"
    );
    assert!(containers_of(&docker, &id).await.is_empty());
    assert!(volumes_of(&docker, &id).await.is_empty());
    assert!(networks_of(&docker, &id).await.is_empty());
    assert!(orch.status().await.unwrap().is_empty(), "nothing is recorded as installed");

    // One of the two granted is still a refusal, of the other one only.
    let half = data_dir(&format!("[apps.{id}]\npermissions = [{{ kind = \"capability\", name = \"NET_ADMIN\" }}]\n"));
    let orch = orchestrator(half.path(), source_with(vec![manifest.clone()]).await).await;
    let text = orch.install(&id, None).await.expect_err("refused").to_string();
    assert!(text.contains("`capability NET_RAW`") && !text.contains("`capability NET_ADMIN`"), "{text}");
    assert!(containers_of(&docker, &id).await.is_empty());

    // Granted: installed, and the engine holds exactly that relaxation.
    let granted = data_dir(&format!(
        "[apps.{id}]\npermissions = [{{ kind = \"capability\", name = \"NET_ADMIN\" }}, {{ kind = \"capability\", name = \"NET_RAW\" }}]\n"
    ));
    let orch = orchestrator(granted.path(), source_with(vec![manifest]).await).await;
    orch.install(&id, None).await.expect("granted");
    assert_eq!(http_get(port, "/").as_deref(), Some("hello from archy\n"), "the app works");
    let name = format!("archy_{id}_web");
    let host = docker.inspect_container(&name, None).await.unwrap().host_config.unwrap();
    let bare = |list: Option<Vec<String>>| -> Vec<String> {
        list.unwrap_or_default().iter().map(|c| c.trim_start_matches("CAP_").to_owned()).collect()
    };
    let added = bare(host.cap_add);
    let dropped = bare(host.cap_drop);
    for cap in ["NET_ADMIN", "NET_RAW"] {
        assert!(added.iter().any(|c| c == cap), "{cap} not added: {added:?}");
    }
    assert!(!dropped.iter().any(|c| c == "NET_RAW"), "NET_RAW still dropped: {dropped:?}");
    for cap in ["MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"] {
        assert!(dropped.iter().any(|c| c == cap), "{cap} no longer dropped: {dropped:?}");
    }
    assert!(host.security_opt.unwrap_or_default().contains(&"no-new-privileges:true".to_owned()));
    assert_eq!(host.pids_limit, Some(1024));
    assert_eq!(host.privileged, Some(false));
    // What the container's processes may hold (capability numbers from capabilities(7)).
    let (net_admin, net_raw, mknod) = (1u64 << 12, 1u64 << 13, 1u64 << 27);
    let bounding = bounding_set(&docker, &name).await;
    assert_eq!(bounding & (net_admin | net_raw), net_admin | net_raw, "{bounding:x}");
    assert_eq!(bounding & mknod, 0, "{bounding:x}");
}

/// A raised process limit and `no_new_privileges = false`, granted, replace those two defaults
/// and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_process_limit_and_new_privileges_lift_only_those_defaults() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let id = app_id("setuid");
    let _cleanup = Cleanup(vec![id.clone()]);
    let mut toml = head(&id, "1.0.0");
    toml.push_str("permissions = [{ kind = \"pids_limit\", max = 4096 }, { kind = \"new_privileges\" }]\n");
    toml.push_str(&web_container(
        "web",
        &image.image_id,
        &target(&id),
        None,
        "pids_limit = 4096\nno_new_privileges = false\n",
    ));
    let manifest = verified(&toml);

    let data = data_dir("");
    let orch = orchestrator(data.path(), source_with(vec![manifest.clone()]).await).await;
    let text = orch.install(&id, None).await.expect_err("refused").to_string();
    assert!(text.contains("needs permission `pids_limit 4096`"), "{text}");
    assert!(text.contains("needs permission `new_privileges`"), "{text}");
    assert!(text.contains(r#"{ kind = "pids_limit", max = 4096 }, { kind = "new_privileges" }"#), "{text}");
    assert!(containers_of(&docker, &id).await.is_empty());
    assert!(networks_of(&docker, &id).await.is_empty());

    let granted = data_dir(&format!(
        "[apps.{id}]\npermissions = [{{ kind = \"pids_limit\", max = 4096 }}, {{ kind = \"new_privileges\" }}]\n"
    ));
    let orch = orchestrator(granted.path(), source_with(vec![manifest]).await).await;
    orch.install(&id, None).await.expect("granted");
    let name = format!("archy_{id}_web");
    let host = docker.inspect_container(&name, None).await.unwrap().host_config.unwrap();
    assert_eq!(host.pids_limit, Some(4096));
    assert!(!host.security_opt.unwrap_or_default().iter().any(|o| o.starts_with("no-new-privileges")));
    let dropped = host.cap_drop.unwrap_or_default();
    assert!(dropped.iter().any(|c| c.trim_start_matches("CAP_") == "NET_RAW"), "{dropped:?}");
    let status = exec(&docker, &name, "cat /proc/self/status").await;
    assert!(status.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["NoNewPrivs:", "0"]), "{status}");
}

/// A source whose archives take `delay` to arrive (a slow provider).
struct SlowArchives {
    inner: Arc<MemorySource>,
    delay: std::time::Duration,
}

impl node::orchestrator::AppSource for SlowArchives {
    fn versions(&self, id: &str) -> Result<Vec<semver::Version>, node::orchestrator::source::SourceError> {
        self.inner.versions(id)
    }

    fn manifest(
        &self,
        id: &str,
        version: Option<&semver::Version>,
    ) -> Result<node::orchestrator::VerifiedManifest, node::orchestrator::source::SourceError> {
        self.inner.manifest(id, version)
    }

    fn fetch_archive<'a>(
        &'a self,
        target: &'a str,
    ) -> node::orchestrator::source::BoxFuture<'a, Result<std::path::PathBuf, node::orchestrator::source::SourceError>>
    {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.fetch_archive(target).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_archive_fetch_does_not_hold_other_lifecycle_commands() {
    let Some(_engine) = docker_or_skip() else {
        return;
    };
    let docker = docker().await;
    let image = test_image().await;
    let (fast, slow) = (app_id("fast"), app_id("slowfetch"));
    let _cleanup = Cleanup(vec![fast.clone(), slow.clone()]);
    // The slow app's image is one the engine does not have yet, so installing it fetches.
    let slow_image = build_image(&docker, &format!("{slow}:1"), &slow).await;
    let archive = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{slow}.tar"));
    save_image(&docker, &format!("{slow}:1"), &archive).await;
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::new().force(true).build();
    docker.remove_image(&format!("{slow}:1"), Some(options), None).await.expect("remove");
    let inner =
        source_with(vec![verified(&web_app(&fast, "1.0.0", &image.image_id, &target(&fast), free_port()))]).await;
    inner.add(
        verified(&web_app(&slow, "1.0.0", &slow_image, &target(&slow), free_port())),
        [(target(&slow), archive.clone())],
    );
    let source = Arc::new(SlowArchives { inner, delay: std::time::Duration::from_secs(8) });
    let data = data_dir("");
    let orch =
        Arc::new(node::orchestrator::Orchestrator::open(&node::DataDir::new(data.path()), source).await.unwrap());
    orch.install(&fast, None).await.unwrap();

    let installing = tokio::spawn({
        let (orch, slow) = (orch.clone(), slow.clone());
        async move { orch.install(&slow, None).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // While the slow archive is on its way, another app is stopped and started.
    orch.stop(&fast).await.expect("stop");
    orch.start(&fast).await.expect("start");
    assert!(!installing.is_finished(), "the slow install was done before the other commands ran");
    installing.await.expect("join").expect("the slow app installs once its archive arrived");
    let _ = std::fs::remove_file(&archive);
}
