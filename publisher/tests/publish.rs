//! `archy publish --registry` against a real `archy-registry serve` on loopback, and a real
//! `archy-node` reading the result.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::{Running, bin, write_app};

struct Registry {
    _running: Running,
    url: String,
}

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
    fn archy(&self, key: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_archy"))
            .args(args)
            .current_dir(self.dir.path())
            .env("ARCHY_KEY", self.path(key))
            .output()
            .expect("run archy")
    }
    fn ok(&self, key: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.archy(key, &all);
        assert!(out.status.success(), "archy {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json output")
    }
    /// A new publisher key; returns its DID.
    fn publisher(&self, key: &str) -> String {
        self.ok(key, &["key", "new"]);
        self.ok(key, &["key", "show"])["did"].as_str().unwrap().to_owned()
    }
    /// An origin repository delegating `apps` to the publisher `did` as role `name`.
    fn origin(&self) {
        self.ok("publisher.key", &["repo", "init", "origin"]);
    }
    fn delegate(&self, name: &str, did: &str, apps: &[&str]) {
        let mut args = vec!["repo", "add-publisher", "origin", "--name", name, "--did", did];
        for a in apps {
            args.extend(["--app", a]);
        }
        self.ok("publisher.key", &args);
    }
    fn serve(&self) -> Registry {
        let child = Command::new(bin("archy-registry"))
            .args(["serve", "--data"])
            .arg(self.path("origin"))
            .args(["--http", "127.0.0.1:0", "--no-iroh"])
            .env("ARCHY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn registry");
        let running = Running(child);
        let info = self.path("origin/registry/endpoint.json");
        for _ in 0..200 {
            if let Ok(bytes) = std::fs::read(&info)
                && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            {
                let url = v["http"].as_str().unwrap().to_owned();
                return Registry { _running: running, url };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("registry did not start");
    }
    /// An app folder for `id` published by `did`.
    fn app(&self, id: &str, version: &str, did: &str) -> PathBuf {
        write_app(self.dir.path(), id, version, did)
    }
}

fn publish(env: &Env, key: &str, app: &Path, registry: &Registry, extra: &[&str]) -> Output {
    let mut args = vec!["--json", "publish", app.to_str().unwrap(), "--registry", &registry.url];
    args.extend_from_slice(extra);
    env.archy(key, &args)
}

fn node(env: &Env, registry: &Registry) -> PathBuf {
    let data = env.path("node");
    let out = Command::new(bin("archy-node"))
        .args(["init", "--data"])
        .arg(&data)
        .arg("--root")
        .arg(env.path("origin/repository/metadata/1.root.json"))
        .args(["--origin", &registry.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(bin("archy-node")).args(["sync", "--data"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));
    data
}

fn node_apps(data: &Path) -> Vec<(String, String)> {
    let out = Command::new(bin("archy-node")).args(["apps", "--json", "--data"]).arg(data).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_owned(), a["version"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn published_app_and_its_archive_reach_a_node() {
    let env = Env::new();
    let did = env.publisher("publisher.key");
    env.origin();
    env.delegate("acme", &did, &["notes"]);
    let registry = env.serve();
    let app = env.app("notes", "1.0.0", &did);
    // An archive image the manifest names, shipped from dist/.
    let toml = std::fs::read_to_string(app.join("archy.toml")).unwrap();
    let pinned = toml.lines().find(|l| l.starts_with("image = ")).expect("image line").to_owned();
    let archive_line = "image = { target = \"notes/notes-1.0.0.tar\", image_id = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\" }";
    // And an icon, which the catalog carries too.
    let toml = toml.replacen(&pinned, archive_line, 1);
    let toml = if toml.contains("# icon = \"icon.svg\"") {
        toml.replace("# icon = \"icon.svg\"", "icon = \"icon.svg\"")
    } else {
        toml.replacen("\nlicense = ", "\nicon = \"icon.svg\"\nlicense = ", 1)
    };
    std::fs::write(app.join("archy.toml"), toml).unwrap();
    let icon = b"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 8 8\"><rect width=\"8\" height=\"8\"/></svg>";
    std::fs::write(app.join("icon.svg"), icon).unwrap();
    std::fs::create_dir_all(app.join("dist")).unwrap();
    let archive: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(app.join("dist/notes-1.0.0.tar"), &archive).unwrap();

    let out = publish(&env, "publisher.key", &app, &registry, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["role"], "acme");
    assert_eq!(answer["published"].as_array().unwrap().len(), 3, "{answer}");
    assert!(answer["published"].as_array().unwrap().iter().any(|p| p == "images/notes/icon-1.0.0.svg"), "{answer}");

    let data = node(&env, &registry);
    assert_eq!(node_apps(&data), vec![("notes".to_owned(), "1.0.0".to_owned())]);
    let out = Command::new(bin("archy-node"))
        .args(["fetch", "images/notes/notes-1.0.0.tar", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8(out.stdout).unwrap();
    assert_eq!(std::fs::read(path.trim()).unwrap(), archive);
    // The icon is a target of the verified catalog like the archive.
    let out = Command::new(bin("archy-node"))
        .args(["fetch", "images/notes/icon-1.0.0.svg", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8(out.stdout).unwrap();
    assert_eq!(std::fs::read(path.trim()).unwrap(), icon);
}

#[test]
fn refused_submissions_say_why() {
    let env = Env::new();
    let did = env.publisher("publisher.key");
    env.origin();
    env.delegate("acme", &did, &["notes"]);
    let registry = env.serve();

    // A key the origin never delegated to.
    let stranger = env.publisher("stranger.key");
    let out = publish(&env, "stranger.key", &env.app("notes", "9.0.0", &stranger), &registry, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown_publisher"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An app id not delegated to this publisher.
    let out = publish(&env, "publisher.key", &env.app("other", "1.0.0", &did), &registry, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("path_not_delegated") && err.contains("apps/other/1.0.0.json"), "{err}");

    // A role version that does not move forward: replay the first accepted submission.
    let out = publish(&env, "publisher.key", &env.app("notes", "1.0.0", &did), &registry, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let role = std::fs::read(env.path("origin/repository/metadata/1.acme.json")).unwrap();
    let (code, body) = raw_submit(&registry.url, "acme", &role, &[]);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"], "version_not_increasing", "{body}");

    // Metadata not signed by the delegated key.
    let mut forged: Value = serde_json::from_slice(&role).unwrap();
    forged["signed"]["version"] = 7.into();
    let (code, body) = raw_submit(&registry.url, "acme", &serde_json::to_vec(&forged).unwrap(), &[]);
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"], "bad_signature_or_metadata", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("valid signature"), "{body}");

    // The catalog is unchanged by all of it.
    let data = node(&env, &registry);
    assert_eq!(node_apps(&data), vec![("notes".to_owned(), "1.0.0".to_owned())]);
}

#[test]
fn concurrent_submissions_from_different_publishers_both_land() {
    let env = Env::new();
    env.origin();
    let mut apps = Vec::new();
    for (i, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let key = format!("{name}.key");
        let did = env.publisher(&key);
        let id = format!("app-{name}");
        env.delegate(name, &did, &[&id]);
        apps.push((key, env.app(&id, &format!("1.{i}.0"), &did), id));
    }
    let registry = env.serve();
    let handles: Vec<_> = apps
        .iter()
        .map(|(key, dir, _)| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_archy"));
            cmd.args(["publish", dir.to_str().unwrap(), "--registry", &registry.url]).env("ARCHY_KEY", env.path(key));
            std::thread::spawn(move || cmd.output().unwrap())
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let data = node(&env, &registry);
    let mut listed: Vec<String> = node_apps(&data).into_iter().map(|a| a.0).collect();
    listed.sort();
    assert_eq!(listed, vec!["app-alpha", "app-beta", "app-gamma"]);
}

/// Posts a submission by hand: `(status, JSON body)`.
fn raw_submit(base: &str, role: &str, metadata: &[u8], files: &[(&str, &[u8])]) -> (u16, Value) {
    let boundary = "archy-test-boundary";
    let mut body = Vec::new();
    let mut part = |name: &str, filename: Option<&str>, bytes: &[u8]| {
        let disp = match filename {
            Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
            None => format!("form-data; name=\"{name}\""),
        };
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    part("role", None, role.as_bytes());
    part("metadata", None, metadata);
    for (path, bytes) in files {
        part("file", Some(path), bytes);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let result = ureq::post(&format!("{base}/v1/submissions"))
        .set("Content-Type", &format!("multipart/form-data; boundary={boundary}"))
        .send_bytes(&body);
    match result {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("{e}"),
    }
}
