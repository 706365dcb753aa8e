//! `archy identity bind` and `archy publish --relay` end to end: the real `archy` binary against a
//! real `archy-relay` process and a real `archy-registry serve --relay` process on 127.0.0.1.
//! What the relays hold afterwards is read back with nostr-sdk and run through the node's checks
//! (`archy_nostr::discovery::Discovery`), with the envelope fetched from where the event says.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use archy_nostr::client::{RelayConnection, release_filter};
use archy_nostr::discovery::{Checked, Discovery};
use archy_nostr::event::{self, Announcement, Location};
use archy_nostr::nip82;
use archy_nostr::nostr_sdk::{Event, EventId, Filter, Keys, Kind, PublicKey, Tag};
use catalog::manifest::Limits;
use serde_json::Value;
use sha2::Digest as _;

use crate::util::{Running, bin, free_port, write_app};

/// Reads the child's stdout on a thread; lines arrive on the channel.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line starting with `prefix`.
fn wait_for_line(lines: &mpsc::Receiver<String>, prefix: &str, what: &str) -> String {
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(e) => panic!("{what} did not print `{prefix}…`: {e}"),
        }
    }
}

struct Env {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Env {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        Self { dir: tempfile::tempdir().expect("tempdir"), rt }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_archy"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("ARCHY_KEY", self.path("keys/publisher.key"))
            .env("ARCHY_NOSTR_KEY", self.path("keys/nostr.key"));
        cmd
    }
    fn archy(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run archy")
    }
    fn ok(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.archy(&all);
        assert!(out.status.success(), "archy {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json output")
    }
    /// `archy` that must fail with exit code `code`; returns its stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.archy(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "archy {args:?}: {stderr}");
        stderr
    }

    /// A publisher key; returns its DID.
    fn publisher(&self) -> String {
        self.ok(&["key", "new"])["did"].as_str().unwrap().to_owned()
    }

    /// An app folder for `id` at `version` published by `did`.
    fn app(&self, id: &str, version: &str, did: &str) -> PathBuf {
        write_app(self.dir.path(), id, version, did)
    }

    /// A standalone `archy-relay` with its event log under `name/`.
    fn relay(&self, name: &str) -> (Running, String) {
        let mut child = Command::new(bin("archy-relay"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(self.path(name))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn archy-relay");
        let lines = stdout_lines(&mut child);
        let line = wait_for_line(&lines, "relay ", "archy-relay");
        (Running(child), line.trim_start_matches("relay ").trim().to_owned())
    }

    /// An origin (made by `archy repo init`) served by `archy-registry serve --relay`, with
    /// iroh on: returns the process, its HTTP base URL and its relay URL.
    fn registry(&self) -> (Running, String, String) {
        self.ok(&["repo", "init", "origin"]);
        let child = Command::new(bin("archy-registry"))
            .args(["serve", "--data"])
            .arg(self.path("origin"))
            .args(["--http", "127.0.0.1:0", "--iroh", "127.0.0.1:0", "--relay", "127.0.0.1:0"])
            .env("ARCHY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn archy-registry");
        let running = Running(child);
        let info = self.path("origin/registry/endpoint.json");
        for _ in 0..400 {
            if let Ok(bytes) = std::fs::read(&info)
                && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            {
                let http = v["http"].as_str().unwrap().to_owned();
                let relay = v["relay"].as_str().expect("endpoint.json names the relay").to_owned();
                return (running, http, relay);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("archy-registry did not start");
    }

    /// Every event on `relay` that matches `filter`, read with nostr-sdk.
    fn query(&self, relay: &str, filter: Filter) -> Vec<Event> {
        self.rt.block_on(async {
            let c = RelayConnection::connect(relay, Duration::from_secs(10)).await.expect("connect");
            let events = c.query(filter).await.expect("query");
            c.disconnect().await;
            events
        })
    }

    /// The npub in `archy identity show`, as a key.
    fn nostr_key(&self) -> PublicKey {
        let shown = self.ok(&["identity", "show"]);
        PublicKey::parse(shown["npub"].as_str().expect("npub")).unwrap()
    }
}

/// All of archy's kind 30078 events by `author` on `relay`.
fn archy_events(env: &Env, relay: &str, author: &PublicKey) -> Vec<Event> {
    let mut events = env.query(relay, Filter::new().kind(Kind::from_u16(event::KIND_APP_DATA)).author(*author));
    // Bindings first, as a node would hold them once it read the relay.
    events.sort_by_key(|e| !matches!(event::parse(e), Ok(Announcement::Binding(_))));
    events
}

fn http_get(url: &str) -> Vec<u8> {
    let response = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
    bytes
}

/// Fetches a blob by its iroh-blobs ticket from a direct address (relays off).
fn iroh_get(env: &Env, ticket: &str) -> Vec<u8> {
    use iroh::endpoint::presets;
    let ticket: iroh_blobs::ticket::BlobTicket = ticket.parse().expect("a blob ticket");
    env.rt.block_on(async {
        let endpoint = iroh::Endpoint::builder(presets::Minimal)
            .relay_mode(iroh::RelayMode::Disabled)
            .clear_address_lookup()
            .clear_ip_transports()
            .bind_addr("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            .unwrap()
            .bind()
            .await
            .unwrap();
        let connection = endpoint.connect(ticket.addr().clone(), iroh_blobs::ALPN).await.expect("connect over iroh");
        let bytes = iroh_blobs::get::request::get_blob(connection, ticket.hash()).bytes().await.expect("blob");
        endpoint.close().await;
        bytes.to_vec()
    })
}

/// Runs the relay's events through the node's checks: the binding verifies, and the one release
/// verifies with the bytes fetched from each of its locations. Returns the release.
fn accept_release(env: &Env, relay: &str, author: &PublicKey, version: &str) -> (Event, event::Release, Vec<u8>) {
    let mut discovery = Discovery::new();
    let mut pending = Vec::new();
    for e in archy_events(env, relay, author) {
        match discovery.check(&e) {
            Ok(Checked::Release(p)) => pending.push(p),
            Ok(Checked::Binding { .. } | Checked::Revocation { .. }) => {}
            other => panic!("{relay}: event {} was not accepted: {other:?}", e.id),
        }
    }
    let [p] = pending.as_slice() else { panic!("{relay}: expected one release, got {}", pending.len()) };
    assert_eq!(p.release.version.to_string(), version);
    let mut fetched = None;
    for location in &p.release.locations {
        let bytes = match location {
            Location::Url(url) => http_get(url),
            Location::Iroh(ticket) => iroh_get(env, ticket),
        };
        assert_eq!(blake3::hash(&bytes), p.release.hash, "{location} serves other bytes than the event names");
        fetched = Some(bytes);
    }
    let bytes = fetched.expect("at least one location");
    let accepted = discovery.accept(p.clone(), &bytes, &Limits::default()).expect("the node accepts the release");
    assert_eq!(accepted.manifest.manifest().version.to_string(), version);
    (p.event.clone(), p.release.clone(), bytes)
}

/// Every value of tag `name` in `event` (first values only).
fn tag_values<'e>(event: &'e Event, name: &str) -> Vec<&'e str> {
    event
        .tags
        .iter()
        .map(Tag::as_slice)
        .filter(|t| t.first().map(String::as_str) == Some(name))
        .filter_map(|t| t.get(1).map(String::as_str))
        .collect()
}

/// The single value of tag `name`.
fn tag_value<'e>(event: &'e Event, name: &str) -> &'e str {
    match tag_values(event, name).as_slice() {
        [one] => one,
        other => panic!("expected one `{name}` tag in event {} (kind {}), got {other:?}", event.id, event.kind),
    }
}

