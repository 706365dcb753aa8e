//! Drives the real `archy` binary and re-reads what it wrote through the library.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::copy_app;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn archy(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_archy"))
            .args(args)
            .current_dir(self.dir.path())
            .env("ARCHY_KEY", self.path("publisher.key"))
            .output()
            .expect("run archy")
    }
    fn ok(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.archy(&all);
        assert!(out.status.success(), "archy {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json output")
    }
    /// Copies an app from `apps/` and makes this environment's key its publisher.
    fn app(&self, id: &str, did: &str) -> PathBuf {
        copy_app(self.dir.path(), id, did)
    }
}

#[test]
fn key_new_writes_a_0600_key_and_show_reports_the_same_identity() {
    let env = Env::new();
    let created = env.ok(&["key", "new"]);
    let shown = env.ok(&["key", "show"]);
    for field in ["did", "keyid", "minisign_public_key"] {
        assert_eq!(created[field], shown[field], "{field}");
    }
    let key = catalog::keyfile::read(&env.path("publisher.key")).expect("library reads the key");
    assert_eq!(shown["did"], key.did().to_string());
    assert_eq!(shown["keyid"], key.key_id());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(env.path("publisher.key")).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A second `key new` never overwrites the key.
    let again = env.archy(&["key", "new"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn invalid_manifest_exits_1_naming_the_field() {
    let env = Env::new();
    env.ok(&["key", "new"]);
    env.ok(&["app", "new", "my-app"]);
    env.ok(&["app", "validate", "my-app"]);
    let toml = std::fs::read_to_string(env.path("my-app/archy.toml")).expect("read");
    let broken = toml.replacen("\nimage = ", "\nimage_broken = ", 1);
    std::fs::write(env.path("my-app/archy.toml"), broken).expect("write");
    let out = env.archy(&["app", "validate", "my-app"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("my-app/archy.toml") && err.contains("containers[0]"), "{err}");
}

#[test]
fn render_lists_what_a_node_would_create() {
    let env = Env::new();
    let plan = env.ok(&["app", "render", concat!(env!("CARGO_MANIFEST_DIR"), "/../apps/photos")]);
    let text = plan.to_string();
    for name in ["archy_photos", "archy_photos_server", "archy_photos_database", "archy.managed"] {
        assert!(text.contains(name), "render output names {name}");
    }
    assert!(!text.contains("password\":\""), "secret values never appear");
}

#[test]
fn render_shows_the_capabilities_a_container_adds_and_validate_names_the_missing_request() {
    let env = Env::new();
    env.ok(&["key", "new"]);
    env.ok(&["app", "new", "my-vpn", "--template", "registry-image"]);
    let toml = std::fs::read_to_string(env.path("my-vpn/archy.toml")).expect("read");
    let adds = toml.replacen("cpus_milli = 500\n", "cpus_milli = 500\ncap_add = [\"NET_ADMIN\"]\n", 1);
    std::fs::write(env.path("my-vpn/archy.toml"), &adds).expect("write");
    let out = env.archy(&["app", "validate", "my-vpn"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("containers[0].cap_add[0]") && err.contains("{ kind = \"capability\", name = \"NET_ADMIN\" }"),
        "{err}"
    );

    let requested = adds.replacen(
        "# Named volumes",
        "permissions = [{ kind = \"capability\", name = \"NET_ADMIN\" }]\n\n# Named volumes",
        1,
    );
    std::fs::write(env.path("my-vpn/archy.toml"), requested).expect("write");
    let out = env.archy(&["app", "render", "my-vpn"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("permission capability NET_ADMIN\n"), "{text}");
    assert!(text.contains("  capabilities added: NET_ADMIN\n"), "{text}");
    let plan = env.ok(&["app", "render", "my-vpn"]);
    assert_eq!(plan["containers"][0]["cap_add"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(plan["permissions"][0], serde_json::json!({ "kind": "capability", "name": "NET_ADMIN" }));
}

#[test]
fn repository_lifecycle_through_the_cli_is_verified_by_the_library() {
    let env = Env::new();
    let did = env.ok(&["key", "new"])["did"].as_str().expect("did").to_owned();
    let init = env.ok(&["repo", "init", "origin"]);
    let root_pub = init["root_minisign_public_key"].as_str().expect("minisign key").to_owned();
    env.ok(&[
        "repo",
        "add-publisher",
        "origin",
        "--name",
        "demo",
        "--did",
        &did,
        "--app",
        "hello-web",
        "--app",
        "samba",
    ]);
    let app = env.app("samba", &did);
    env.ok(&["repo", "add", "origin", app.to_str().expect("utf8")]);
    env.ok(&["repo", "rotate", "origin", "--role", "root"]);
    env.ok(&["repo", "rotate", "origin", "--role", "snapshot"]);
    env.ok(&["repo", "timestamp", "origin"]);
    let verified = env.ok(&["repo", "verify", "origin"]);
    assert_eq!(verified["root_version"], 3);
    assert_eq!(verified["apps"][0]["id"], "samba");
    assert_eq!(verified["apps"][0]["publisher"], did);

    // The bootstrap root's .minisig verifies with the printed minisign key.
    let root = std::fs::read(env.path("origin/repository/metadata/1.root.json")).expect("root");
    let sig = std::fs::read_to_string(env.path("origin/repository/metadata/1.root.json.minisig")).expect("minisig");
    catalog::minisign::verify(&root_pub, &sig, &root).expect("root.json.minisig verifies");

    // Keys are 0600 in a 0700 folder.
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(env.path("origin/keys")).expect("keys").flatten() {
        assert_eq!(entry.metadata().expect("stat").permissions().mode() & 0o777, 0o600, "{:?}", entry.path());
    }

    // A published version is immutable: the same version with other content is refused.
    let toml = std::fs::read_to_string(app.join("archy.toml")).expect("read");
    std::fs::write(app.join("archy.toml"), toml.replacen("title = ", "title = \"Changed\"\n# ", 1)).expect("write");
    let out = env.archy(&["repo", "add", "origin", app.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already published"));
}

#[test]
fn a_repository_made_with_a_log_logs_every_timestamp_the_cli_writes() {
    let env = Env::new();
    let did = env.ok(&["key", "new"])["did"].as_str().expect("did").to_owned();
    // A log name that is not a signed-note key name is refused before anything is written.
    let out = env.archy(&["repo", "init", "origin", "--log", "has space"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!env.path("origin/keys").exists(), "a refused init wrote keys");
    let init = env.ok(&["repo", "init", "origin", "--log", "origin.test/log"]);
    let vkey = init["log"].as_str().expect("init prints the log's verifier key").to_owned();
    env.ok(&["repo", "add-publisher", "origin", "--name", "demo", "--did", &did, "--app", "samba"]);
    let app = env.app("samba", &did);
    env.ok(&["repo", "add", "origin", app.to_str().expect("utf8")]);
    env.ok(&["repo", "rotate", "origin", "--role", "root"]);
    env.ok(&["repo", "timestamp", "origin"]);

    let served = env.path("origin/repository");
    let repo = catalog::repo::Repository::load(&served, catalog::repo::Expiry::default()).expect("load");
    // The rotated root still names the log, with the key `init` printed.
    let log = repo.root().log().expect("root").expect("the root names the log");
    assert_eq!(log.to_vkey(), vkey);
    assert_eq!(log.name(), "origin.test/log");
    // Every timestamp written is a leaf, the last is the one served, and the checkpoint signs them.
    let leaves = catalog::repo::log_leaves(&served).expect("leaves");
    assert_eq!(leaves.len(), 5, "init, add-publisher, add, rotate and timestamp each wrote one");
    let timestamp = std::fs::read(served.join("metadata/timestamp.json")).expect("timestamp");
    assert_eq!(leaves.last(), Some(&catalog::tlog::leaf_hash(&timestamp)));
    let note = catalog::repo::log_checkpoint(&served).expect("read").expect("a checkpoint");
    let checkpoint = catalog::tlog::SignedCheckpoint::open(&note, &log).expect("the checkpoint verifies");
    assert_eq!(checkpoint.checkpoint().size, 5);
    assert_eq!(checkpoint.checkpoint().root, catalog::tlog::root(&leaves));

    // Without its key, nothing more is published.
    std::fs::rename(env.path("origin/keys/log.key"), env.path("log.key")).expect("move the key");
    let out = env.archy(&["repo", "timestamp", "origin"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys/log.key"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(catalog::repo::log_leaves(&served).expect("leaves").len(), 5);
    assert_eq!(std::fs::read(served.join("metadata/timestamp.json")).expect("timestamp"), timestamp);
    let files = |dir: &str| std::fs::read_dir(served.join(dir)).expect("dir").count();
    let before = files("metadata");
    assert!(!env.archy(&["repo", "sign", "origin"]).status.success());
    assert_eq!(files("metadata"), before, "a refused publish wrote metadata");
}

#[test]
fn a_repository_made_without_a_log_starts_one_with_a_new_root() {
    let env = Env::new();
    let did = env.ok(&["key", "new"])["did"].as_str().expect("did").to_owned();
    env.ok(&["repo", "init", "origin"]);
    env.ok(&["repo", "add-publisher", "origin", "--name", "demo", "--did", &did, "--app", "samba"]);
    let served = env.path("origin/repository");
    assert!(catalog::repo::log_leaves(&served).expect("leaves").is_empty());
    // A bad name is refused before anything is written.
    let out = env.archy(&["repo", "add-log", "origin", "--name", "has space"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!env.path("origin/keys/log.key").exists());
    assert!(!served.join("metadata/2.root.json").exists());

    let added = env.ok(&["repo", "add-log", "origin", "--name", "origin.test/log"]);
    assert_eq!(added["root_version"], 2, "{added}");
    let repo = catalog::repo::Repository::load(&served, catalog::repo::Expiry::default()).expect("load");
    let log = repo.root().log().expect("root").expect("root v2 names the log");
    assert_eq!(log.to_vkey(), added["log"].as_str().expect("the verifier key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.path("origin/keys/log.key")).expect("log.key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The timestamp that came with the new root is the log's first leaf, and so is every one after.
    env.ok(&["repo", "timestamp", "origin"]);
    let leaves = catalog::repo::log_leaves(&served).expect("leaves");
    assert_eq!(leaves.len(), 2);
    let timestamp = std::fs::read(served.join("metadata/timestamp.json")).expect("timestamp");
    assert_eq!(leaves.last(), Some(&catalog::tlog::leaf_hash(&timestamp)));
    let note = catalog::repo::log_checkpoint(&served).expect("read").expect("a checkpoint");
    assert_eq!(catalog::tlog::SignedCheckpoint::open(&note, &log).expect("verifies").checkpoint().size, 2);
    // A client that trusts root v1 walks to v2 (signed by the root keys).
    env.ok(&["repo", "verify", "origin"]);
    // One log per catalog: another key would be another history.
    let out = env.archy(&["repo", "add-log", "origin", "--name", "origin.test/other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already names"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tampered_repository_fails_verification_with_exit_1() {
    let env = Env::new();
    let did = env.ok(&["key", "new"])["did"].as_str().expect("did").to_owned();
    env.ok(&["repo", "init", "origin"]);
    env.ok(&["repo", "add-publisher", "origin", "--name", "demo", "--did", &did, "--app", "static-web"]);
    let app = env.app("static-web", &did);
    env.ok(&["repo", "add", "origin", app.to_str().expect("utf8")]);
    let dir = env.path("origin/repository/targets/apps/static-web");
    let file = std::fs::read_dir(&dir).expect("targets").flatten().next().expect("envelope").path();
    let mut bytes = std::fs::read(&file).expect("read");
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).expect("tamper");
    let out = env.archy(&["repo", "verify", "origin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sha256 hash"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn publisher_cannot_add_an_app_it_was_not_delegated() {
    let env = Env::new();
    let did = env.ok(&["key", "new"])["did"].as_str().expect("did").to_owned();
    env.ok(&["repo", "init", "origin"]);
    env.ok(&["repo", "add-publisher", "origin", "--name", "demo", "--did", &did, "--app", "samba"]);
    let app = env.app("wiki", &did);
    let out = env.archy(&["repo", "add", "origin", app.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not delegated target path `apps/wiki/"));
}

#[test]
fn sign_writes_a_minisig_that_verifies() {
    let env = Env::new();
    let key = env.ok(&["key", "new"]);
    std::fs::write(env.path("release.tar"), b"release bytes").expect("write");
    env.ok(&["sign", "release.tar", "--trusted-comment", "release 1.0"]);
    let sig = std::fs::read_to_string(env.path("release.tar.minisig")).expect("minisig");
    let verified = catalog::minisign::verify(key["minisign_public_key"].as_str().expect("key"), &sig, b"release bytes")
        .expect("verifies");
    assert_eq!(verified.trusted_comment(), "release 1.0");
}

#[test]
fn stock_minisign_accepts_the_bootstrap_root_signature() {
    let env = Env::new();
    let init = env.ok(&["repo", "init", "origin"]);
    let key = init["root_minisign_public_key"].as_str().expect("key");
    let minisign = std::env::var("MINISIGN").unwrap_or_else(|_| "minisign".into());
    let out = Command::new(&minisign)
        .args(["-V", "-P", key, "-m"])
        .arg(env.path("origin/repository/metadata/1.root.json"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{minisign}` ({e}): install the Debian package `minisign`"));
    assert!(out.status.success(), "minisign -V refused: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("archy bootstrap root v1"));
}

#[test]
fn key_rotate_keeps_the_old_key_and_signs_a_succession_with_both() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new();
    let old = env.ok(&["key", "new"])["did"].as_str().expect("present").to_owned();
    let rotated = env.ok(&["key", "rotate"]);
    let new = rotated["did"].as_str().expect("present").to_owned();
    assert_ne!(new, old);
    assert_eq!(env.ok(&["key", "show"])["did"], new.as_str(), "the key path holds the new key");
    let retired = PathBuf::from(rotated["retired_key"].as_str().expect("present"));
    assert_eq!(catalog::keyfile::read(&retired).expect("present").did().to_string(), old);
    for key in [env.path("publisher.key"), retired] {
        assert_eq!(std::fs::metadata(&key).expect("present").permissions().mode() & 0o777, 0o600, "{}", key.display());
    }
    let bytes = std::fs::read(rotated["statement"].as_str().expect("present")).expect("present");
    let statement = catalog::keylife::Statement::from_slice(&bytes).expect("present");
    statement.verify().expect("signed by both keys");
    match statement {
        catalog::keylife::Statement::Succession(s) => {
            assert_eq!((s.old.to_string(), s.new.to_string()), (old.clone(), new.clone()));
        }
        other => panic!("{other:?}"),
    }
    assert!(rotated["posted"].is_null(), "no relay named, nothing posted");
    // A revocation prepared with a successor is written 0600 and verifies.
    let prepared = env.ok(&["key", "revoke", "--prepare", "--successor", &old, "--out", "revoke.json"]);
    assert_eq!(prepared["posted"], false);
    let path = env.path("revoke.json");
    assert_eq!(std::fs::metadata(&path).expect("present").permissions().mode() & 0o777, 0o600);
    catalog::keylife::Statement::from_slice(&std::fs::read(&path).expect("present"))
        .expect("present")
        .verify()
        .expect("verifies");
    // Revoking without --prepare needs a relay to post to.
    let out = env.archy(&["key", "revoke", "--out", "now.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--relay"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!env.path("now.json").exists(), "nothing written when nothing can be posted");
}
