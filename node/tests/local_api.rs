//! The node's local API against the real `archy-node run`, over real HTTP: without the token, from
//! a rebinding host name, from another site or with a body browsers send without a preflight,
//! nothing runs and no app state changes (on disk and in the engine); with the token it answers;
//! on a Unix socket the socket's permissions are the authentication.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::util::docker::docker_or_skip;
use crate::util::node_bin;
use crate::util::origin::*;

/// One HTTP/1.1 request written by hand (so `Host` and every other header are exactly these);
/// returns the status code and the body.
fn raw(api: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let (status, _, body) = raw_full(api, method, path, headers, body);
    (status, body)
}

/// What the node holds for `app`: its desired state on disk and its objects in the engine.
fn app_state(node: &Node, app: &str) -> (bool, String) {
    let on_disk = node.path().join("orchestrator/apps").join(app).exists();
    let node_id = std::fs::read_to_string(node.path().join("orchestrator/node-id")).expect("node id");
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=archy.app={app}"), "--filter"])
        .arg(format!("label=archy.node={}", node_id.trim()))
        .output()
        .expect("docker ps");
    (on_disk, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn requests_without_the_token_or_from_a_browser_change_nothing() {
    let Some(_engine) = docker_or_skip() else { return };
    let origin = Origin::new();
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    let (ok, report) = node.sync();
    assert!(ok, "{report:?}");
    let daemon = node.run();
    let host = daemon.api.strip_prefix("http://").expect("tcp").to_owned();
    let auth = daemon.auth();
    let install = "/v1/installed/app-a";

    let mode = std::fs::metadata(node.path().join("api.token")).expect("token").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private");

    let refused = [
        ("no token", 401, vec![("Host", host.as_str())], ""),
        ("a wrong token", 401, vec![("Host", host.as_str()), ("Authorization", "Bearer 00ff")], ""),
        ("a rebinding host name", 421, vec![("Host", "rebind.example:7780"), ("Authorization", auth.as_str())], ""),
        (
            "a text/plain body",
            415,
            vec![("Host", host.as_str()), ("Authorization", auth.as_str()), ("Content-Type", "text/plain")],
            "{}",
        ),
        (
            "a form body",
            415,
            vec![
                ("Host", host.as_str()),
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "a=b",
        ),
        (
            "a cross-site origin",
            403,
            vec![("Host", host.as_str()), ("Authorization", auth.as_str()), ("Origin", "http://evil.example")],
            "",
        ),
        (
            "a cross-site fetch",
            403,
            vec![("Host", host.as_str()), ("Authorization", auth.as_str()), ("Sec-Fetch-Site", "cross-site")],
            "",
        ),
    ];
    for (what, expected, headers, body) in &refused {
        let (status, answer) = raw(&daemon.api, "POST", install, headers, body);
        assert_eq!(status, *expected, "{what}: {answer}");
        assert_eq!(app_state(&node, "app-a"), (false, String::new()), "{what}: app state changed");
    }
    let (status, _) =
        raw(&daemon.api, "DELETE", "/v1/installed/app-a?purge=true&confirm=app-a", &[("Host", &host)], "");
    assert_eq!(status, 401, "a purge without the token");
    let (status, _) = raw(&daemon.api, "GET", "/v1/installed", &[("Host", &host)], "");
    assert_eq!(status, 401, "reading without the token");

    // With the token, the same API answers: the guard is what refused the requests above.
    let (status, body) = raw(&daemon.api, "GET", "/v1/installed", &[("Host", &host), ("Authorization", &auth)], "");
    assert_eq!((status, body.trim()), (200, "[]"));
    let (status, body) = raw(&daemon.api, "POST", "/v1/sync", &[("Host", &host), ("Authorization", &auth)], "");
    assert_eq!(status, 200, "{body}");

    // `archy-node api` uses the token without being told.
    let out = Command::new(node_bin())
        .args(["api", "GET", "/v1/installed", "--data"])
        .arg(node.path())
        .output()
        .expect("archy-node api");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let token = Command::new(node_bin()).args(["api-token", "--data"]).arg(node.path()).output().expect("api-token");
    assert_eq!(format!("Bearer {}", String::from_utf8_lossy(&token.stdout).trim()), auth);
}

#[test]
fn on_a_unix_socket_its_permissions_are_the_authentication() {
    let Some(_engine) = docker_or_skip() else { return };
    let origin = Origin::new();
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    let socket = node.path().join("run/api.sock");
    node.edit_config(|c| {
        c["serve"].as_table_mut().expect("serve").insert("api".into(), format!("unix:{}", socket.display()).into());
    });
    let daemon = node.run();
    assert_eq!(daemon.api, format!("unix:{}", socket.display()));
    let mode = std::fs::metadata(&socket).expect("socket").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the owner's only");
    let api = |args: &[&str]| {
        Command::new(node_bin()).arg("api").args(args).arg("--data").arg(node.path()).output().expect("archy-node api")
    };
    let out = api(&["GET", "/v1/installed"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // Bodies are still JSON only.
    let out = api(&["POST", "/v1/sync", "{}"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn app_lifecycle_waits_for_an_engine_that_answers_after_the_node_started() {
    let Some(_engine) = docker_or_skip() else { return };
    let origin = Origin::new();
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    // The engine's socket is not there yet (as at boot, before the engine has started).
    let socket = node.path().join("engine/docker.sock");
    node.edit_config(|c| {
        c.insert("docker_socket".into(), socket.display().to_string().into());
    });
    let daemon = node.run();
    let host = daemon.api.strip_prefix("http://").expect("tcp").to_owned();
    let auth = daemon.auth();
    let get = |path: &str| raw(&daemon.api, "GET", path, &[("Host", &host), ("Authorization", &auth)], "");
    let (status, body) = get("/v1/installed");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("container engine does not answer"), "{body}");
    let (status, body) = get("/v1/status");
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status json");
    assert!(
        status["lifecycle"].as_str().unwrap_or_default().starts_with("waiting for the container engine"),
        "{status}"
    );

    // The engine comes up: the node notices by itself and the lifecycle API answers.
    std::fs::create_dir_all(socket.parent().expect("dir")).expect("mkdir");
    std::os::unix::fs::symlink(crate::util::docker::socket(), &socket).expect("engine socket");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (status, body) = get("/v1/installed");
        if status == 200 {
            assert_eq!(body.trim(), "[]");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the lifecycle API never came up: {status} {body}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (_, body) = get("/v1/status");
    let status: serde_json::Value = serde_json::from_str(&body).expect("status json");
    assert_eq!(status["lifecycle"], "ready");
}

#[test]
fn a_unix_socket_path_that_holds_a_file_is_refused_and_the_file_kept() {
    let origin = Origin::new();
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    let file = node.path().join("notes.txt");
    std::fs::write(&file, "the operator's\n").unwrap();
    node.edit_config(|c| {
        c["serve"].as_table_mut().expect("serve").insert("api".into(), format!("unix:{}", file.display()).into());
    });
    let out = Command::new(node_bin()).args(["run", "--data"]).arg(node.path()).output().expect("archy-node run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exists and is not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "the operator's\n");
}

/// [`raw`], with the answer's head too: the status, the head, the body.
fn raw_full(api: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let addr = api.strip_prefix("http://").expect("a TCP API");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn the_dashboard_signs_in_with_the_token_only_and_changes_nothing_without_its_csrf_token() {
    let Some(_engine) = docker_or_skip() else { return };
    let mut origin = Origin::new();
    // A publisher's title and summary with markup in them.
    let mut manifest = catalog::testing::TestApp::new("app-b").manifest(&origin.publisher);
    manifest.title = "<script>alert('title')</script>".into();
    manifest.summary = "<img src=x onerror=alert(1)> & more".into();
    let envelope = catalog::envelope::SignedEnvelope::sign(&manifest, &origin.publisher).expect("sign").to_bytes();
    let now = chrono::Utc::now();
    let path = catalog::repo::envelope_target_path("app-b", &manifest.version);
    origin
        .repo
        .add_publisher_targets("acme", vec![(path, envelope, "manifest".into())], &origin.publisher, now)
        .unwrap();
    origin.repo.snapshot_and_timestamp(&origin.snapshot_key, &origin.timestamp_key, now).unwrap();
    origin.write();
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    assert!(node.sync().0);
    let daemon = node.run();
    // On loopback the dashboard lives on the host name `localhost`; its login pages send
    // 127.0.0.1 (where apps open) there.
    let port = daemon.api.rsplit(':').next().expect("port").to_owned();
    let (status, head, _) = raw_full(&daemon.api, "GET", "/login?x=1", &[("Host", &format!("127.0.0.1:{port}"))], "");
    assert_eq!(status, 303, "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("location: http://localhost:{port}/login?x=1\r\n")), "{head}");
    let host = format!("localhost:{port}");
    let own = format!("http://{host}");
    let form =
        [("Host", host.as_str()), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", own.as_str())];

    // Without a session: pages go to the login page, the API answers 401.
    let (status, head, _) = raw_full(&daemon.api, "GET", "/catalog", &[("Host", &host)], "");
    assert_eq!(status, 303, "{head}");
    assert!(head.to_ascii_lowercase().contains("location: /login"), "{head}");
    // A wrong token opens no session.
    let (status, head, body) = raw_full(&daemon.api, "POST", "/login", &form, "token=00ff");
    assert_eq!(status, 401, "{body}");
    assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");
    // A login form posted from another site is refused (login CSRF).
    let evil = [
        ("Host", host.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", "http://evil.example"),
    ];
    let (status, _, _) = raw_full(&daemon.api, "POST", "/login", &evil, &format!("token={}", daemon.token));
    assert_eq!(status, 403);

    // The token opens a session: HttpOnly, SameSite=Strict.
    let (status, head, _) = raw_full(&daemon.api, "POST", "/login", &form, &format!("token={}", daemon.token));
    assert_eq!(status, 303, "{head}");
    let set_cookie = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.trim()))
        .expect("a session cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let session = set_cookie.split(';').next().expect("name=value").to_owned();
    let (status, head, page) = raw_full(&daemon.api, "GET", "/catalog", &[("Host", &host), ("Cookie", &session)], "");
    assert_eq!(status, 200, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-security-policy: default-src 'none'; script-src 'self'"), "{head}");
    assert!(lower.contains("x-frame-options: deny"), "{head}");
    // A manifest's markup is text.
    assert!(page.contains("&lt;script&gt;alert('title')&lt;/script&gt;"), "{page}");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt; &amp; more"), "{page}");
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "{page}");
    let csrf = page
        .split("name=\"archy-csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries its CSRF token")
        .to_owned();

    // The API describes itself (OpenAPI 3.1), to a session as to the token.
    let (status, _, body) =
        raw_full(&daemon.api, "GET", "/v1/openapi.json", &[("Host", &host), ("Cookie", &session)], "");
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("the OpenAPI document is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{doc}");
    assert!(doc["paths"]["/v1/installed/{app}"]["post"].is_object(), "{doc}");

    // The session changes nothing without its CSRF token, or from another origin.
    let install = "/v1/installed/app-a";
    let (status, _, body) = raw_full(&daemon.api, "POST", install, &[("Host", &host), ("Cookie", &session)], "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF token"), "{body}");
    let wrong = [("Host", host.as_str()), ("Cookie", session.as_str()), ("X-Archy-CSRF", "00")];
    assert_eq!(raw_full(&daemon.api, "POST", install, &wrong, "").0, 403);
    let cross = [
        ("Host", host.as_str()),
        ("Cookie", session.as_str()),
        ("X-Archy-CSRF", csrf.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(raw_full(&daemon.api, "POST", install, &cross, "").0, 403);
    assert_eq!(app_state(&node, "app-a"), (false, String::new()), "nothing was installed");
    // With it, the request reaches the API (a policy change here; refused for what it says).
    let with = [
        ("Host", host.as_str()),
        ("Cookie", session.as_str()),
        ("X-Archy-CSRF", csrf.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, _, body) = raw_full(&daemon.api, "PUT", "/v1/nostr/policy", &with, r#"{"min_score": 150}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("min_score 150 is not between 0 and 100"), "{body}");
    let (status, _, body) =
        raw_full(&daemon.api, "PUT", "/v1/nostr/policy", &with, r#"{"min_score": 7, "deny": ["nobody"]}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("deny[0] `nobody` is not a did:key or an npub"), "{body}");
    let before = std::fs::read_to_string(node.path().join("config.toml")).unwrap();
    assert!(before.contains("min_score = 1.0"), "nothing was written: {before}");
    let (status, _, body) = raw_full(&daemon.api, "PUT", "/v1/nostr/policy", &with, r#"{"min_score": 7}"#);
    assert_eq!(status, 200, "{body}");
    let after = std::fs::read_to_string(node.path().join("config.toml")).unwrap();
    assert!(after.contains("min_score = 7.0"), "{after}");
    for line in before.lines().filter(|l| !l.starts_with("min_score")) {
        assert!(after.lines().any(|l| l == line), "`{line}` is kept:\n{before}\n---\n{after}");
    }

    // Grants are taken only where the app's manifest needs them and the policy refuses.
    let (status, _, body) =
        raw_full(&daemon.api, "POST", "/v1/grants/app-a", &with, r#"{"grants": ["{ kind = \"privileged\" }"]}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a grant app-a needs"), "{body}");
    assert!(!std::fs::read_to_string(node.path().join("config.toml")).unwrap().contains("privileged"));

    // The session is good only from where it signed in, and it cannot mint login links.
    let link = raw_full(&daemon.api, "POST", "/v1/dashboard/link", &with[..3], "");
    assert_eq!(link.0, 403, "{}", link.2);

    // Signing out ends the session.
    let (status, _, _) = raw_full(&daemon.api, "POST", "/logout", &with[..3], "");
    assert_eq!(status, 200);
    assert_eq!(raw_full(&daemon.api, "GET", "/catalog", &[("Host", &host), ("Cookie", &session)], "").0, 303);
    assert_eq!(raw_full(&daemon.api, "PUT", "/v1/nostr/policy", &with, r#"{"min_score": 9}"#).0, 401);
}

#[test]
fn on_every_address_the_one_time_link_names_an_address_a_browser_can_open() {
    let Some(_engine) = docker_or_skip() else { return };
    let origin = Origin::new();
    let server = HttpServer::start(origin.served());
    let node = Node::init(&origin.root_v1(), Some(&server.url()), &[]);
    node.edit_config(|c| {
        let serve = c.entry("serve").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        serve.as_table_mut().expect("[serve]").insert("api".into(), "0.0.0.0:0".into());
    });
    let daemon = node.run();
    let port = daemon.api.strip_prefix("http://0.0.0.0:").expect("listening on every address");
    let out = Command::new(node_bin()).args(["dashboard", "--data"]).arg(node.path()).output().expect("dashboard");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!link.contains("0.0.0.0") && link.contains(&format!(":{port}/login/once?code=")), "{link}");
    // It signs in (from this host, by the address it names).
    let host = link.strip_prefix("http://").and_then(|l| l.split('/').next()).expect("host").to_owned();
    let path = &link[link.find("/login").expect("path")..];
    let (status, head, _) = raw_full(&daemon.api.replace("0.0.0.0", "127.0.0.1"), "GET", path, &[("Host", &host)], "");
    assert_eq!(status, 303, "{head}");
    assert!(head.to_ascii_lowercase().contains("set-cookie: archy_session="), "{head}");
}