/// The NIP-82 mirror a relay holds for one release.
struct Mirror {
    application: Event,
    release: Event,
    assets: Vec<Event>,
}

impl Mirror {
    /// The asset of MIME type `mime`.
    fn asset(&self, mime: &str) -> &Event {
        let found: Vec<&Event> = self.assets.iter().filter(|a| tag_value(a, "m") == mime).collect();
        let [asset] = found.as_slice() else { panic!("expected one {mime} asset, got {}", found.len()) };
        asset
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads the NIP-82 mirror of `app` `version` by `author` from `relay` and checks the tags an
/// app-store client reads: one application (`d` = app id, `name`), one release (`d` =
/// `<id>@<version>`, `i`, `version`, `c`, an `e` per asset, `a` = the application) and each asset
/// it names on the relay (`i`, `version`, `m`, `x` as 64 hex).
fn mirror(env: &Env, relay: &str, author: &PublicKey, app: &str, version: &str) -> Mirror {
    let applications = env.query(relay, nip82::application_filter(author, app));
    let [application] = applications.as_slice() else {
        panic!("{relay}: expected one kind 32267 application for {app}, got {}", applications.len())
    };
    assert_eq!(application.kind.as_u16(), 32267);
    assert!(!tag_value(application, "name").is_empty());
    let releases = env.query(relay, nip82::release_filter(author, app, &version.parse().unwrap()));
    let [release] = releases.as_slice() else {
        panic!("{relay}: expected one kind 30063 release of {app} {version}, got {}", releases.len())
    };
    assert_eq!(tag_value(release, "d"), format!("{app}@{version}"));
    assert_eq!((tag_value(release, "i"), tag_value(release, "version")), (app, version));
    assert_eq!(tag_value(release, "c"), "main");
    assert_eq!(tag_value(release, "a"), format!("32267:{}:{app}", author.to_hex()));
    let ids: Vec<EventId> = tag_values(release, "e").iter().map(|id| EventId::from_hex(id).unwrap()).collect();
    assert!(!ids.is_empty(), "{relay}: the release names no asset");
    let assets = env.query(relay, Filter::new().ids(ids.clone()));
    assert_eq!(assets.len(), ids.len(), "{relay}: the relay holds every asset the release names");
    for asset in &assets {
        assert_eq!(asset.kind.as_u16(), 3063);
        assert_eq!(asset.pubkey, *author, "signed by the key that posts the archy events");
        assert_eq!((tag_value(asset, "i"), tag_value(asset, "version")), (app, version));
        assert!(is_hex64(tag_value(asset, "x")), "`x` is a SHA-256 in hex");
        assert!(is_hex64(tag_value(asset, "blake3")));
    }
    Mirror { application: application.clone(), release: release.clone(), assets }
}

/// Checks that the envelope asset of `m` names `envelope` (SHA-256, BLAKE3, size, the bytes at
/// its `url`) and points back at `archy_release`.
fn assert_envelope_asset(m: &Mirror, envelope: &[u8], archy_release: &Event) {
    let asset = m.asset("application/vnd.archy.envelope+json");
    assert_eq!(tag_value(asset, "x"), hex::encode(sha2::Sha256::digest(envelope)));
    assert_eq!(tag_value(asset, "blake3"), blake3::hash(envelope).to_hex().as_str());
    assert_eq!(tag_value(asset, "size"), envelope.len().to_string());
    assert_eq!(http_get(tag_value(asset, "url")), envelope, "the asset's url serves the envelope");
    assert_eq!(tag_value(asset, "e"), archy_release.id.to_hex());
    let address = format!("30078:{}:archy:app:{}", archy_release.pubkey.to_hex(), tag_value(asset, "i"));
    assert_eq!(tag_value(asset, "a"), address);
    assert_eq!(tag_value(&m.application, "a"), address);
    assert_eq!(tag_values(&m.release, "e")[0], asset.id.to_hex(), "the envelope is the release's first asset");
}

#[test]
fn bind_publish_replace_and_revoke_on_real_relays() {
    let env = Env::new();
    let (_relay, relay) = env.relay("relay-data");
    let (_registry, http, registry_relay) = env.registry();
    assert!(registry_relay.starts_with("ws://127.0.0.1:"), "{registry_relay}");
    assert!(env.path("origin/relay").is_dir(), "the registry's relay keeps its events under <data>/relay/");
    let did = env.publisher();

    // No Nostr key before the first use; `identity bind` creates it, 0600.
    assert_eq!(env.ok(&["identity", "show"])["npub"], Value::Null);
    let bound = env.ok(&["identity", "bind", "--relay", &relay, "--relay", &registry_relay, "--marketplace", &http]);
    assert_eq!(bound["created"], true);
    assert_eq!(bound["did"], did);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(env.path("keys/nostr.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the Nostr key file is a secret");
    let author = env.nostr_key();
    assert_eq!(bound["npub"], event::bech32_npub(&author));
    let answers = bound["relays"].as_array().unwrap();
    assert_eq!(answers.len(), 4, "binding and handler on both relays: {bound}");
    assert!(answers.iter().all(|a| a["ok"] == true), "{bound}");
    let handlers = env.query(&relay, Filter::new().kind(Kind::from_u16(31990)).author(author));
    assert_eq!(handlers.len(), 1, "the NIP-89 handler is on the relay");
    // Its `web` template sends Nostr clients to the origin's marketplace: the link a client makes
    // for a release (`naddr`) lands on that app's page.
    let web = handlers[0].tags.iter().map(Tag::as_slice).find(|t| t[0] == "web").expect("a web template").to_vec();
    assert_eq!(web[1], format!("{http}/a/<bech32>"));
    use archy_nostr::nostr_sdk::ToBech32 as _;
    use archy_nostr::nostr_sdk::nips::nip01::Coordinate;
    use archy_nostr::nostr_sdk::nips::nip19::Nip19Coordinate;
    let coordinate = Coordinate::new(Kind::from_u16(event::KIND_APP_DATA), author).identifier("archy:app:notes");
    let naddr = Nip19Coordinate::new(coordinate, []).to_bech32().unwrap();
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let answer = agent.get(&web[1].replace("<bech32>", &naddr)).call().expect("an answer");
    assert_eq!((answer.status(), answer.header("location")), (303, Some("/apps/notes")));

    // Publish 1.0.0 with the envelope uploaded to the registry.
    let v1 = env.app("notes", "1.0.0", &did);
    let published =
        env.ok(&["publish", v1.to_str().unwrap(), "--relay", &relay, "--relay", &registry_relay, "--upload", &http]);
    assert_eq!(published["npub"], event::bech32_npub(&author));
    let locations = published["locations"].as_array().unwrap();
    assert!(
        locations.iter().any(|l| l["url"].as_str().is_some_and(|u| u.starts_with(&format!("{http}/v1/blobs/")))),
        "{published}"
    );
    assert!(locations.iter().any(|l| l["iroh"].as_str().is_some_and(|t| t.starts_with("blob"))), "{published}");
    for r in [&relay, &registry_relay] {
        let (event, release, bytes) = accept_release(&env, r, &author, "1.0.0");
        assert_eq!(event.id.to_hex(), published["event"].as_str().unwrap());
        assert_eq!(release.hash.to_hex().as_str(), published["blake3"].as_str().unwrap());
        // The registry keeps it content-addressed by BLAKE3.
        let stored = env.path(&format!("origin/registry/envelopes/{}", release.hash.to_hex()));
        assert_eq!(std::fs::read(stored).unwrap(), bytes.as_slice());
        // The NIP-82 mirror: the envelope as an asset, the release, the application with the
        // registry's app page.
        let m = mirror(&env, r, &author, "notes", "1.0.0");
        assert_envelope_asset(&m, &bytes, &event);
        assert_eq!(tag_value(&m.application, "url"), format!("{http}/apps/notes"));
        assert_eq!(m.assets.len(), 1, "the app ships no image archive");
    }
    let mirrored = published["mirror"].as_array().unwrap();
    assert_eq!(mirrored.len(), 6, "asset, release and application on both relays: {published}");
    assert!(mirrored.iter().all(|a| a["ok"] == true), "{published}");

    // The same version with other bytes is refused, naming the version the relay holds.
    let toml = std::fs::read_to_string(v1.join("archy.toml")).unwrap();
    std::fs::write(v1.join("archy.toml"), toml.replacen("summary = \"", "summary = \"Changed: ", 1)).unwrap();
    let err = env.fails(1, &["publish", v1.to_str().unwrap(), "--relay", &relay, "--upload", &http]);
    assert!(err.contains(&format!("relay {relay} already has notes 1.0.0")), "{err}");

    // A newer version replaces the older event: one release event per app and key (NIP-01
    // addressable events), on both relays.
    let v2 = env.app("notes", "1.1.0", &did);
    let second =
        env.ok(&["publish", v2.to_str().unwrap(), "--relay", &relay, "--relay", &registry_relay, "--upload", &http]);
    for r in [&relay, &registry_relay] {
        let releases = env.query(r, release_filter(&author, "notes"));
        assert_eq!(releases.len(), 1, "{r} keeps only the newest release event");
        assert_eq!(releases[0].id.to_hex(), second["event"].as_str().unwrap());
        let (event, _, bytes) = accept_release(&env, r, &author, "1.1.0");
        // NIP-82 keeps a release per version, and one application, replaced.
        assert_envelope_asset(&mirror(&env, r, &author, "notes", "1.1.0"), &bytes, &event);
        mirror(&env, r, &author, "notes", "1.0.0");
    }
    // An older version than the relay's is refused too.
    let old = env.app("notes", "1.0.5", &did);
    let err = env.fails(1, &["publish", old.to_str().unwrap(), "--relay", &relay, "--upload", &http]);
    assert!(err.contains("already has notes 1.1.0"), "{err}");

    // Revoke 1.1.0: a revocation event, and a NIP-09 deletion request for the release event.
    let revoked =
        env.ok(&["publish", "--revoke", "notes", "1.1.0", "--relay", &relay, "--reason", "data loss on upgrade"]);
    let whats: Vec<&str> = revoked["relays"].as_array().unwrap().iter().map(|a| a["event"].as_str().unwrap()).collect();
    assert_eq!(whats, ["revocation", "deletion"], "{revoked}");
    let deletions = env.query(&relay, Filter::new().kind(Kind::EventDeletion).author(author));
    assert_eq!(deletions.len(), 2, "one for the archy release, one for its NIP-82 mirror");
    assert!(
        deletions.iter().any(|d| d.tags.event_ids().any(|id| id.to_hex() == second["event"].as_str().unwrap())),
        "a deletion request names the release event"
    );
    assert!(env.query(&relay, release_filter(&author, "notes")).is_empty(), "the relay deleted the release event");
    // The mirrored release of 1.1.0 and its asset are deleted too; 1.0.0 and the application stay.
    let mirrored = revoked["mirror"].as_array().unwrap();
    assert!(matches!(mirrored.as_slice(), [a] if a["event"] == "NIP-82 deletion" && a["ok"] == true), "{revoked}");
    let v110 = semver::Version::new(1, 1, 0);
    assert!(env.query(&relay, nip82::release_filter(&author, "notes", &v110)).is_empty());
    assert!(
        env.query(&relay, Filter::new().kind(Kind::from_u16(3063)).author(author))
            .iter()
            .all(|a| tag_value(a, "version") == "1.0.0"),
        "the 1.1.0 asset is deleted"
    );
    mirror(&env, &relay, &author, "notes", "1.0.0");
    let mut discovery = Discovery::new();
    let mut revocations = 0;
    for e in archy_events(&env, &relay, &author) {
        if let Ok(Checked::Revocation { app, version, did: by }) = discovery.check(&e) {
            assert_eq!((app.as_str(), version.to_string(), by.to_string()), ("notes", "1.1.0".into(), did.clone()));
            revocations += 1;
        }
    }
    assert_eq!(revocations, 1);
    // A node that still holds the release event now refuses it.
    let release_event = env.query(&registry_relay, release_filter(&author, "notes")).pop().unwrap();
    let err = discovery.check(&release_event).expect_err("revoked");
    assert!(matches!(err, event::Rejected::Revoked { .. }), "{err}");

    // Publishing the revoked version (or an older one) again is refused.
    let err = env.fails(1, &["publish", v2.to_str().unwrap(), "--relay", &relay, "--upload", &http]);
    assert!(err.contains("holds a revocation of notes 1.1.0"), "{err}");
    // A newer one goes out, after the deletion (a relay refuses an event a deletion covers).
    let v3 = env.app("notes", "1.2.0", &did);
    env.ok(&["publish", v3.to_str().unwrap(), "--relay", &relay, "--upload", &http]);
    assert_eq!(env.query(&relay, release_filter(&author, "notes")).len(), 1);

    // The registry's relay persisted what it accepted.
    let log = std::fs::read_to_string(env.path("origin/relay/events.jsonl")).unwrap();
    assert!(log.contains(second["event"].as_str().unwrap()), "the relay log holds the 1.1.0 release event");
}

#[test]
fn a_publisher_that_has_not_bound_gets_the_binding_posted_first() {
    let env = Env::new();
    let (_relay, relay) = env.relay("relay-data");
    let (_registry, http, _) = env.registry();
    let did = env.publisher();
    let app = env.app("notes", "2.0.0", &did);
    let out = env.archy(&["publish", app.to_str().unwrap(), "--relay", &relay, "--upload", &http]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("created a Nostr key"), "{stdout}");
    assert!(stdout.contains("posted the binding of npub1") && stdout.contains(&did), "{stdout}");
    accept_release(&env, &relay, &env.nostr_key(), "2.0.0");
}

#[test]
fn url_writes_the_envelope_to_dist_and_serve_serves_it_over_iroh_until_interrupted() {
    let env = Env::new();
    let (_relay, relay) = env.relay("relay-data");
    let did = env.publisher();

    // --url: the publisher hosts dist/<app>-<version>.archy.json at the URL.
    let app = env.app("notes", "1.0.0", &did);
    let out = env.ok(&["publish", app.to_str().unwrap(), "--relay", &relay, "--url", "https://files.example/archy/"]);
    let url = "https://files.example/archy/notes-1.0.0.archy.json";
    assert_eq!(out["locations"], serde_json::json!([{"url": url}]));
    let file = std::fs::read(app.join("dist/notes-1.0.0.archy.json")).expect("dist file");
    assert_eq!(blake3::hash(&file).to_hex().as_str(), out["blake3"].as_str().unwrap());

    // --serve: the envelope from the publisher's own iroh endpoint, until Ctrl-C.
    let app = env.app("notes", "1.1.0", &did);
    let mut child = env
        .command(&["publish", app.to_str().unwrap(), "--relay", &relay, "--serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn archy publish --serve");
    let lines = stdout_lines(&mut child);
    let mut running = Running(child);
    wait_for_line(&lines, "serving the envelope over iroh", "archy publish --serve");
    let (_, release, _) = accept_release(&env, &relay, &env.nostr_key(), "1.1.0");
    assert!(matches!(release.locations.as_slice(), [Location::Iroh(_)]), "{:?}", release.locations);

    let status = Command::new("kill").args(["-INT", &running.0.id().to_string()]).status().expect("kill -INT");
    assert!(status.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = running.0.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exited.expect("archy publish --serve stops on Ctrl-C");
    assert!(status.success(), "exit {status}");
}

#[test]
fn relays_that_are_down_or_refuse_are_named() {
    let env = Env::new();
    let (_relay, relay) = env.relay("relay-data");
    env.publisher();

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = format!("ws://{closed}");
    let err = env.fails(2, &["identity", "bind", "--relay", &relay, "--relay", &down]);
    assert!(err.contains(&format!("relay {down} is unreachable")), "{err}");

    // A real relay whose write policy refuses everything answers NIP-01 `OK false`.
    let refusing = env.rt.block_on(refusing_relay());
    let err = env.fails(1, &["identity", "bind", "--relay", &relay, "--relay", refusing.url()]);
    assert!(err.contains(&format!("relay {} refused event", refusing.url())), "{err}");
    assert!(err.contains("blocked: this relay takes no events"), "{err}");
    assert!(err.contains(&format!("accepted: binding event by {relay}")), "{err}");

    // Invalid URLs and a missing location are the user's to fix.
    let err = env.fails(1, &["identity", "bind", "--relay", "http://127.0.0.1:1"]);
    assert!(err.contains("not a relay URL"), "{err}");
    let did = env.ok(&["key", "show"])["did"].as_str().unwrap().to_owned();
    let app = env.app("notes", "1.0.0", &did);
    let err = env.fails(1, &["publish", app.to_str().unwrap(), "--relay", &relay]);
    assert!(err.contains("say where nodes fetch the envelope"), "{err}");
}

struct Refusing {
    relay: nostr_relay_builder::LocalRelay,
    url: String,
}

impl Refusing {
    fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Refusing {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}

async fn refusing_relay() -> Refusing {
    use nostr_relay_builder::prelude::{BoxedFuture, Event, PolicyResult, RelayBuilder, WritePolicy};

    #[derive(Debug)]
    struct RefuseAll;

    impl WritePolicy for RefuseAll {
        fn admit_event<'a>(&'a self, _: &'a Event, _: &'a std::net::SocketAddr) -> BoxedFuture<'a, PolicyResult> {
            Box::pin(async { PolicyResult::Reject("this relay takes no events".into()) })
        }
    }

    let port = free_port();
    let builder = RelayBuilder::default().addr([127, 0, 0, 1].into()).port(port).write_policy(RefuseAll);
    let relay = nostr_relay_builder::LocalRelay::new(builder);
    relay.run().await.unwrap();
    let url = relay.url().await.to_string().trim_end_matches('/').to_owned();
    Refusing { relay, url }
}

/// nostr-rs-relay, an independent relay implementation (tests/interop/nostr-rs-relay.sh builds
/// it; tests/run.sh exports its path), on a free port of 127.0.0.1.
fn independent_relay(env: &Env) -> (Running, String) {
    let relay = std::env::var("ARCHY_NOSTR_RS_RELAY")
        .expect("ARCHY_NOSTR_RS_RELAY is not set: run the tests with `bash tests/run.sh`, which builds nostr-rs-relay");
    let port = free_port();
    let dir = env.path("nostr-rs-relay");
    let config = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/interop/nostr-rs-relay.sh"))
        .arg("--config")
        .arg(&dir)
        .arg(port.to_string())
        .output()
        .expect("write the nostr-rs-relay config");
    assert!(config.status.success(), "{}", String::from_utf8_lossy(&config.stderr));
    let config = String::from_utf8(config.stdout).unwrap().trim().to_owned();
    let running = Running(
        Command::new(&relay)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {relay}: {e}")),
    );
    let url = format!("ws://127.0.0.1:{port}");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (running, url);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nostr-rs-relay did not listen on {url}");
}

/// tests/interop/nostr_check.py (pynostr, an independent implementation) over a relay: every
/// event's NIP-01 id, BIP-340 signature, archy shape and DID signature, and the NIP-82 events'
/// tags, with each asset on 127.0.0.1 downloaded and checked against its hashes. Returns its
/// lines.
fn python_check(relay: &str, min_events: usize) -> Vec<Value> {
    let python = std::env::var("ARCHY_INTEROP_PYTHON")
        .expect("ARCHY_INTEROP_PYTHON is not set: run the tests with `bash tests/run.sh`, which makes the venv");
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/interop/nostr_check.py"))
        .args(["--relay", relay, "--min-events", &min_events.to_string(), "--fetch-assets"])
        .output()
        .expect("run nostr_check.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nostr_check.py refused archy's events on {relay}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn archy_events_work_on_an_independent_relay_and_verify_in_an_independent_client() {
    let env = Env::new();
    let (_independent, independent) = independent_relay(&env);
    let (_embedded, embedded) = env.relay("relay-data");
    let (_registry, http, _) = env.registry();
    env.publisher();
    let did = env.ok(&["key", "show"])["did"].as_str().unwrap().to_owned();
    env.ok(&["identity", "bind", "--relay", &independent, "--relay", &embedded]);
    let author = env.nostr_key();
    for version in ["1.0.0", "1.1.0"] {
        let app = env.app("notes", version, &did);
        env.ok(&["publish", app.to_str().unwrap(), "--relay", &independent, "--relay", &embedded, "--upload", &http]);
    }
    for relay in [&independent, &embedded] {
        // nostr-rs-relay applies addressable replacement too: one release, the newest.
        assert_eq!(env.query(relay, release_filter(&author, "notes")).len(), 1, "{relay}");
        accept_release(&env, relay, &author, "1.1.0");
        // binding, NIP-89 handler, release: all verify and parse in pynostr.
        let lines = python_check(relay, 3);
        let release = lines.iter().find(|l| l["d"] == "archy:app:notes").expect("the release is checked");
        assert_eq!(release["ok"], true, "{release}");
        assert_eq!(release["parsed"]["version"], "1.1.0", "{release}");
        assert!(lines.iter().any(|l| l["d"] == format!("archy:bind:{did}") && l["ok"] == true), "{lines:?}");
        assert!(lines.iter().any(|l| l["kind"] == 31990 && l["ok"] == true), "{lines:?}");
        // The NIP-82 mirror, read back here and in pynostr: the release names its asset, which
        // the relay holds, and the asset's `x` is the SHA-256 of what its url serves.
        let (event, _, bytes) = accept_release(&env, relay, &author, "1.1.0");
        assert_envelope_asset(&mirror(&env, relay, &author, "notes", "1.1.0"), &bytes, &event);
        let nip82 =
            |d: &str, kind: u16| lines.iter().filter(move |l| l["kind"] == kind && l["d"] == d).collect::<Vec<_>>();
        let [application] = nip82("notes", 32267)[..] else { panic!("one application: {lines:?}") };
        assert_eq!(application["ok"], true, "{application}");
        for version in ["1.0.0", "1.1.0"] {
            let [release] = nip82(&format!("notes@{version}"), 30063)[..] else { panic!("one release: {lines:?}") };
            assert_eq!(
                (&release["ok"], &release["parsed"]["assets_ok"]),
                (&Value::Bool(true), &Value::Bool(true)),
                "{release}"
            );
        }
        let assets: Vec<&Value> = lines.iter().filter(|l| l["kind"] == 3063).collect();
        assert_eq!(assets.len(), 2, "one envelope asset per version: {lines:?}");
        for asset in assets {
            assert_eq!(asset["ok"], true, "{asset}");
            assert_eq!(
                asset["parsed"]["sha256_ok"], true,
                "pynostr fetched the envelope and its SHA-256 is `x`: {asset}"
            );
        }
    }
    // NIP-09 on nostr-rs-relay (it deletes by `e` tag): the revoked release is gone there too.
    env.ok(&["publish", "--revoke", "notes", "1.1.0", "--relay", &independent]);
    assert!(env.query(&independent, release_filter(&author, "notes")).is_empty(), "nostr-rs-relay deleted the release");
    let lines = python_check(&independent, 3);
    assert!(lines.iter().any(|l| l["kind"] == 5 && l["ok"] == true), "the deletion request verifies: {lines:?}");
    // The mirrored release of 1.1.0 and its asset are deleted there too (by `e`).
    assert!(lines.iter().all(|l| l["d"] != "notes@1.1.0"), "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l["kind"] == 3063).count(), 1, "only the 1.0.0 asset is left: {lines:?}");
    assert!(lines.iter().all(|l| l["ok"] == true), "{lines:?}");
    assert!(lines.iter().any(|l| l["d"] == "archy:revoke:notes:1.1.0" && l["ok"] == true), "{lines:?}");
}

#[test]
fn trust_follow_endorse_and_report_post_what_nodes_score() {
    let publisher = Env::new();
    let (_relay, relay) = publisher.relay("relay-data");
    publisher.publisher();
    publisher.ok(&["identity", "bind", "--relay", &relay]);
    let did = publisher.ok(&["key", "show"])["did"].as_str().unwrap().to_owned();
    let publisher_key = publisher.nostr_key();

    let friend = Env::new();
    friend.publisher(); // `identity show` names the DID too
    let other = Keys::generate().public_key();
    // A DID resolves to its bound Nostr key; follows accumulate in one kind 3 list.
    let followed = friend.ok(&["trust", "follow", &did, "--relay", &relay]);
    assert_eq!(followed["subjects"][0], event::bech32_npub(&publisher_key), "{followed}");
    friend.ok(&["trust", "follow", &event::bech32_npub(&other), "--relay", &relay]);
    friend.ok(&["trust", "endorse", &did, "--relay", &relay, "--reason", "ships signed releases"]);
    let friend_key = friend.nostr_key();
    let lists = friend.query(&relay, Filter::new().kind(Kind::ContactList).author(friend_key));
    assert_eq!(lists.len(), 1, "kind 3 is replaceable: one list");
    let follows: Vec<PublicKey> = lists[0].tags.public_keys().copied().collect();
    assert_eq!(follows, [publisher_key, other], "the second follow extended the list");

    let mut inputs = archy_nostr::social::TrustInputs::new();
    for e in friend.query(&relay, Filter::new().author(friend_key)) {
        inputs.add(&e).unwrap();
    }
    assert_eq!((inputs.follow_lists(), inputs.label_count()), (1, 1), "one follow list and one endorsement");
    let labels = friend.query(&relay, Filter::new().kind(Kind::from_u16(1985)).author(friend_key));
    assert_eq!(archy_nostr::social::label_of(&labels[0]), Some(catalog::trust::Label::Endorse));

    // A DID with no binding on the relays is refused, naming it.
    let stranger = catalog::keys::SigningKey::generate().did().to_string();
    let err = friend.fails(1, &["trust", "report", &stranger, "--relay", &relay]);
    assert!(err.contains(&format!("no verified binding for {stranger}")), "{err}");
}

#[test]
fn a_publish_that_reached_only_some_relays_is_finished_by_running_it_again() {
    let env = Env::new();
    let (_a, a) = env.relay("relay-a");
    let (_b, b) = env.relay("relay-b");
    let (_registry, http, _) = env.registry();
    let did = env.publisher();
    let app = env.app("notes", "1.0.0", &did);
    let app = app.to_str().unwrap();
    env.ok(&["publish", app, "--relay", &a, "--upload", &http]);
    let author = env.nostr_key();

    // The same release again, now to both relays: the one holding it is left as it is.
    let again = env.ok(&["publish", app, "--relay", &a, "--relay", &b, "--upload", &http]);
    let answers: Vec<(String, String)> = again["relays"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["event"].as_str().unwrap().starts_with("release"))
        .map(|x| (x["relay"].as_str().unwrap().to_owned(), x["event"].as_str().unwrap().to_owned()))
        .collect();
    assert!(answers.contains(&(a.clone(), "release (already held)".into())), "{again}");
    assert!(answers.contains(&(b.clone(), "release".into())), "{again}");
    let (event_b, _, bytes) = accept_release(&env, &b, &author, "1.0.0");
    assert_eq!(env.query(&a, release_filter(&author, "notes")).len(), 1);
    // The NIP-82 mirror likewise: relay a keeps the one it has, relay b gets one pointing at the
    // archy release it holds.
    let mirrored: Vec<(String, String)> = again["mirror"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["relay"].as_str().unwrap().to_owned(), x["event"].as_str().unwrap().to_owned()))
        .collect();
    assert!(mirrored.contains(&(a.clone(), "NIP-82 release (already held)".into())), "{again}");
    assert!(mirrored.contains(&(b.clone(), "NIP-82 application".into())), "{again}");
    assert_eq!(env.query(&a, Filter::new().kind(Kind::from_u16(3063)).author(author)).len(), 1, "no second asset");
    mirror(&env, &a, &author, "notes", "1.0.0");
    assert_envelope_asset(&mirror(&env, &b, &author, "notes", "1.0.0"), &bytes, &event_b);

    // Other bytes under the same version are still refused: versions are immutable.
    let toml = std::fs::read_to_string(format!("{app}/archy.toml")).unwrap();
    std::fs::write(format!("{app}/archy.toml"), toml.replacen("summary = \"", "summary = \"Changed: ", 1)).unwrap();
    let err = env.fails(1, &["publish", app, "--relay", &a, "--upload", &http]);
    assert!(err.contains(&format!("relay {a} already has notes 1.0.0")), "{err}");
}

#[test]
fn an_image_archive_in_dist_gets_its_own_asset_and_a_self_hosted_envelope_gets_no_app_page() {
    let env = Env::new();
    let (_relay, relay) = env.relay("relay-data");
    let did = env.publisher();
    let app = crate::util::copy_app(env.dir.path(), "hello-web", &did);
    std::fs::create_dir_all(app.join("dist")).unwrap();
    let archive = b"an image archive, as `docker save` writes it".repeat(1000);
    std::fs::write(app.join("dist/hello-web-0.1.0.tar"), &archive).unwrap();
    let out = env.ok(&["publish", app.to_str().unwrap(), "--relay", &relay, "--url", "https://files.example/archy/"]);
    assert!(out["mirror"].as_array().unwrap().iter().all(|a| a["ok"] == true), "{out}");

    let author = env.nostr_key();
    let m = mirror(&env, &relay, &author, "hello-web", "0.1.0");
    assert_eq!(m.assets.len(), 2, "the envelope and the image archive");
    let image = m.asset("application/x-tar");
    assert_eq!(tag_value(image, "x"), hex::encode(sha2::Sha256::digest(&archive)));
    assert_eq!(tag_value(image, "blake3"), blake3::hash(&archive).to_hex().as_str());
    assert_eq!(tag_value(image, "size"), archive.len().to_string());
    assert_eq!(tag_value(image, "variant"), "hello-web-0.1.0.tar");
    assert!(tag_values(image, "url").is_empty(), "nothing hosts the archive");

    let envelope = std::fs::read(app.join("dist/hello-web-0.1.0.archy.json")).unwrap();
    let asset = m.asset("application/vnd.archy.envelope+json");
    assert_eq!(tag_value(asset, "x"), hex::encode(sha2::Sha256::digest(&envelope)));
    assert_eq!(tag_value(asset, "url"), "https://files.example/archy/hello-web-0.1.0.archy.json");
    assert_eq!(tag_value(asset, "e"), out["event"].as_str().unwrap());
    assert!(tag_values(&m.application, "url").is_empty(), "no registry, so no app page");
    assert_eq!(tag_value(&m.application, "license"), "GPL-2.0-only");
    assert_eq!(tag_value(&m.application, "repository"), "https://git.busybox.net/busybox");
    assert!(tag_values(&m.application, "icon").is_empty(), "an icon file has no URL");
}

#[test]
fn a_relay_that_refuses_the_mirror_does_not_fail_the_publish() {
    let env = Env::new();
    let (_relay, relay) = env.relay("relay-data");
    let refusing = env.rt.block_on(archy_only_relay());
    let did = env.publisher();
    let app = env.app("notes", "1.0.0", &did);
    let out = env.archy(&[
        "--json",
        "publish",
        app.to_str().unwrap(),
        "--relay",
        &relay,
        "--relay",
        refusing.url(),
        "--url",
        "https://files.example/archy/",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("warning: {}: NIP-82 asset not taken", refusing.url())), "{stderr}");
    let published: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(published["relays"].as_array().unwrap().iter().all(|a| a["ok"] == true), "{published}");
    let refused: Vec<&Value> =
        published["mirror"].as_array().unwrap().iter().filter(|a| a["relay"] == refusing.url()).collect();
    assert!(
        matches!(refused.as_slice(), [a] if a["ok"] == false),
        "the first refusal stops that relay's mirror: {published}"
    );
    let author = env.nostr_key();
    let held = env.query(refusing.url(), release_filter(&author, "notes"));
    assert!(matches!(held.as_slice(), [e] if e.id.to_hex() == published["event"].as_str().unwrap()), "{held:?}");
    mirror(&env, &relay, &author, "notes", "1.0.0");
}

/// A relay that takes archy's kind 30078 events and nothing else.
async fn archy_only_relay() -> Refusing {
    use nostr_relay_builder::prelude::{BoxedFuture, Event, PolicyResult, RelayBuilder, WritePolicy};

    #[derive(Debug)]
    struct ArchyOnly;

    impl WritePolicy for ArchyOnly {
        fn admit_event<'a>(&'a self, e: &'a Event, _: &'a std::net::SocketAddr) -> BoxedFuture<'a, PolicyResult> {
            Box::pin(async move {
                if e.kind.as_u16() == event::KIND_APP_DATA {
                    PolicyResult::Accept
                } else {
                    PolicyResult::Reject(format!("blocked: kind {} is not kept here", e.kind.as_u16()))
                }
            })
        }
    }

    let port = free_port();
    let builder = RelayBuilder::default().addr([127, 0, 0, 1].into()).port(port).write_policy(ArchyOnly);
    let relay = nostr_relay_builder::LocalRelay::new(builder);
    relay.run().await.unwrap();
    let url = relay.url().await.to_string().trim_end_matches('/').to_owned();
    Refusing { relay, url }
}
