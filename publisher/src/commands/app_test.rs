//! `archy app test DIR`: runs the app on the local container engine through the node's own
//! orchestrator (the same render, policy gate, image loading and health waits a node uses) and
//! walks it through the lifecycle a node puts it through: install, healthy, each declared port
//! answers, data written, restart, stop and start, update to a newer version (the data
//! survives), uninstall, purge.
//!
//! Nothing it does can touch a real node's apps on the same engine:
//! - a throwaway node data folder (a temporary directory, removed afterwards unless `--keep`),
//!   so a new node id labels every object;
//! - engine names under their own first piece, `archytest-<random>` instead of `archy`
//!   ([`catalog::manifest::EnginePrefix`]), so no name can equal one a node uses;
//! - every host port of the manifest replaced by a free port on 127.0.0.1 for the run.
//!
//! The manifest is signed for the run with a throwaway key (the copy's `publisher` is that
//! key's DID), so no publisher key is needed; every permission the manifest requests is granted
//! to the throwaway node, and listed.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use catalog::envelope::{SignedEnvelope, VerifiedManifest};
use catalog::manifest::{EngineObject, EnginePrefix, Limits, Manifest, Protocol};
use futures_util::StreamExt as _;
use node::orchestrator::{AppState, MemorySource, Orchestrator};
use serde::Serialize;

use crate::output::{Output, user_error};

/// The file the test writes into each volume before the update and reads back after it.
const MARKER: &str = ".archy-app-test";

/// What `archy app test` was asked.
#[derive(Debug)]
pub struct TestArgs {
    /// The app folder.
    pub dir: PathBuf,
    /// Image archives given on the command line (else `<dir>/dist/<file>`).
    pub images: Vec<PathBuf>,
    /// Leave the app running after the update step.
    pub keep: bool,
    /// How long each step may wait for the app to become healthy.
    pub timeout: Duration,
}

/// One step of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was done.
    pub step: String,
    /// Whether it passed.
    pub ok: bool,
    /// Seconds it took.
    pub secs: f64,
    /// What was seen (or why it failed).
    pub detail: String,
}

/// The whole run, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    app: String,
    version: String,
    engine_prefix: String,
    ports: Vec<String>,
    granted: Vec<String>,
    steps: Vec<Step>,
    passed: bool,
    total_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_step: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kept: Option<String>,
}

/// Runs `archy app test`.
pub fn run(args: TestArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let manifest = super::app::load(&args.dir)?;
    let archives = super::publish::archives(&manifest, &args.dir, &args.images)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = runtime.block_on(walk(manifest, archives, &args))?;
    let text = render(&report);
    out.print(text, &serde_json::to_value(&report)?);
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn render(r: &Report) -> String {
    let mut s = format!("archy app test: {} {} (engine names {}_…)\n", r.app, r.version, r.engine_prefix);
    for p in &r.ports {
        s.push_str(&format!("  port {p}\n"));
    }
    if !r.granted.is_empty() {
        s.push_str(&format!("  granted for the test: {}\n", r.granted.join(", ")));
    }
    for step in &r.steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        s.push_str(&format!("  {mark} {:<28} {:>6.1} s  {}\n", step.step, step.secs, step.detail));
    }
    match &r.failed_step {
        None => s.push_str(&format!("passed: {} steps in {:.1} s", r.steps.len(), r.total_secs)),
        Some(step) => {
            s.push_str(&format!("failed at `{step}` after {:.1} s", r.total_secs));
            if !r.logs.is_empty() {
                s.push_str("\nlast log lines:\n");
                for l in &r.logs {
                    s.push_str(&format!("  {l}\n"));
                }
            }
        }
    }
    if let Some(kept) = &r.kept {
        s.push_str(&format!("\n{kept}"));
    }
    s
}

/// A free port on 127.0.0.1 for `protocol`.
fn free_port(protocol: Protocol) -> anyhow::Result<u16> {
    Ok(match protocol {
        Protocol::Udp => UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port(),
        _ => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
    })
}

/// The manifest as the throwaway node runs it: free host ports, `version`, signed by `key`.
fn for_the_run(manifest: &Manifest, key: &catalog::keys::SigningKey, version: semver::Version) -> VerifiedManifest {
    let mut m = manifest.clone();
    m.publisher = key.did();
    m.version = version;
    // Already validated: signing and verifying again cannot fail on a valid manifest.
    let envelope = SignedEnvelope::sign(&m, key).expect("a validated manifest signs");
    envelope.verify(&Limits::default()).expect("a freshly signed envelope verifies")
}

