//! The Docker side of the harness: the engine (a test that needs it and cannot reach it fails,
//! unless `ARCHY_NO_DOCKER=1` says this machine has none), shared between the tests or taken
//! alone, a test image built from Debian's busybox-static (`FROM scratch`) and shipped as an
//! image archive, signed test manifests, free host ports, and a guard that removes what a test
//! created even when it fails.
//!
//! The orchestrator benchmark includes this file too (`node/benches/orchestrator.rs`), so it uses
//! nothing of the rest of the harness.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use catalog::envelope::VerifiedManifest;
use catalog::keys::SigningKey;
use catalog::manifest::{Limits, Manifest};
use futures_util::{StreamExt as _, TryStreamExt as _};
use node::orchestrator::config::NodeConfig;
use node::orchestrator::tar::{Entry, build};
use node::orchestrator::{MemorySource, Orchestrator};

/// The engine socket the tests use.
pub fn socket() -> String {
    NodeConfig::default().socket()
}

/// The engine as the tests share it. Tests that create app networks hold it shared
/// ([`docker_or_skip`]); a test that uses up the engine's address pools holds it alone
/// ([`docker_alone_or_skip`]), since archy's fallback subnets are picked from what the engine
/// lists, and two networks created at once could pick the same one.
///
/// A blocking lock on purpose: every test runs on its own thread with its own runtime, so
/// waiting for the engine blocks only the test that waits, and plain `#[test]`s (which start
/// their runtime themselves) take it the same way.
static ENGINE: RwLock<()> = RwLock::new(());

/// A share of the engine, held for the whole test.
#[must_use = "the engine is shared only while this is held"]
pub struct EngineShare {
    _guard: RwLockReadGuard<'static, ()>,
}

/// The engine alone, held for the whole test.
#[must_use = "the engine is held alone only while this is held"]
pub struct EngineAlone {
    _guard: RwLockWriteGuard<'static, ()>,
}

/// Whether the engine's socket is there. Without the opt-out (`ARCHY_NO_DOCKER=1`; CI must not
/// set it), a missing engine fails the test loudly.
fn engine_present() -> bool {
    let present = Path::new(&socket()).exists();
    if present {
        return true;
    }
    if std::env::var("ARCHY_NO_DOCKER").is_ok_and(|v| v == "1") {
        eprintln!("ARCHY_NO_DOCKER=1: skipping a test that needs the Docker engine");
        return false;
    }
    panic!(
        "the Docker engine socket {} is missing: these tests need a running Docker engine \
         (set ARCHY_NO_DOCKER=1 only on a machine without Docker)",
        socket()
    );
}

/// A share of the engine, or `None` when this machine opted out of Docker tests.
pub fn docker_or_skip() -> Option<EngineShare> {
    // A test that panicked holding the engine alone poisoned the lock, not the engine: the
    // others go on (and fail on their own if the engine is unusable).
    engine_present().then(|| EngineShare { _guard: ENGINE.read().unwrap_or_else(PoisonError::into_inner) })
}

/// The engine alone (no other test creates networks meanwhile), or `None` when this machine
/// opted out of Docker tests.
pub fn docker_alone_or_skip() -> Option<EngineAlone> {
    engine_present().then(|| EngineAlone { _guard: ENGINE.write().unwrap_or_else(PoisonError::into_inner) })
}

/// A client for the test's own checks.
pub async fn docker() -> Docker {
    Docker::connect_with_unix(&socket(), 120, bollard::API_DEFAULT_VERSION)
        .expect("connect to Docker")
        .negotiate_version()
        .await
        .expect("Docker answers")
}

const BUSYBOX: &str = "/bin/busybox";

const UPSTREAM_CGI: &str = "#!/bin/busybox sh\n\
echo 'Content-Type: text/plain'\n\
echo ''\n\
echo \"version=$APP_VERSION\"\n\
/bin/busybox wget -q -O - \"http://$UPSTREAM/\"\n";

