//! Manifest validation against fixture folders (`tests/data/manifest-<failure>/`) and the real
//! apps under the workspace's `apps/`.

use std::path::{Path, PathBuf};

use catalog::manifest::{Image, Limits, Manifest, ManifestErrors, Mount, render};

fn data(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(format!("manifest-{case}"))
}

fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps")
}

fn refused(case: &str) -> ManifestErrors {
    match Manifest::from_dir(&data(case), &Limits::default()) {
        Ok(m) => panic!("fixture {case} validated: {m:?}"),
        Err(e) => e,
    }
}

/// Each fixture is refused with exactly the listed field paths.
#[test]
fn manifest_fixtures_are_refused_at_the_exact_field() {
    let cases: &[(&str, &[&str])] = &[
        ("unpinned-image", &["containers[0].image"]),
        ("dotdot-volume", &["containers[0].volumes[0].target"]),
        ("relative-target", &["containers[0].tmpfs[0].target"]),
        ("undeclared-privileged", &["containers[0].privileged"]),
        ("undeclared-capability", &["containers[0].cap_add[0]"]),
        ("docker-socket", &["containers[0].binds[0].host"]),
        ("undeclared-host-path", &["containers[0].binds[0].host"]),
        ("undeclared-device", &["containers[0].devices[0]"]),
        ("duplicate-port", &["containers[1].ports[0].host"]),
        ("duplicate-container", &["containers[1].name"]),
        ("depends-cycle", &["containers[1].depends_on[0]"]),
        ("depends-unknown", &["containers[0].depends_on[0]"]),
        ("unknown-fact", &["containers[0].derived_env.PUBLIC_IP"]),
        ("undeclared-secret", &["containers[0].secret_env.DB_PASSWORD"]),
        ("bad-env-name", &["containers[0].env.LOG-LEVEL"]),
        ("unknown-field", &["containers[0].restart_policy"]),
        ("self-dependency", &["dependencies.fixture"]),
        ("bad-id", &["id"]),
        ("bad-version", &["version"]),
        ("no-containers", &["containers"]),
        ("missing-icon", &["icon"]),
        ("oversized", &["description"]),
    ];
    let mut seen = Vec::new();
    for (case, fields) in cases {
        let errors = refused(case);
        assert_eq!(errors.fields(), *fields, "fixture {case}:\n{errors}");
        for p in &errors.problems {
            assert!(!p.problem.is_empty() && !p.fix.is_empty(), "fixture {case} lacks text: {p:?}");
        }
        seen.push(format!("manifest-{case}"));
    }
    // Every fixture folder on disk is covered by a case above.
    let on_disk = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"))
        .expect("tests/data exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("manifest-"));
    for name in on_disk {
        assert!(seen.contains(&name), "fixture {name} has no case in this test");
    }
}

#[test]
fn manifest_messages_say_what_is_wrong_and_how_to_fix_it() {
    let text = refused("unpinned-image").to_string();
    assert_eq!(
        text,
        "containers[0].image: image `docker.io/library/nginx:latest` is not pinned by digest — \
         use name@sha256:<64 hex> or an archive target { target = \"<TUF target path>\", image_id = \"sha256:<64 hex>\" }"
    );
    let socket = refused("docker-socket");
    assert!(socket.problems[0].problem.contains("`docker_socket` permission"), "{socket}");
    assert!(socket.problems[0].fix.contains("kind = \"docker_socket\""), "{socket}");
    let privileged = refused("undeclared-privileged");
    assert!(privileged.problems[0].fix.contains("kind = \"privileged\""), "{privileged}");
    let capability = refused("undeclared-capability");
    assert!(capability.problems[0].fix.contains("{ kind = \"capability\", name = \"NET_ADMIN\" }"), "{capability}");
    let cycle = refused("depends-cycle");
    assert!(cycle.problems[0].problem.contains("web -> db -> web"), "{cycle}");
    let fact = refused("unknown-fact");
    assert!(fact.problems[0].problem.contains("public_ip"), "{fact}");
}

#[test]
fn oversized_manifest_file_is_refused_before_parsing() {
    let limits = Limits { max_manifest_bytes: 4096, ..Limits::default() };
    let errors = Manifest::from_dir(&data("oversized"), &limits).expect_err("over 4 KiB");
    assert_eq!(errors.fields(), ["archy.toml"]);
    assert!(errors.problems[0].problem.contains("over the limit of 4096 bytes"), "{errors}");
}

#[test]
fn missing_folder_names_the_manifest_file() {
    let errors = Manifest::from_dir(&data("does-not-exist"), &Limits::default()).expect_err("no folder");
    assert_eq!(errors.fields(), ["archy.toml"]);
}

fn app_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(apps_dir())
        .expect("apps/ exists")
        .filter_map(|e| {
            let e = e.ok()?;
            e.path().join("archy.toml").is_file().then(|| e.file_name().into_string().ok())?
        })
        .collect();
    names.sort();
    names
}

