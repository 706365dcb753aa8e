//! Unit tests of parsing, validation, the JSON form and rendering.

use super::*;

const DID: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
const DIGEST: &str = "sha256:4ff102c5d78d254a6f0da062b3cf39eaf07f01eec0927fd21e219d0af8bc0591";

fn publisher() -> DidKey {
    DID.parse().expect("spec DID parses")
}

/// A minimal valid manifest head, followed by `rest`.
fn doc(rest: &str) -> String {
    format!(
        r#"schema = 1
id = "app"
version = "1.0.0"
publisher = "{DID}"
title = "App"
summary = "An app."
description = "Does things."
license = "MIT"
source = "https://example.org/app"
min_node_version = "0.1.0"
{rest}"#
    )
}

fn one(rest: &str) -> String {
    doc(&format!("[[containers]]\nname = \"web\"\nimage = \"nginx@{DIGEST}\"\n{rest}"))
}

fn errors(text: &str) -> ManifestErrors {
    match Manifest::from_toml_str(text, &Limits::default()) {
        Ok(m) => panic!("expected problems, got a manifest: {m:?}"),
        Err(e) => e,
    }
}

fn ok(text: &str) -> Manifest {
    Manifest::from_toml_str(text, &Limits::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn example_validates_and_round_trips_through_json() {
    let m = ok(&example_toml("hello-web", &publisher()));
    assert_eq!(m.id.as_str(), "hello-web");
    assert_eq!(m.title, "Hello Web");
    assert_eq!(m.containers.len(), 1);
    assert_eq!(m.containers[0].cpus_milli, Some(500));
    let json = m.to_json_value();
    let back = Manifest::from_json_value(json.clone(), &Limits::default()).expect("JSON form validates");
    assert_eq!(back, m);
    assert_eq!(back.to_json_value(), json);
    assert_eq!(serde_json::to_value(&m).expect("serializes"), json);
}

#[test]
fn json_form_has_no_floats_or_nulls() {
    fn walk(v: &serde_json::Value) {
        match v {
            serde_json::Value::Null => panic!("null in JSON form"),
            serde_json::Value::Number(n) => assert!(n.is_u64() || n.is_i64(), "float {n}"),
            serde_json::Value::Array(a) => a.iter().for_each(walk),
            serde_json::Value::Object(o) => o.values().for_each(walk),
            _ => {}
        }
    }
    walk(&ok(&example_toml("x", &publisher())).to_json_value());
}

#[test]
fn example_with_bad_id_is_refused_on_id() {
    assert_eq!(errors(&example_toml("Bad_Id", &publisher())).fields(), ["id"]);
}

#[test]
fn reports_every_problem_not_just_the_first() {
    let text = doc(&format!(
        r#"
[[containers]]
name = "web"
image = "nginx:latest"
ports = [{{ host = 8080, container = 80 }}]
volumes = [{{ volume = "data", target = "../data" }}]
depends_on = ["nope"]
[containers.env]
"1BAD" = "x"
[containers.derived_env]
HOST = "ip_address"

[[containers]]
name = "web"
image = "nginx@{DIGEST}"
ports = [{{ host = 8080, container = 81 }}]
"#
    ))
    .replace("version = \"1.0.0\"", "version = \"1.0\"");
    let e = errors(&text);
    let fields = e.fields();
    for expected in [
        "version",
        "containers[1].name",
        "containers[0].image",
        "containers[0].env.1BAD",
        "containers[0].derived_env.HOST",
        "containers[0].volumes[0].volume",
        "containers[0].volumes[0].target",
        "containers[0].depends_on[0]",
        "containers[1].ports[0].host",
    ] {
        assert!(fields.contains(&expected), "missing {expected} in {fields:?}");
    }
    assert_eq!(fields.len(), 9, "{e}");
    let text = e.to_string();
    assert!(text.contains("containers[0].image: image `nginx:latest` is not pinned by digest — use name@sha256:<64 hex> or an archive target"), "{text}");
}

#[test]
fn missing_required_fields_are_all_named() {
    let e = errors("schema = 1\n");
    for field in [
        "id",
        "version",
        "publisher",
        "title",
        "summary",
        "description",
        "license",
        "source",
        "min_node_version",
        "containers",
    ] {
        assert!(e.has_field(field), "{field} not reported: {e}");
    }
}

#[test]
fn unknown_field_is_reported_with_its_path() {
    let e = errors(&one("imag = \"x\""));
    assert_eq!(e.fields(), ["containers[0].imag"]);
    assert!(e.problems[0].problem.contains("unknown field `imag`"), "{e}");
    assert!(e.problems[0].problem.contains("line 14"), "{e}");
    let e = errors(&doc("titel = \"x\"\n[[containers]]\nname = \"a\"\n"));
    assert_eq!(e.fields(), ["titel"]);
}

#[test]
fn wrong_type_is_reported_with_its_path() {
    let e = errors(&one("ports = [{ host = \"80\", container = 80 }]"));
    assert_eq!(e.fields(), ["containers[0].ports[0].host"]);
    let e = errors(&one("image2 = 1").replace(&format!("image = \"nginx@{DIGEST}\""), "image = 5"));
    assert_eq!(e.fields(), ["containers[0].image"]);
}

#[test]
fn toml_syntax_error_names_the_file_and_line() {
    let e = errors("schema = 1\nid = \n");
    assert_eq!(e.fields(), ["archy.toml"]);
    assert!(e.problems[0].problem.contains("line 2"), "{e}");
}

#[test]
fn archive_image_round_trips() {
    let hex = "ab".repeat(32);
    let text = doc(&format!(
        "[[containers]]\nname = \"web\"\nimage = {{ target = \"app/app.tar\", image_id = \"sha256:{hex}\" }}\n"
    ));
    let m = ok(&text);
    assert!(matches!(&m.containers[0].image, Image::Archive { target, .. } if target == "app/app.tar"));
    assert_eq!(Manifest::from_json_value(m.to_json_value(), &Limits::default()), Ok(m));
    let bad = text.replace("app/app.tar", "../app.tar").replace(&format!("sha256:{hex}"), "sha256:12");
    assert_eq!(errors(&bad).fields(), ["containers[0].image.target", "containers[0].image.image_id"]);
    let typo = text.replace("image_id", "imageid");
    assert_eq!(errors(&typo).fields(), ["containers[0].image.imageid"]);
}

#[test]
fn permissions_must_cover_privileged_uses() {
    let text = one(r#"privileged = true
host_network = true
devices = ["/dev/dri"]
binds = [
  { host = "/srv/media", target = "/media", read_only = true },
  { host = "/var/run/docker.sock", target = "/var/run/docker.sock" },
  { host = "/run", target = "/host-run" },
]"#);
    let e = errors(&text);
    assert_eq!(
        e.fields(),
        [
            "containers[0].binds[0].host",
            "containers[0].binds[1].host",
            "containers[0].binds[2].host",
            "containers[0].devices[0]",
            "containers[0].privileged",
            "containers[0].host_network",
        ],
        "{e}"
    );
    let granted = text.replace(
        "[[containers]]",
        r#"permissions = [
  { kind = "privileged" },
  { kind = "host_network" },
  { kind = "docker_socket" },
  { kind = "device", path = "/dev/dri" },
  { kind = "host_path", host = "/srv/media", target = "/media", read_only = true },
]
[[containers]]"#,
    );
    let m = ok(&granted);
    assert_eq!(m.permissions.len(), 5);
    assert_eq!(m.permissions[4].to_string(), "host_path /srv/media -> /media (read-only)");
    assert_eq!(Manifest::from_json_value(m.to_json_value(), &Limits::default()), Ok(m));
}

#[test]
fn read_only_host_path_permission_refuses_read_write_bind() {
    let text = one(r#"binds = [{ host = "/srv/media", target = "/media" }]"#).replace(
        "[[containers]]",
        "permissions = [{ kind = \"host_path\", host = \"/srv/media\", target = \"/media\", read_only = true }]\n[[containers]]",
    );
    assert_eq!(errors(&text).fields(), ["containers[0].binds[0].read_only"]);
}

#[test]
fn permission_fields_are_checked() {
    let text = one("").replace(
        "[[containers]]",
        r#"permissions = [
  { kind = "root" },
  { kind = "privileged", path = "/dev/x" },
  { kind = "host_path", host = "relative", target = "/x" },
  { kind = "device", path = "/etc/passwd" },
  { kind = "host_path", host = "/var/run", target = "/x" },
  { kind = "docker_socket" },
  { kind = "docker_socket" },
]
[[containers]]"#,
    );
    assert_eq!(
        errors(&text).fields(),
        [
            "permissions[0].kind",
            "permissions[1].path",
            "permissions[2].host",
            "permissions[3].path",
            "permissions[4].host",
            "permissions[6]",
        ]
    );
}

#[test]
fn shared_volume_needs_permission() {
    let text = one("volumes = [{ volume = \"lib\", target = \"/lib\" }]")
        .replace("[[containers]]", "[[volumes]]\nname = \"lib\"\nshared = \"media\"\n[[containers]]");
    assert_eq!(errors(&text).fields(), ["volumes[0].shared"]);
    let granted =
        text.replace("[[volumes]]", "permissions = [{ kind = \"shared_volume\", name = \"media\" }]\n[[volumes]]");
    let plan = render(&ok(&granted));
    assert_eq!(plan.volumes[0].name, "archy_shared.media");
    assert_eq!(plan.volumes[0].labels.get(LABEL_SHARED).map(String::as_str), Some("media"));
    assert!(matches!(&plan.containers[0].mounts[0], Mount::Volume { source, .. } if source == "archy_shared.media"));
}

#[test]
fn duplicates_are_refused() {
    let text = doc(&format!(
        r#"categories = ["web", "web"]
[[volumes]]
name = "data"
[[volumes]]
name = "data"
[[secrets]]
name = "pw"
[[secrets]]
name = "pw"
[[containers]]
name = "web"
image = "nginx@{DIGEST}"
tmpfs = [{{ target = "/tmp" }}]
volumes = [{{ volume = "data", target = "/tmp" }}]
ports = [{{ host = 53, container = 53, protocol = "udp" }}, {{ host = 53, container = 53 }}, {{ host = 53, container = 5353, protocol = "udp" }}]
"#
    ));
    assert_eq!(
        errors(&text).fields(),
        [
            "categories[1]",
            "volumes[1].name",
            "secrets[1].name",
            "containers[0].tmpfs[0].target",
            "containers[0].ports[2].host",
        ]
    );
}

#[test]
fn env_names_and_references() {
    let text = one(r#"[containers.env]
GOOD_1 = "a"
"BAD-NAME" = "b"
[containers.secret_env]
GOOD_1 = "pw"
PASSWORD = "undeclared"
[containers.derived_env]
TZ = "timezone"
WHERE = "moon_phase""#);
    assert_eq!(
        errors(&text).fields(),
        [
            "containers[0].env.BAD-NAME",
            "containers[0].secret_env.GOOD_1",
            "containers[0].derived_env.WHERE",
            "containers[0].secret_env.GOOD_1",
            "containers[0].secret_env.PASSWORD",
        ]
    );
}

#[test]
fn unknown_host_fact_lists_the_known_ones() {
    let e = errors(&one("[containers.derived_env]\nX = \"gpu\""));
    assert_eq!(e.fields(), ["containers[0].derived_env.X"]);
    assert!(e.problems[0].fix.contains("host_ip, hostname"), "{e}");
}

#[test]
fn depends_on_cycles_and_self() {
    let text = doc(&format!(
        r#"
[[containers]]
name = "a"
image = "nginx@{DIGEST}"
depends_on = ["b"]
[[containers]]
name = "b"
image = "nginx@{DIGEST}"
depends_on = ["c"]
[[containers]]
name = "c"
image = "nginx@{DIGEST}"
depends_on = ["a", "c"]
"#
    ));
    let e = errors(&text);
    assert_eq!(e.fields(), ["containers[2].depends_on[1]", "containers[2].depends_on[0]"]);
    assert!(e.problems[1].problem.contains("a -> b -> c -> a"), "{e}");
}

#[test]
fn render_names_labels_and_start_order() {
    let text = doc(&format!(
        r#"
[[volumes]]
name = "db"
[[secrets]]
name = "db-pass"
[[containers]]
name = "server"
image = "nginx@{DIGEST}"
depends_on = ["database"]
memory_mib = 512
cpus_milli = 1500
ports = [{{ host = 8080, container = 80 }}]
[containers.secret_env]
DB_PASSWORD = "db-pass"
[[containers]]
name = "database"
image = "postgres@{DIGEST}"
data_uid = 999
volumes = [{{ volume = "db", target = "/var/lib/postgresql/data" }}]
[containers.healthcheck]
command = ["pg_isready"]
"#
    ));
    let plan = render(&ok(&text));
    assert_eq!(plan.network.name, "archy_app");
    let names: Vec<&str> = plan.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["archy_app_database", "archy_app_server"]);
    let db = &plan.containers[0];
    assert_eq!(db.labels.get(LABEL_ROLE).map(String::as_str), Some("database"));
    assert_eq!(db.labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
    assert_eq!(db.labels.get(LABEL_VERSION).map(String::as_str), Some("1.0.0"));
    assert_eq!(db.healthcheck.as_ref().map(|h| h.test.clone()), Some(vec!["CMD".to_owned(), "pg_isready".to_owned()]));
    assert_eq!(db.healthcheck.as_ref().map(|h| (h.interval_secs, h.timeout_secs, h.retries)), Some((30, 10, 3)));
    assert_eq!(plan.volumes[0].name, "archy_app_db");
    assert_eq!(plan.volumes[0].owner_uid, Some(999));
    assert_eq!(plan.volumes[0].labels.get(LABEL_ROLE).map(String::as_str), Some("db"));
    let server = &plan.containers[1];
    assert_eq!(server.memory_bytes, Some(512 * 1024 * 1024));
    assert_eq!(server.nano_cpus, Some(1_500_000_000));
    assert_eq!(server.network, "archy_app");
    assert_eq!(server.ports[0].to_string(), "8080:80/tcp");
    let shown = plan.to_string();
    assert!(shown.contains("env DB_PASSWORD=<secret db-pass>"), "{shown}");
    assert!(shown.contains("cpus: 1.500"), "{shown}");
    let json = serde_json::to_value(&plan).expect("plan serializes");
    assert_eq!(json["containers"][1]["secret_env"]["DB_PASSWORD"], "db-pass");
}

#[test]
fn limits_bound_sizes() {
    let limits = Limits { max_manifest_bytes: 100, ..Limits::default() };
    let e = Manifest::from_toml_str(&example_toml("x", &publisher()), &limits).expect_err("too big");
    assert_eq!(e.fields(), ["archy.toml"]);
    let limits = Limits { max_containers: 0, max_title_len: 0, ..Limits::default() };
    let e = Manifest::from_toml_str(&example_toml("x", &publisher()), &limits).expect_err("too many");
    assert_eq!(e.fields(), ["title", "containers"]);
    let long = "x".repeat(5000);
    assert_eq!(errors(&one(&format!("[containers.env]\nA = \"{long}\""))).fields(), ["containers[0].env.A"]);
}

#[test]
fn schema_version_and_self_dependency() {
    let text = one("").replace("schema = 1", "schema = 2").replace(
        "[[containers]]",
        "[dependencies]\napp = \"^1\"\nother = \"not a req\"\ngood = \">=1.2, <2\"\n[[containers]]",
    );
    assert_eq!(errors(&text).fields(), ["schema", "dependencies.app", "dependencies.other"]);
    let m = ok(&one("").replace("[[containers]]", "[dependencies]\ngood = \">=1.2, <2\"\n[[containers]]"));
    assert_eq!(m.dependencies.len(), 1);
}

#[test]
fn icon_must_be_relative_or_https() {
    assert_eq!(errors(&one("").replace("license =", "icon = \"../icon.svg\"\nlicense =")).fields(), ["icon"]);
    assert_eq!(errors(&one("").replace("license =", "icon = \"http://x/i.png\"\nlicense =")).fields(), ["icon"]);
    let m = ok(&one("").replace("license =", "icon = \"https://example.org/i.png\"\nlicense ="));
    assert_eq!(m.icon, Some(Icon::Url("https://example.org/i.png".into())));
}

#[test]
fn container_details_are_checked() {
    let text = one(r#"user = "root"
restart = "sometimes"
memory_mib = 1
cpus_milli = 0
command = []
ports = [{ host = 0, container = 70000, protocol = "sctp" }]
tmpfs = [{ target = "tmp", size_mib = 0 }]
[containers.healthcheck]
command = ["true"]
interval_secs = 0"#);
    assert_eq!(
        errors(&text).fields(),
        [
            "containers[0].command",
            "containers[0].ports[0].host",
            "containers[0].ports[0].container",
            "containers[0].ports[0].protocol",
            "containers[0].tmpfs[0].size_mib",
            "containers[0].tmpfs[0].target",
            "containers[0].user",
            "containers[0].healthcheck.interval_secs",
            "containers[0].restart",
            "containers[0].memory_mib",
            "containers[0].cpus_milli",
        ]
    );
}

/// A manifest using every container field that existed before `cap_add`, `pids_limit` and
/// `no_new_privileges`; its signed bytes are pinned below.
const EVERY_OLD_FIELD: &str = r#"schema = 1
id = "pinned"
version = "1.2.3"
publisher = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
title = "Pinned"
summary = "Every field."
description = "Its JSON form must never change."
categories = ["web"]
license = "MIT"
source = "https://example.org/pinned"
min_node_version = "0.1.0"
permissions = [
  { kind = "privileged" },
  { kind = "host_network" },
  { kind = "device", path = "/dev/dri" },
  { kind = "host_path", host = "/srv/media", target = "/media", read_only = true },
  { kind = "shared_volume", name = "library" },
]
[dependencies]
other = "^1"
[[volumes]]
name = "data"
[[volumes]]
name = "lib"
shared = "library"
[[secrets]]
name = "pw"
[[containers]]
name = "db"
image = { target = "pinned/db.tar", image_id = "sha256:4ff102c5d78d254a6f0da062b3cf39eaf07f01eec0927fd21e219d0af8bc0591" }
volumes = [{ volume = "data", target = "/data" }]
data_uid = 999
[containers.healthcheck]
command = ["true"]
[[containers]]
name = "web"
image = "nginx@sha256:4ff102c5d78d254a6f0da062b3cf39eaf07f01eec0927fd21e219d0af8bc0591"
command = ["run"]
entrypoint = ["/bin/sh", "-c"]
ports = [{ host = 8080, container = 80 }]
volumes = [{ volume = "lib", target = "/lib", read_only = true }]
tmpfs = [{ target = "/tmp", size_mib = 8 }]
binds = [{ host = "/srv/media", target = "/media", read_only = true }]
devices = ["/dev/dri"]
user = "1000:1000"
restart = "always"
memory_mib = 64
cpus_milli = 500
depends_on = ["db"]
privileged = true
env = { A = "1" }
derived_env = { TZ = "timezone" }
secret_env = { PW = "pw" }
[[containers]]
name = "net"
image = "nginx@sha256:4ff102c5d78d254a6f0da062b3cf39eaf07f01eec0927fd21e219d0af8bc0591"
host_network = true
"#;

/// Manifests are signed and content-addressed: a field added to the schema must leave the
/// canonical JSON of every manifest that does not use it byte for byte as it was, or every
/// signature and hash of an existing release would change meaning.
#[test]
fn json_form_of_a_manifest_without_new_fields_keeps_its_bytes() {
    let m = ok(EVERY_OLD_FIELD);
    let bytes = crate::canonical::to_canonical(&m.to_json_value()).expect("canonical");
    assert_eq!(
        blake3::hash(&bytes).to_hex().as_str(),
        "cf59c017e09e439628c8fe1258e6b2b0bf40a20d16b65623cddc4334ebdd63b8",
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn cap_add_needs_a_requested_capability_permission_and_round_trips() {
    let text = one(r#"cap_add = ["NET_ADMIN", "NET_RAW"]"#);
    let e = errors(&text);
    assert_eq!(e.fields(), ["containers[0].cap_add[0]", "containers[0].cap_add[1]"], "{e}");
    assert_eq!(
        e.problems[0].to_string(),
        "containers[0].cap_add[0]: container adds capability `NET_ADMIN` but the manifest does not request it — \
         add { kind = \"capability\", name = \"NET_ADMIN\" } to permissions, or remove it from cap_add"
    );
    let requested = text.replace(
        "[[containers]]",
        "permissions = [{ kind = \"capability\", name = \"NET_ADMIN\" }, { kind = \"capability\", name = \"NET_RAW\" }]\n[[containers]]",
    );
    let m = ok(&requested);
    let caps: Vec<&str> = m.containers[0].cap_add.iter().map(|c| c.as_str()).collect();
    assert_eq!(caps, ["NET_ADMIN", "NET_RAW"]);
    assert_eq!(m.permissions[0].to_string(), "capability NET_ADMIN");
    let json = m.to_json_value();
    assert_eq!(json["containers"][0]["cap_add"], serde_json::json!(["NET_ADMIN", "NET_RAW"]));
    assert_eq!(json["permissions"][0], serde_json::json!({ "kind": "capability", "name": "NET_ADMIN" }));
    assert_eq!(Manifest::from_json_value(json, &Limits::default()), Ok(m.clone()));
    let plan = render(&m);
    assert_eq!(plan.containers[0].cap_add, m.containers[0].cap_add);
    let shown = plan.to_string();
    assert!(shown.contains("permission capability NET_ADMIN\n"), "{shown}");
    assert!(shown.contains("  capabilities added: NET_ADMIN, NET_RAW\n"), "{shown}");
}

#[test]
fn cap_add_takes_one_spelling_of_known_capabilities_and_never_all_or_host_level_ones() {
    let text =
        one(r#"cap_add = ["CAP_NET_ADMIN", "net_raw", "NET_ADMINS", "ALL", "SYS_ADMIN", "SYS_PTRACE", "SYS_PTRACE"]"#)
            .replace(
                "[[containers]]",
                "permissions = [{ kind = \"capability\", name = \"SYS_PTRACE\" }]\n[[containers]]",
            );
    let e = errors(&text);
    assert_eq!(
        e.fields(),
        [
            "containers[0].cap_add[0]",
            "containers[0].cap_add[1]",
            "containers[0].cap_add[2]",
            "containers[0].cap_add[3]",
            "containers[0].cap_add[4]",
            "containers[0].cap_add[6]",
        ],
        "{e}"
    );
    let p = &e.problems;
    assert_eq!(
        (p[0].problem.as_str(), p[0].fix.as_str()),
        ("`CAP_NET_ADMIN` is written `NET_ADMIN`", "write `NET_ADMIN`")
    );
    assert_eq!(p[1].fix, "write `NET_RAW`");
    assert_eq!(p[2].problem, "`NET_ADMINS` is not a Linux capability");
    assert!(p[2].fix.contains("capabilities(7)"), "{e}");
    assert_eq!(p[3].problem, "`ALL` would add every capability");
    assert!(p[3].fix.contains("privileged = true"), "{e}");
    assert!(p[4].problem.starts_with("`SYS_ADMIN` mounts file systems"), "{e}");
    assert!(p[4].fix.contains("{ kind = \"privileged\" }"), "{e}");
    assert_eq!(p[5].problem, "`SYS_PTRACE` is listed twice");
}

#[test]
fn capability_permissions_are_checked_like_cap_add() {
    let text = one("").replace(
        "[[containers]]",
        r#"permissions = [
  { kind = "capability" },
  { kind = "capability", name = "CAP_NET_ADMIN" },
  { kind = "capability", name = "SYS_MODULE" },
  { kind = "capability", name = "NET_ADMIN", path = "/dev/x" },
  { kind = "capability", name = "NET_RAW" },
  { kind = "capability", name = "NET_RAW" },
]
[[containers]]"#,
    );
    assert_eq!(
        errors(&text).fields(),
        ["permissions[0].name", "permissions[1].name", "permissions[2].name", "permissions[3].path", "permissions[5]"]
    );
}

#[test]
fn a_privileged_container_lists_no_finer_relaxation() {
    let text = one("privileged = true\ncap_add = [\"NET_ADMIN\"]\nno_new_privileges = false").replace(
        "[[containers]]",
        "permissions = [{ kind = \"privileged\" }, { kind = \"capability\", name = \"NET_ADMIN\" }, { kind = \"new_privileges\" }]\n[[containers]]",
    );
    assert_eq!(errors(&text).fields(), ["containers[0].cap_add", "containers[0].no_new_privileges"]);
}

#[test]
fn pids_limit_above_the_default_needs_a_permission_that_covers_it() {
    assert!(ok(&one("pids_limit = 256")).containers[0].pids_limit == Some(256));
    assert!(ok(&one("pids_limit = 1024")).containers[0].pids_limit == Some(1024));
    let e = errors(&one("pids_limit = 4096"));
    assert_eq!(e.fields(), ["containers[0].pids_limit"]);
    assert_eq!(
        e.problems[0].fix,
        "add { kind = \"pids_limit\", max = 4096 } to permissions, or lower pids_limit to 1024"
    );
    let small = one("pids_limit = 4096")
        .replace("[[containers]]", "permissions = [{ kind = \"pids_limit\", max = 2048 }]\n[[containers]]");
    assert_eq!(errors(&small).fields(), ["containers[0].pids_limit"]);
    let m = ok(&small.replace("max = 2048", "max = 4096"));
    assert_eq!(m.permissions[0].to_string(), "pids_limit 4096");
    assert_eq!(render(&m).containers[0].pids_limit, Some(4096));
    assert!(render(&m).to_string().contains("  pids limit: 4096\n"));
    assert_eq!(Manifest::from_json_value(m.to_json_value(), &Limits::default()), Ok(m));
    assert_eq!(errors(&one("pids_limit = 0")).fields(), ["containers[0].pids_limit"]);
    assert_eq!(errors(&one("pids_limit = 4194305")).fields(), ["containers[0].pids_limit"]);
    let bad = one("").replace(
        "[[containers]]",
        "permissions = [{ kind = \"pids_limit\" }, { kind = \"pids_limit\", max = 0 }, { kind = \"pids_limit\", max = 9, name = \"x\" }]\n[[containers]]",
    );
    assert_eq!(errors(&bad).fields(), ["permissions[0].max", "permissions[1].max", "permissions[2].name"]);
}

#[test]
fn no_new_privileges_is_turned_off_only_with_the_new_privileges_permission() {
    let text = one("no_new_privileges = false");
    let e = errors(&text);
    assert_eq!(e.fields(), ["containers[0].no_new_privileges"]);
    assert!(e.problems[0].fix.contains("{ kind = \"new_privileges\" }"), "{e}");
    let m = ok(&text.replace("[[containers]]", "permissions = [{ kind = \"new_privileges\" }]\n[[containers]]"));
    assert!(!m.containers[0].no_new_privileges);
    assert_eq!(m.to_json_value()["containers"][0]["no_new_privileges"], false);
    let plan = render(&m);
    assert!(!plan.containers[0].no_new_privileges);
    assert!(plan.to_string().contains("  without no-new-privileges\n"));
    assert_eq!(Manifest::from_json_value(m.to_json_value(), &Limits::default()), Ok(m));
    assert!(ok(&one("")).containers[0].no_new_privileges, "the default");
}

#[test]
fn new_container_fields_at_their_default_are_left_out_of_the_json_form() {
    let plain = ok(&one("")).to_json_value();
    let container = plain["containers"][0].as_object().expect("container object");
    for field in ["cap_add", "pids_limit", "no_new_privileges"] {
        assert!(!container.contains_key(field), "{field} in {container:?}");
    }
    // Writing a default out in TOML signs the same bytes as leaving it out.
    let spelled = ok(&one("cap_add = []\nno_new_privileges = true")).to_json_value();
    assert_eq!(
        crate::canonical::to_canonical(&spelled).expect("canonical"),
        crate::canonical::to_canonical(&plain).expect("canonical")
    );
}