struct Run {
    orchestrator: Orchestrator,
    app: String,
    steps: Vec<Step>,
    started: Instant,
    timeout: Duration,
}

impl Run {
    /// Records a step that started at `t`; `Err` stops the walk.
    fn push(&mut self, step: &str, t: Instant, detail: Result<String, String>) -> Result<(), String> {
        let (ok, text) = match &detail {
            Ok(d) => (true, d.clone()),
            Err(e) => (false, e.clone()),
        };
        self.steps.push(Step { step: step.to_owned(), ok, secs: t.elapsed().as_secs_f64(), detail: text });
        detail.map(|_| ())
    }

    /// Waits until the app reaches `want` (every container healthy, or stopped).
    async fn wait_for(&self, want: AppState) -> Result<String, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let status = self.orchestrator.status().await.map_err(|e| e.to_string())?;
            let app = status.iter().find(|s| s.app == self.app);
            let state = app.map(|a| a.state);
            // Without a healthcheck, running is as healthy as the app can say.
            let reached = state == Some(want)
                || (want == AppState::Healthy
                    && state == Some(AppState::Running)
                    && app.is_some_and(|a| a.containers.iter().all(|c| c.health.is_none())));
            if reached {
                return Ok(state.map_or_else(|| "?".to_owned(), |s| s.to_string()));
            }
            if Instant::now() >= deadline {
                let reason = app.and_then(|a| a.reason.clone()).unwrap_or_default();
                return Err(format!(
                    "not {want} after {} s (state {}{})",
                    self.timeout.as_secs(),
                    state.map_or("none".into(), |s| s.to_string()),
                    if reason.is_empty() { String::new() } else { format!(": {reason}") }
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn last_logs(&self) -> Vec<String> {
        let Ok(stream) = self.orchestrator.logs(&self.app, None, Some(20), false).await else { return Vec::new() };
        let lines: Vec<_> = stream.collect().await;
        lines
            .into_iter()
            .filter_map(Result::ok)
            .flat_map(|l| l.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }
}

/// Whether something answers on `port`: an HTTP status line for TCP ports that speak HTTP, an
/// accepted connection otherwise; UDP ports cannot be probed without knowing the protocol.
fn probe(port: u16, protocol: Protocol) -> Result<String, String> {
    if protocol == Protocol::Udp {
        return Ok("udp: published (not probed)".into());
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(3)).redirects(0).build();
                return Ok(match agent.get(&format!("http://{addr}/")).call() {
                    Ok(r) => format!("HTTP {}", r.status()),
                    Err(ureq::Error::Status(code, _)) => format!("HTTP {code}"),
                    Err(_) => "accepts TCP (no HTTP answer)".into(),
                });
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("nothing answers on 127.0.0.1:{port}: {last}"))
}

/// A one-file tar archive, for the engine's archive upload.
fn marker_tar(content: &str) -> Vec<u8> {
    node::orchestrator::tar::build(&[node::orchestrator::tar::Entry::file(MARKER, content, 0o644)])
}

/// The content of `MARKER` under `dir` in `container`, from the engine's archive download.
async fn read_marker(orchestrator: &Orchestrator, container: &str, dir: &str) -> Result<String, String> {
    let path = format!("{}/{MARKER}", dir.trim_end_matches('/'));
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new().path(&path).build();
    let chunks: Vec<_> = orchestrator.engine().raw().download_from_container(container, Some(options)).collect().await;
    let mut tar = Vec::new();
    for c in chunks {
        tar.extend_from_slice(&c.map_err(|e| format!("reading {path} in {container}: {e}"))?);
    }
    // One regular file: a 512-byte header (size in octal at 124..136), then its bytes.
    let size = tar.get(124..136).and_then(|f| {
        let text = std::str::from_utf8(f).ok()?.trim_matches(|c: char| c == '\0' || c == ' ');
        usize::from_str_radix(text, 8).ok()
    });
    let body = size.and_then(|n| tar.get(512..512 + n)).ok_or_else(|| format!("{path} in {container}: not a file"))?;
    Ok(String::from_utf8_lossy(body).into_owned())
}

async fn walk(manifest: Manifest, archives: Vec<(String, PathBuf)>, args: &TestArgs) -> anyhow::Result<Report> {
    let started = Instant::now();
    let key = catalog::keys::SigningKey::generate();
    let mut rand = [0u8; 3];
    getrandom::fill(&mut rand).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let prefix: EnginePrefix =
        format!("archytest-{}", hex::encode(rand)).parse().map_err(|e: String| anyhow::anyhow!(e))?;

    // Free host ports for the run, the same for both versions.
    let mut m = manifest.clone();
    let mut ports = Vec::new();
    for c in &mut m.containers {
        for p in &mut c.ports {
            let free = free_port(p.protocol)?;
            ports.push((p.host, free, p.container, p.protocol));
            p.host = free;
        }
    }
    let v1 = for_the_run(&m, &key, m.version.clone());
    let mut bumped = m.version.clone();
    bumped.patch += 1;
    bumped.pre = semver::Prerelease::EMPTY;
    let v2 = for_the_run(&m, &key, bumped.clone());

    // The throwaway node: its data folder, engine prefix and grants.
    let data = tempfile::Builder::new().prefix("archy-app-test-").tempdir().context("a temporary node folder")?;
    let grants: Vec<toml::Value> =
        m.permissions.iter().map(toml::Value::try_from).collect::<Result<_, _>>().context("permissions as grants")?;
    let granted: Vec<String> = m.permissions.iter().map(ToString::to_string).collect();
    let mut config = toml::Table::new();
    config.insert("publish_ip".into(), "127.0.0.1".into());
    config.insert("engine_prefix".into(), prefix.to_string().into());
    if let Ok(socket) = std::env::var("ARCHY_DOCKER_SOCKET") {
        config.insert("docker_socket".into(), socket.into());
    }
    let mut app_table = toml::Table::new();
    app_table.insert("permissions".into(), toml::Value::Array(grants));
    let mut apps = toml::Table::new();
    apps.insert(m.id.to_string(), app_table.into());
    config.insert("apps".into(), apps.into());
    std::fs::write(data.path().join("config.toml"), toml::to_string(&config)?)
        .context("writing the test node's config")?;

    let source = Arc::new(MemorySource::default());
    source.add(v1.clone(), archives.clone());
    source.add(v2, archives);
    let data_dir = node::DataDir::new(data.path());
    let orchestrator =
        Orchestrator::open(&data_dir, source).await.map_err(|e| user_error(format!("the container engine: {e}")))?;
    let app = m.id.to_string();
    let mut run = Run { orchestrator, app: app.clone(), steps: Vec::new(), started, timeout: args.timeout };
    let result = gate(&mut run, &m, &ports, &bumped, &prefix, args.keep).await;
    let failed_step = result.is_err().then(|| run.steps.last().map(|s| s.step.clone()).unwrap_or_default());
    let logs = if failed_step.is_some() { run.last_logs().await } else { Vec::new() };

    let kept = if args.keep && failed_step.is_none() {
        let dir = data.keep();
        Some(format!(
            "kept running under {}; remove it with: archy-node uninstall {app} --purge --yes --data {}",
            dir.display(),
            dir.display()
        ))
    } else {
        // Whatever the run left behind goes (a failed step may leave containers and volumes).
        if failed_step.is_some() {
            let _ = run.orchestrator.uninstall(&app, true).await;
        }
        None
    };
    Ok(Report {
        app,
        version: manifest.version.to_string(),
        engine_prefix: prefix.to_string(),
        ports: ports
            .iter()
            .map(|(declared, free, container, proto)| {
                format!("{declared}/{proto} (container {container}) is 127.0.0.1:{free} for the test")
            })
            .collect(),
        granted,
        passed: failed_step.is_none(),
        total_secs: run.started.elapsed().as_secs_f64(),
        steps: run.steps,
        failed_step,
        logs,
        kept,
    })
}

/// The lifecycle gate; stops at the first failing step.
async fn gate(
    run: &mut Run,
    m: &Manifest,
    ports: &[(u16, u16, u16, Protocol)],
    bumped: &semver::Version,
    prefix: &EnginePrefix,
    keep: bool,
) -> Result<(), String> {
    let app = run.app.clone();
    let t = Instant::now();
    let detail = match run.orchestrator.install(&app, Some(&m.version)).await {
        Ok(report) => {
            let names: Vec<String> = report.installed.iter().map(|(id, v)| format!("{id} {v}")).collect();
            Ok(format!("{} installed (images loaded, containers started)", names.join(", ")))
        }
        Err(e) => Err(e.to_string()),
    };
    run.push("install", t, detail)?;
    let t = Instant::now();
    let detail = run.wait_for(AppState::Healthy).await;
    run.push("healthy", t, detail)?;

    for (declared, free, _, proto) in ports {
        let t = Instant::now();
        let detail = probe(*free, *proto);
        run.push(&format!("port {declared}/{proto} answers"), t, detail)?;
    }

    // A marker in each volume a container mounts read-write, read back after the update.
    let nonce = hex::encode(blake3::hash(app.as_bytes()).as_bytes())[..16].to_owned();
    let mut marked = BTreeMap::new();
    for c in &m.containers {
        for v in c.volumes.iter().filter(|v| !v.read_only) {
            marked.entry(v.volume.to_string()).or_insert_with(|| (c.name.clone(), v.target.clone()));
        }
    }
    let t = Instant::now();
    let mut written = Vec::new();
    let mut failure = None;
    for (volume, (container, target)) in &marked {
        let name = EngineObject::Container { app: m.id.clone(), container: container.clone() }.name_in(prefix);
        match run.orchestrator.engine().upload(&name, target, marker_tar(&nonce)).await {
            Ok(()) => written.push(volume.clone()),
            Err(e) => failure = Some(format!("writing into volume {volume} at {target}: {e}")),
        }
    }
    let detail = match failure {
        Some(f) => Err(f),
        None if written.is_empty() => Ok("no read-write volume to write into".to_owned()),
        None => Ok(format!("wrote {MARKER} into {}", written.join(", "))),
    };
    run.push("write data", t, detail)?;

    let t = Instant::now();
    let detail = match run.orchestrator.restart(&app).await {
        Ok(()) => run.wait_for(AppState::Healthy).await,
        Err(e) => Err(e.to_string()),
    };
    run.push("restart", t, detail)?;

    let t = Instant::now();
    let detail = match run.orchestrator.stop(&app).await {
        Ok(()) => run.wait_for(AppState::Stopped).await,
        Err(e) => Err(e.to_string()),
    };
    run.push("stop", t, detail)?;
    let t = Instant::now();
    let detail = match run.orchestrator.start(&app).await {
        Ok(()) => run.wait_for(AppState::Healthy).await,
        Err(e) => Err(e.to_string()),
    };
    run.push("start", t, detail)?;

    let t = Instant::now();
    let detail = match run.orchestrator.update(&app, Some(bumped)).await {
        Ok(r) => run.wait_for(AppState::Healthy).await.map(|s| format!("{} -> {}: {s}", r.from, r.to)),
        Err(e) => Err(e.to_string()),
    };
    run.push(&format!("update to {bumped}"), t, detail)?;

    let t = Instant::now();
    let mut survived = Vec::new();
    let mut lost = None;
    for (volume, (container, target)) in &marked {
        let name = EngineObject::Container { app: m.id.clone(), container: container.clone() }.name_in(prefix);
        match read_marker(&run.orchestrator, &name, target).await {
            Ok(text) if text == nonce => survived.push(volume.clone()),
            Ok(text) => lost = Some(format!("volume {volume}: {MARKER} holds `{text}`, not what was written")),
            Err(e) => lost = Some(format!("volume {volume}: {e}")),
        }
    }
    let detail = match lost {
        Some(l) => Err(l),
        None if survived.is_empty() => Ok("no volume written".to_owned()),
        None => Ok(format!("{} kept {MARKER}", survived.join(", "))),
    };
    run.push("data survived the update", t, detail)?;
    if keep {
        return Ok(());
    }

    let t = Instant::now();
    let detail = match run.orchestrator.uninstall(&app, false).await {
        Ok(()) => {
            let filter = [("archy.app", app.as_str())];
            let left = run.orchestrator.engine().containers(&filter).await.map_err(|e| e.to_string())?;
            let mine: Vec<_> = left.iter().filter(|c| c.name.starts_with(&format!("{prefix}_"))).collect();
            if mine.is_empty() {
                Ok("no container left; volumes kept".to_owned())
            } else {
                Err(format!("{} containers left", mine.len()))
            }
        }
        Err(e) => Err(e.to_string()),
    };
    run.push("uninstall", t, detail)?;

    let t = Instant::now();
    let before = volumes(run, &app, prefix).await;
    let detail = match run.orchestrator.uninstall(&app, true).await {
        Ok(()) => {
            let left = volumes(run, &app, prefix).await;
            if left.is_empty() {
                Ok(format!("{} volumes removed", before.len()))
            } else {
                Err(format!("volumes left: {}", left.join(", ")))
            }
        }
        Err(e) => Err(e.to_string()),
    };
    run.push("purge", t, detail)
}

async fn volumes(run: &Run, app: &str, prefix: &EnginePrefix) -> Vec<String> {
    let filter = [("archy.app", app)];
    let vols = run.orchestrator.engine().volumes(&filter).await.unwrap_or_default();
    vols.into_iter().map(|v| v.name).filter(|n| n.starts_with(&format!("{prefix}_"))).collect()
}