/// Every app under `apps/` validates, its id is its folder name, and its JSON form round-trips.
#[test]
fn every_app_manifest_validates() {
    let names = app_names();
    for expected in ["hello-web", "media", "photos", "samba", "static-web", "wiki"] {
        assert!(names.iter().any(|n| n == expected), "apps/{expected} is missing");
    }
    for name in &names {
        let manifest = Manifest::from_dir(&apps_dir().join(name), &Limits::default())
            .unwrap_or_else(|e| panic!("apps/{name} does not validate:\n{e}"));
        assert_eq!(manifest.id.as_str(), name);
        let again = Manifest::from_json_value(manifest.to_json_value(), &Limits::default())
            .unwrap_or_else(|e| panic!("apps/{name} JSON form does not validate:\n{e}"));
        assert_eq!(again, manifest, "apps/{name} round trip");
        let plan = render(&manifest);
        assert_eq!(plan.network.name, format!("archy_{name}"));
        for c in &plan.containers {
            assert!(c.name.starts_with(&format!("archy_{name}_")), "{}", c.name);
            assert_eq!(c.labels.get("archy.app"), Some(name));
        }
    }
}

#[test]
fn photos_manifest_shares_the_database_password_and_starts_in_order() {
    let m = Manifest::from_dir(&apps_dir().join("photos"), &Limits::default()).expect("photos validates");
    let plan = render(&m);
    let order: Vec<&str> = plan.containers.iter().map(|c| c.role.as_str()).collect();
    assert_eq!(order, ["database", "redis", "server"]);
    let secret_of = |role: &str, var: &str| {
        plan.containers
            .iter()
            .find(|c| c.role.as_str() == role)
            .and_then(|c| c.secret_env.get(var))
            .map(|s| s.to_string())
    };
    assert_eq!(secret_of("database", "POSTGRES_PASSWORD").as_deref(), Some("db-password"));
    assert_eq!(secret_of("server", "DB_PASSWORD").as_deref(), Some("db-password"));
    assert!(plan.containers.iter().filter(|c| c.role.as_str() != "server").all(|c| c.healthcheck.is_some()));
    // The plan names secrets but never holds a value: no env value mentions the secret.
    assert!(plan.containers.iter().all(|c| !c.env.contains_key("DB_PASSWORD")));
}

#[test]
fn hello_web_manifest_ships_an_archive_image() {
    let m = Manifest::from_dir(&apps_dir().join("hello-web"), &Limits::default()).expect("hello-web validates");
    let Image::Archive { target, image_id } = &m.containers[0].image else {
        panic!("hello-web must use an archive image: {:?}", m.containers[0].image);
    };
    assert_eq!(target, "hello-web/hello-web-0.1.0.tar");
    assert_eq!(image_id.hex().len(), 64);
    // httpd runs under a shell that exits on SIGTERM, so stopping the app is immediate.
    let command = m.containers[0].command.as_deref().expect("command").join(" ");
    assert!(command.contains("trap 'exit 0' TERM") && command.contains("httpd -f -p 8080 -h /www"), "{command}");
    let plan = render(&m);
    assert!(matches!(&plan.containers[0].mounts[0], Mount::Volume { source, target, .. }
        if source == "archy_hello-web_www" && target == "/www"));
}

#[cfg(unix)]
#[test]
fn manifest_icon_symlink_out_of_the_folder_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app");
    std::fs::create_dir(&app).expect("mkdir");
    std::fs::write(dir.path().join("secret.svg"), "<svg/>").expect("write");
    std::os::unix::fs::symlink("../secret.svg", app.join("icon.svg")).expect("symlink");
    let text = std::fs::read_to_string(apps_dir().join("static-web/archy.toml")).expect("read");
    std::fs::write(app.join("archy.toml"), text).expect("write");
    let errors = Manifest::from_dir(&app, &Limits::default()).expect_err("escapes");
    assert_eq!(errors.fields(), ["icon"]);
    assert!(errors.problems[0].problem.contains("outside the app folder"), "{errors}");

    // A real file inside the folder is accepted.
    std::fs::remove_file(app.join("icon.svg")).expect("rm");
    std::fs::write(app.join("icon.svg"), "<svg/>").expect("write");
    Manifest::from_dir(&app, &Limits::default()).expect("icon inside the folder");
}

#[test]
fn an_icon_the_catalog_cannot_carry_is_refused_naming_the_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = catalog::testing::key(1);
    catalog::testing::TestApp::new("pics").write(dir.path(), &key.did());
    let toml = std::fs::read_to_string(dir.path().join("archy.toml")).expect("toml");
    std::fs::write(dir.path().join("archy.toml"), toml.replacen("\nlicense =", "\nicon = \"logo.gif\"\nlicense =", 1))
        .expect("write");
    std::fs::write(dir.path().join("logo.gif"), b"GIF89a").expect("icon");
    let errors = Manifest::from_dir(dir.path(), &Limits::default()).expect_err("a gif icon");
    assert_eq!(errors.fields(), ["icon"]);
    assert!(errors.to_string().contains("svg, png, jpg, jpeg, webp"), "{errors}");
    std::fs::rename(dir.path().join("logo.gif"), dir.path().join("logo.PNG")).expect("rename");
    let toml = std::fs::read_to_string(dir.path().join("archy.toml")).expect("toml");
    std::fs::write(dir.path().join("archy.toml"), toml.replace("logo.gif", "logo.PNG")).expect("write");
    Manifest::from_dir(dir.path(), &Limits::default()).expect("a png icon, whatever the case of its name");
}
