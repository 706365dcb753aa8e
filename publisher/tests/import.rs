//! `archy app import` on one fixture per store format (`tests/data/import/<case>/`, written for
//! these tests): runs the real binary, then reads the written folder back through the catalog.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use catalog::manifest::{Charset, HostFact, Limits, Manifest, Permission, Protocol, RestartPolicy};
use serde_json::Value;

/// A temporary folder with a publisher key, where imports are written.
struct Workspace {
    dir: tempfile::TempDir,
}

/// One import: the process's output, its JSON report and the app folder it wrote.
struct Run {
    out: Output,
    report: Value,
    folder: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let ws = Self { dir: tempfile::tempdir().expect("tempdir") };
        let out = ws.archy(&["key", "new"]);
        assert!(out.status.success(), "key new: {}", String::from_utf8_lossy(&out.stderr));
        ws
    }

    fn archy(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_archy"))
            .args(args)
            .current_dir(self.dir.path())
            .env("ARCHY_KEY", self.dir.path().join("publisher.key"))
            .output()
            .expect("run archy")
    }

    /// `archy --json app import <fixture> --out <folder> <extra>`.
    fn import(&self, fixture: &str, extra: &[&str]) -> Run {
        let folder = self.dir.path().join(fixture.replace('/', "-"));
        let src = fixture_path(fixture);
        let mut args =
            vec!["--json", "app", "import", src.to_str().expect("utf-8"), "--out", folder.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        let out = self.archy(&args);
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("json report ({e}): {}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out))
        });
        Run { out, report, folder }
    }
}

fn fixture_path(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/import").join(case)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Run {
    fn assert_valid(&self) -> Manifest {
        assert!(self.out.status.success(), "import failed: {}", stderr(&self.out));
        assert_eq!(self.report["valid"], true);
        Manifest::from_dir(&self.folder, &Limits::default()).expect("the written folder validates")
    }

    /// The not-mapped entries as `file:line: what`.
    fn unmapped(&self) -> Vec<String> {
        self.report["unmapped"]
            .as_array()
            .expect("unmapped")
            .iter()
            .map(|u| {
                format!("{}:{}: {}", u["file"].as_str().unwrap_or(""), u["line"], u["what"].as_str().unwrap_or(""))
            })
            .collect()
    }

    fn assert_figure(&self, mapped: u64, total: u64, percent: u64) {
        assert_eq!((self.report["mapped"].as_u64(), self.report["total"].as_u64()), (Some(mapped), Some(total)));
        assert_eq!(self.report["figure"], format!("mapped {mapped} of {total} compose keys ({percent} %)"));
    }
}

fn ports(m: &Manifest, container: &str) -> Vec<(u16, u16, Protocol)> {
    m.container(container).expect("container").ports.iter().map(|p| (p.host, p.container, p.protocol)).collect()
}