/// Builds an image from busybox-static: `/bin/busybox`, `/www/index.html` (`hello from archy`)
/// and `/www/cgi-bin/upstream` (prints `version=$APP_VERSION` and the page at `$UPSTREAM`).
/// `nonce` makes a distinct image. Returns the image id.
pub async fn build_image(docker: &Docker, tag: &str, nonce: &str) -> String {
    let busybox = std::fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("{BUSYBOX}: {e}; install Debian's busybox-static (apt-get install -y busybox-static)")
    });
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www/ /www/\nCOPY nonce /nonce\n\
USER 65534:65534\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";
    let context = build(&[
        Entry::file("Dockerfile", dockerfile, 0o644),
        Entry::file("busybox", busybox, 0o755),
        Entry::dir("www/", 0o755),
        Entry::file("www/index.html", "hello from archy\n", 0o644),
        Entry::dir("www/cgi-bin/", 0o755),
        Entry::file("www/cgi-bin/upstream", UPSTREAM_CGI, 0o755),
        Entry::file("nonce", nonce, 0o644),
    ]);
    let options = BuildImageOptionsBuilder::new().t(tag).rm(true).build();
    let infos: Vec<_> = docker
        .build_image(options, None, Some(bollard::body_full(context.into())))
        .try_collect()
        .await
        .expect("docker build of the test image");
    for i in &infos {
        if let Some(e) = &i.error_detail {
            panic!("building the test image: {e:?}");
        }
    }
    docker.inspect_image(tag).await.expect("built image").id.expect("image id")
}

/// `docker save` of `reference` into `path`.
pub async fn save_image(docker: &Docker, reference: &str, path: &Path) {
    let bytes: Vec<u8> = docker
        .export_image(reference)
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .expect("docker save");
    std::fs::write(path, bytes).expect("write archive");
}

/// The shared test image: its archive (a `docker save` file) and image id. Built once per test
/// process, whichever test asks first (and once per machine: an existing `archy-test/busybox:1`
/// is reused).
pub struct TestImage {
    pub archive: PathBuf,
    pub image_id: String,
}

static IMAGE: tokio::sync::OnceCell<Arc<TestImage>> = tokio::sync::OnceCell::const_new();

pub async fn test_image() -> Arc<TestImage> {
    IMAGE
        .get_or_init(|| async {
            let docker = docker().await;
            let tag = "archy-test/busybox:1";
            let image_id = match docker.inspect_image(tag).await {
                Ok(i) => i.id.expect("id"),
                Err(_) => build_image(&docker, tag, "shared").await,
            };
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("archy-orchestrator-tests");
            std::fs::create_dir_all(&dir).expect("tmp dir");
            let archive = dir.join(format!("busybox-{}-{}.tar", std::process::id(), &image_id[7..19]));
            if !archive.exists() {
                save_image(&docker, tag, &archive).await;
            }
            Arc::new(TestImage { archive, image_id })
        })
        .await
        .clone()
}

/// The publisher key of the test manifests.
pub fn publisher() -> SigningKey {
    catalog::testing::key(7)
}

/// A unique app id for one test (`t-<name>-<random>`).
pub fn app_id(name: &str) -> String {
    let mut b = [0u8; 3];
    getrandom::fill(&mut b).expect("random");
    format!("t-{name}-{}", hex::encode(b))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Signs and verifies `toml` with the test publisher, the legitimate way to a verified manifest.
pub fn verified(toml: &str) -> VerifiedManifest {
    let manifest = Manifest::from_toml_str(toml, &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    catalog::testing::verified(&manifest, &publisher())
}

/// The head of a test manifest (no containers).
pub fn head(id: &str, version: &str) -> String {
    format!(
        r#"schema = 1
id = "{id}"
version = "{version}"
publisher = "{did}"
title = "Test app"
summary = "An app of the orchestrator tests."
description = "Serves a page with busybox httpd."
license = "GPL-2.0-only"
source = "https://git.busybox.net/busybox"
min_node_version = "0.1.0"
"#,
        did = publisher().did()
    )
}

/// A web container of the test image: busybox httpd on 8080 serving `/www` (PID 1 is a shell
/// that exits on SIGTERM, so stops are quick), with a healthcheck every second.
pub fn web_container(name: &str, image_id: &str, target: &str, host_port: Option<u16>, extra: &str) -> String {
    let ports = host_port.map(|p| format!("ports = [{{ host = {p}, container = 8080 }}]\n")).unwrap_or_default();
    format!(
        r#"
[[containers]]
name = "{name}"
image = {{ target = "{target}", image_id = "{image_id}" }}
entrypoint = ["/bin/busybox"]
command = ["sh", "-c", "trap 'exit 0' TERM; /bin/busybox httpd -f -p 8080 -h /www & wait"]
user = "65534:65534"
memory_mib = 32
cpus_milli = 500
{ports}{extra}
[containers.healthcheck]
command = ["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
interval_secs = 1
timeout_secs = 2
retries = 3
"#
    )
}

/// The single-container test app: a `www` volume owned by the container user (data_uid), a
/// generated secret, derived env.
pub fn web_app(id: &str, version: &str, image_id: &str, target: &str, port: u16) -> String {
    let mut t = head(id, version);
    t.push_str("\n[[volumes]]\nname = \"www\"\n\n[[secrets]]\nname = \"admin-password\"\nlength = 24\n");
    t.push_str(&web_container(
        "web",
        image_id,
        target,
        Some(port),
        "volumes = [{ volume = \"www\", target = \"/www\" }]\ndata_uid = 65534\ntmpfs = [{ target = \"/tmp\", size_mib = 4 }]\n\
secret_env = { ADMIN_PASSWORD = \"admin-password\" }\nderived_env = { APP_VERSION = \"app_version\", HOST = \"hostname\" }\n",
    ));
    t
}

/// The archive target name used in test manifests.
pub fn target(id: &str) -> String {
    format!("{id}/image.tar")
}

/// A node data dir with `config.toml` publishing on 127.0.0.1, plus `extra` config lines.
pub fn data_dir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.toml"), format!("publish_ip = \"127.0.0.1\"\n{extra}")).expect("config");
    dir
}