#[test]
fn umbrel_app_proxy_is_the_web_port_and_app_password_one_shared_secret() {
    let ws = Workspace::new();
    let run = ws.import("umbrel-proxy-healthy-db", &["--license", "MIT"]);
    assert_eq!(run.report["format"], "umbrel");
    assert_eq!(run.report["detected"], "detected: umbrel-app.yml is present");
    let m = run.assert_valid();
    assert_eq!((m.id.as_str(), m.version.to_string().as_str()), ("notes-hub", "2.4.0"));
    assert_eq!(m.title, "Notes Hub");
    assert_eq!(m.summary, "Write, tag and search your notes from every device");
    assert!(m.description.contains("Website: <https://notes-hub.example.org>"), "{}", m.description);
    assert_eq!(m.categories, ["files"]);
    assert_eq!(m.source, "https://github.com/example/notes-hub");
    assert_eq!(m.icon.as_ref().map(|i| i.as_str()), Some("icon.svg"));
    assert!(run.folder.join("icon.svg").is_file(), "the local icon is copied");
    // app_proxy is not a container; its APP_HOST/APP_PORT and umbrel-app.yml's port are.
    let names: Vec<&str> = m.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["web", "db"]);
    assert_eq!(ports(&m, "web"), [(3210, 8080, Protocol::Tcp)]);
    let web = m.container("web").expect("web");
    let db = m.container("db").expect("db");
    assert_eq!(web.secret_env["DB_PASSWORD"].as_str(), "app-password");
    assert_eq!(db.secret_env["POSTGRES_PASSWORD"].as_str(), "app-password", "one secret for both ends");
    assert_eq!(web.secret_env["SESSION_SECRET"].as_str(), "app-seed");
    let password = m.secret("app-password").expect("declared");
    assert_eq!((password.length, password.charset), (32, Charset::Alphanumeric));
    let seed = m.secret("app-seed").expect("declared");
    assert_eq!((seed.length, seed.charset), (64, Charset::Hex));
    assert_eq!(web.derived_env["PUBLIC_URL"], HostFact::AppUrl);
    assert_eq!(web.derived_env["TZ"], HostFact::Timezone);
    assert_eq!(web.env["DB_HOST"], "db");
    assert_eq!(web.user.map(|u| u.to_string()).as_deref(), Some("1000:1000"));
    assert_eq!(web.restart, RestartPolicy::OnFailure);
    // depends_on: { db: { condition: service_healthy } } with db's healthcheck.
    assert_eq!(web.depends_on.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["db"]);
    let health = db.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(health.command, ["/bin/sh", "-c", "pg_isready -U notes"]);
    assert_eq!((health.interval_secs, health.timeout_secs, health.start_period_secs, health.retries), (10, 5, 30, 5));
    let volumes: Vec<&str> = m.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(volumes, ["data-uploads", "data-db"]);
    assert_eq!(db.volumes[0].target, "/var/lib/postgresql/data");
    // `cap_add: [SYS_NICE]` becomes the container's cap_add and the permission it needs.
    assert_eq!(db.cap_add.iter().map(ToString::to_string).collect::<Vec<_>>(), ["SYS_NICE"]);
    assert_eq!(
        m.permissions,
        [catalog::manifest::Permission::Capability { name: "SYS_NICE".parse().expect("a capability") }]
    );
    let unmapped = run.unmapped();
    for expected in
        ["umbrel-app.yml:15: gallery", "umbrel-app.yml:20: defaultPassword", "docker-compose.yml:14: stop_grace_period"]
    {
        assert!(unmapped.iter().any(|u| u == expected), "{expected} in {unmapped:#?}");
    }
    assert_eq!(unmapped.len(), 6, "{unmapped:#?}");
    run.assert_figure(13, 14, 93);
}

#[test]
fn an_import_without_a_license_is_written_and_fails_naming_the_field() {
    let ws = Workspace::new();
    let run = ws.import("umbrel-proxy-healthy-db", &[]);
    assert_eq!(run.out.status.code(), Some(1));
    assert_eq!(run.report["valid"], false);
    let fields: Vec<&str> =
        run.report["problems"].as_array().expect("problems").iter().filter_map(|p| p["field"].as_str()).collect();
    assert_eq!(fields, ["license"]);
    let err = stderr(&run.out);
    assert!(
        err.contains("does not validate") && err.contains("license: required field is missing — add license"),
        "{err}"
    );
    let toml = std::fs::read_to_string(run.folder.join("archy.toml")).expect("written anyway");
    assert!(toml.contains("# license = "), "{toml}");
    // Importing again into the same folder is refused; the folder is left as it is.
    let src = fixture_path("umbrel-proxy-healthy-db");
    let again =
        ws.archy(&["app", "import", src.to_str().expect("utf-8"), "--out", run.folder.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(run.folder.join("archy.toml")).expect("kept"), toml);
}

#[test]
fn runtipi_form_fields_become_secrets_and_udp_ports_stay_udp() {
    let ws = Workspace::new();
    let run = ws.import("runtipi-form-fields-udp", &["--license", "MIT"]);
    assert_eq!(run.report["format"], "runtipi");
    assert_eq!(run.report["detected"], "detected: config.json and docker-compose.json are present");
    let m = run.assert_valid();
    assert_eq!(
        (m.id.as_str(), m.version.to_string().as_str(), m.title.as_str()),
        ("voice-chat", "1.5.2", "Voice Chat")
    );
    assert_eq!(m.summary, "Low-latency voice chat for your group.");
    assert_eq!(m.categories, ["communication"], "social is archy's communication; featured is the store's own");
    assert_eq!(m.source, "https://github.com/example/voice-chat");
    // The main service's internalPort on config.json's port, then addPorts, one per protocol.
    assert_eq!(
        ports(&m, "voice-chat"),
        [
            (8443, 8080, Protocol::Tcp),
            (64738, 64738, Protocol::Tcp),
            (64738, 64738, Protocol::Udp),
            (3478, 3478, Protocol::Udp)
        ]
    );
    let c = m.container("voice-chat").expect("container");
    assert_eq!(c.secret_env["SERVER_PASSWORD"].as_str(), "voice-chat-server-password");
    assert_eq!(c.secret_env["ADMIN_TOKEN"].as_str(), "voice-chat-admin-token");
    let password = m.secret("voice-chat-server-password").expect("random field");
    assert_eq!((password.length, password.charset), (24, Charset::Alphanumeric));
    let token = m.secret("voice-chat-admin-token").expect("random field");
    assert_eq!((token.length, token.charset), (16, Charset::Hex), "raised to archy's minimum length");
    assert_eq!(c.env["WELCOME_TEXT"], "Welcome!", "a text field's default");
    assert_eq!(c.env["PUBLIC_PORT"], "8443", "${{APP_PORT}}");
    assert_eq!(c.derived_env["TZ"], HostFact::Timezone);
    assert!(!c.env.contains_key("MAX_USERS"), "a field the user types in has no value");
    let mounts: Vec<(&str, &str, bool)> =
        c.volumes.iter().map(|v| (v.volume.as_str(), v.target.as_str(), v.read_only)).collect();
    assert_eq!(mounts, [("data", "/data", false), ("data-certs", "/certs", true)]);
    let health = c.healthcheck.as_ref().expect("healthCheck");
    assert_eq!(health.command, ["/bin/sh", "-c", "wget -q --spider http://localhost:8080/health"]);
    assert_eq!((health.interval_secs, health.timeout_secs, health.retries), (30, 5, 3));
    assert!(run.folder.join("archy.toml").is_file() && !run.folder.join("icon.svg").exists());
    let unmapped = run.unmapped();
    for expected in
        ["config.json:5: available", "docker-compose.json:18: environment.MAX_USERS", "docker-compose.json:32: ulimits"]
    {
        assert!(unmapped.iter().any(|u| u == expected), "{expected} in {unmapped:#?}");
    }
    run.assert_figure(7, 9, 78);
}

#[test]
fn casaos_unpinned_image_is_written_with_the_pin_command_and_fails_validation() {
    let ws = Workspace::new();
    let run = ws.import(
        "casaos-unpinned-devices-socket",
        &["--license", "GPL-2.0-only", "--source", "https://github.com/example/media-box"],
    );
    assert_eq!(run.report["format"], "casaos");
    assert_eq!(run.report["detected"], "detected: docker-compose.yml has `x-casaos`");
    // The image has a tag but no digest: the folder is written, the command says how to pin it,
    // and validation fails on exactly that field.
    assert_eq!(run.out.status.code(), Some(1));
    let pins = run.report["pins"].as_array().expect("pins");
    assert_eq!(pins.len(), 1);
    assert_eq!(
        pins[0]["command"],
        "docker pull example/media-box:10.9.1 && docker inspect --format '{{index .RepoDigests 0}}' example/media-box:10.9.1"
    );
    assert_eq!((pins[0]["file"].as_str(), pins[0]["line"].as_u64()), (Some("docker-compose.yml"), Some(4)));
    let fields: Vec<&str> =
        run.report["problems"].as_array().expect("problems").iter().filter_map(|p| p["field"].as_str()).collect();
    assert_eq!(fields, ["containers[0].image"]);
    assert!(stderr(&run.out).contains("containers[0].image: image `example/media-box:10.9.1` is not pinned by digest"));
    // Pinning the image is the only edit needed.
    let toml = std::fs::read_to_string(run.folder.join("archy.toml")).expect("written");
    let pinned =
        toml.replace("example/media-box:10.9.1", &format!("example/media-box:10.9.1@sha256:{}", "0".repeat(64)));
    let m = Manifest::from_toml_str(&pinned, &Limits::default()).expect("valid once pinned");
    assert_eq!((m.id.as_str(), m.title.as_str(), m.version.to_string().as_str()), ("media-box", "Media Box", "10.9.1"));
    assert_eq!(m.summary, "Your own media streaming server");
    assert!(m.description.contains("- `TZ`: Time zone of the server"), "{}", m.description);
    assert_eq!(m.categories, ["media"]);
    assert_eq!(m.icon.as_ref().map(|i| i.as_str()), Some("https://cdn.example.org/media-box/icon.png"));
    assert_eq!(run.report["icon"]["kind"], "url", "a URL-only icon is referenced, not downloaded");
    assert_eq!(
        m.permissions,
        [
            Permission::HostPath { host: "/DATA/Media".into(), target: "/media".into(), read_only: true },
            Permission::DockerSocket,
            Permission::Device { path: "/dev/dri".into() },
        ]
    );
    let c = &m.containers[0];
    let binds: Vec<(&str, &str, bool)> =
        c.binds.iter().map(|b| (b.host.as_str(), b.target.as_str(), b.read_only)).collect();
    assert_eq!(binds, [("/DATA/Media", "/media", true), ("/var/run/docker.sock", "/var/run/docker.sock", false)]);
    assert_eq!(c.devices, ["/dev/dri"]);
    assert_eq!(
        (c.volumes[0].volume.as_str(), c.volumes[0].target.as_str()),
        ("config", "/config"),
        "/DATA/AppData/$AppID"
    );
    assert_eq!((c.env["PUID"].as_str(), c.env["WEB_PORT"].as_str()), ("1000", "8096"));
    assert_eq!(c.restart, RestartPolicy::UnlessStopped);
    assert_eq!(ports(&m, "media-box"), [(8096, 8096, Protocol::Tcp)]);
    let unmapped = run.unmapped();
    for expected in [
        "docker-compose.yml:5: container_name",
        "docker-compose.yml:33: x-casaos.ports",
        "docker-compose.yml:56: x-casaos.tips",
    ] {
        assert!(unmapped.iter().any(|u| u == expected), "{expected} in {unmapped:#?}");
    }
    run.assert_figure(8, 11, 73);
}

#[test]
fn compose_dangerous_keys_become_requested_permissions() {
    let ws = Workspace::new();
    let run = ws.import("compose-host-agent/compose.yaml", &[]);
    assert_eq!(run.report["format"], "compose");
    let m = run.assert_valid();
    assert_eq!((m.id.as_str(), m.version.to_string().as_str()), ("host-monitor", "3.2.0"));
    assert_eq!((m.license.as_str(), m.source.as_str()), ("Apache-2.0", "https://github.com/example/host-monitor"));
    assert_eq!(
        m.permissions,
        [
            Permission::Privileged,
            Permission::HostNetwork,
            Permission::HostPath { host: "/proc".into(), target: "/host/proc".into(), read_only: true },
            Permission::HostPath { host: "/sys".into(), target: "/host/sys".into(), read_only: true },
            Permission::HostPath { host: "/srv/backups".into(), target: "/backups".into(), read_only: false },
        ]
    );
    let agent = m.container("agent").expect("agent");
    assert!(agent.privileged && agent.host_network);
    assert_eq!(agent.entrypoint.as_deref(), Some(&["/usr/bin/agent".to_owned()][..]));
    let command = agent.command.clone().expect("command");
    assert_eq!(command, ["--listen", "127.0.0.1:9100", "--root", "/host", "--label", "home server"]);
    assert_eq!(agent.user.map(|u| u.to_string()).as_deref(), Some("0:0"));
    assert_eq!((agent.memory_mib, agent.cpus_milli), (Some(256), Some(500)));
    assert_eq!(
        agent.healthcheck.as_ref().map(|h| (h.command.clone(), h.interval_secs)),
        Some((vec!["/usr/bin/agent".to_owned(), "check".to_owned()], 60))
    );
    assert_eq!(agent.binds.len(), 3);
    assert_eq!((agent.volumes[0].volume.as_str(), agent.volumes[0].target.as_str()), ("state", "/var/lib/agent"));
    let dashboard = m.container("dashboard").expect("dashboard");
    assert_eq!(ports(&m, "dashboard"), [(3000, 3000, Protocol::Tcp)]);
    assert_eq!((dashboard.user.map(|u| u.uid), dashboard.memory_mib), (Some(65534), Some(128)));
    assert_eq!(dashboard.depends_on.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["agent"]);
    let health = dashboard.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(health.command, ["/bin/sh", "-c", "wget -q --spider http://127.0.0.1:3000/ || exit 1"]);
    assert_eq!(health.start_period_secs, 2, "1500ms rounds up to whole seconds");
    assert_eq!(
        run.unmapped(),
        [
            "compose.yaml:10: stop_grace_period",
            "compose.yaml:21: deploy.resources.reservations",
            "compose.yaml:28: cap_add"
        ]
    );
    run.assert_figure(17, 20, 85);
    // The text output says the same for humans.
    let text = ws.archy(&[
        "app",
        "import",
        fixture_path("compose-host-agent/compose.yaml").to_str().expect("utf-8"),
        "--out",
        ws.dir.path().join("again").to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("format: compose (detected: compose.yaml is a compose file)"), "{stdout}");
    assert!(
        stdout.contains("compose.yaml:28: `cap_add` is not mapped: `SYS_ADMIN`")
            && stdout.contains("(request `privileged` if the app really needs it)"),
        "{stdout}"
    );
    assert!(stdout.contains("host-monitor: mapped 17 of 20 compose keys (85 %)"), "{stdout}");
    assert!(
        stdout.contains("permissions requested: privileged, host_network, host_path /proc -> /host/proc (read-only)"),
        "{stdout}"
    );
}

#[test]
fn a_format_given_on_the_command_line_wins_over_detection() {
    let ws = Workspace::new();
    let src = fixture_path("runtipi-form-fields-udp");
    let out = ws.archy(&["app", "import", src.to_str().expect("utf-8"), "--out", "x", "--format", "umbrel"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("umbrel-app.yml") && err.contains("check the path"), "{err}");
    assert!(!ws.dir.path().join("x").exists(), "nothing is written for a source that cannot be read");
}

#[test]
fn an_icon_path_leading_out_of_the_source_folder_is_not_copied() {
    let ws = Workspace::new();
    let src = ws.dir.path().join("store/notes-hub");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(ws.dir.path().join("store/private.svg"), "<svg/>").expect("write");
    let fixture = fixture_path("umbrel-proxy-healthy-db");
    let meta = std::fs::read_to_string(fixture.join("umbrel-app.yml")).expect("read");
    std::fs::write(src.join("umbrel-app.yml"), meta.replace("icon: icon.svg", "icon: ../private.svg")).expect("write");
    std::fs::copy(fixture.join("docker-compose.yml"), src.join("docker-compose.yml")).expect("copy");
    let folder = ws.dir.path().join("out");
    let out = ws.archy(&[
        "--json",
        "app",
        "import",
        src.to_str().expect("utf-8"),
        "--out",
        folder.to_str().expect("utf-8"),
        "--license",
        "MIT",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["icon"]["kind"], "none");
    assert!(report["unmapped"].as_array().expect("unmapped").iter().any(|u| u["what"] == "icon"));
    assert_eq!(std::fs::read_dir(&folder).expect("folder").count(), 1, "only archy.toml is written");
}