/// An orchestrator over `data` whose source holds `manifests`, each with the test archive.
pub async fn orchestrator(data: &Path, source: Arc<MemorySource>) -> Orchestrator {
    Orchestrator::open(&node::DataDir::new(data), source).await.expect("orchestrator opens")
}

/// Adds manifests (and the shared archive under their target) to a source.
pub async fn source_with(manifests: Vec<VerifiedManifest>) -> Arc<MemorySource> {
    let image = test_image().await;
    let source = Arc::new(MemorySource::default());
    for m in manifests {
        let targets: Vec<(String, PathBuf)> = m
            .manifest()
            .containers
            .iter()
            .filter_map(|c| match &c.image {
                catalog::manifest::Image::Archive { target, .. } => Some((target.clone(), image.archive.clone())),
                _ => None,
            })
            .collect();
        source.add(m, targets);
    }
    source
}

/// GET `http://127.0.0.1:<port><path>`: the body on 200, `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    match agent.get(&format!("http://127.0.0.1:{port}{path}")).call() {
        Ok(r) => Some(r.into_string().expect("body")),
        Err(_) => None,
    }
}

/// Containers of `app` on the engine (any state).
pub async fn containers_of(docker: &Docker, app: &str) -> Vec<bollard::models::ContainerSummary> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("archy.app={app}")])]);
    docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build())).await.unwrap()
}

/// Volume names of `app`.
pub async fn volumes_of(docker: &Docker, app: &str) -> Vec<String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("archy.app={app}")])]);
    let r = docker.list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build())).await.unwrap();
    r.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect()
}

/// Network names of `app`.
pub async fn networks_of(docker: &Docker, app: &str) -> Vec<String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("archy.app={app}")])]);
    let r = docker.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build())).await.unwrap();
    r.into_iter().filter_map(|n| n.name).collect()
}

/// Runs `sh -c script` in a container as its user; returns stdout.
pub async fn exec(docker: &Docker, container: &str, script: &str) -> String {
    let exec = docker
        .create_exec(
            container,
            bollard::models::ExecConfig {
                cmd: Some(vec!["/bin/busybox".into(), "sh".into(), "-c".into(), script.into()]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    let mut out = String::new();
    if let bollard::exec::StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.expect("start exec")
    {
        while let Some(Ok(chunk)) = output.next().await {
            out.push_str(&chunk.to_string());
        }
    }
    out
}

/// Removes every container, network and volume labelled with one of the apps, when dropped
/// (also when the test panics).
pub struct Cleanup(pub Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let apps = std::mem::take(&mut self.0);
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let docker = docker().await;
                for app in &apps {
                    for c in containers_of(&docker, app).await {
                        let id = c.id.unwrap_or_default();
                        let _ = docker
                            .remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).build()))
                            .await;
                    }
                    for n in networks_of(&docker, app).await {
                        let _ = docker.remove_network(&n).await;
                    }
                    for v in volumes_of(&docker, app).await {
                        let _ = docker.remove_volume(&v, None::<bollard::query_parameters::RemoveVolumeOptions>).await;
                    }
                }
            });
        });
        let _ = handle.join();
    }
}

/// Removes an image tag when dropped.
pub struct ImageCleanup(pub String);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let tag = std::mem::take(&mut self.0);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let options = bollard::query_parameters::RemoveImageOptionsBuilder::new().force(true).build();
                let _ = docker().await.remove_image(&tag, Some(options), None).await;
            });
        })
        .join();
    }
}
