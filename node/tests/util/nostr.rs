//! The Nostr side of the harness: an origin with a synced catalog, real relays (the embedded
//! archy relay, in this process, on 127.0.0.1), a hostile relay that answers with raw frames, an
//! HTTP server for envelopes, publishers that build events with `archy_nostr::event`, and the
//! `archy-node` binary driven as a user would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use archy_nostr::event::{self, Location, bech32_npub};
use archy_nostr::nostr_sdk::{Event, EventBuilder, JsonUtil as _, Keys, Kind, PublicKey, Tag};
use archy_nostr::relay::EmbeddedRelay;
use archy_nostr::social::{follow_list_event, label_event};
use catalog::envelope::VerifiedManifest;
use catalog::keys::SigningKey;
use catalog::testing::TestApp;
use catalog::trust::Label;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

use super::node_bin;
use super::origin::{self, HttpServer, Node};

/// A tokio runtime kept alive for the test's relays.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The embedded archy relay on 127.0.0.1, in this process.
pub struct Relay {
    pub rt: tokio::runtime::Runtime,
    pub relay: EmbeddedRelay,
}

impl Relay {
    pub fn start() -> Self {
        let rt = runtime();
        let relay =
            rt.block_on(EmbeddedRelay::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)).expect("start the relay");
        Self { rt, relay }
    }

    pub fn url(&self) -> String {
        self.relay.url().to_owned()
    }

    /// Publishes events (each must be stored by the relay).
    pub fn publish(&self, events: &[Event]) {
        let stored = self
            .rt
            .block_on(node::nostr::relay::publish_all(&self.url(), events, Duration::from_secs(30)))
            .expect("publish");
        assert_eq!(stored, events.len(), "the relay refused some events");
    }

    /// Events of `filter` as the relay serves them.
    pub fn query(&self, filter: serde_json::Value) -> Vec<Event> {
        self.rt.block_on(async {
            let mut conn = node::nostr::relay::Connection::connect(&self.url(), Duration::from_secs(10)).await.unwrap();
            let mut out = Vec::new();
            conn.query("q", &[filter], Duration::from_secs(10), |f| {
                if let node::nostr::relay::Frame::Event { json, .. } = f {
                    out.push(Event::from_json(&json).unwrap());
                }
            })
            .await
            .unwrap();
            out
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}

/// A websocket server on 127.0.0.1 that answers the `archy` query of every REQ with the given
/// raw event texts (inserted verbatim into `["EVENT", sub, <raw>]` frames, so broken JSON stays
/// broken), and every other query with `EOSE` only.
pub struct HostileRelay {
    /// Runs the server; dropping it stops the server.
    _rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
}

impl HostileRelay {
    pub fn start(raw_events: Vec<String>) -> Self {
        let rt = runtime();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let f = Arc::new(Mutex::new(raw_events));
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let f = f.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                    while let Some(Ok(message)) = ws.next().await {
                        let Message::Text(text) = message else { continue };
                        let Ok(serde_json::Value::Array(req)) =
                            serde_json::from_str::<serde_json::Value>(text.as_str())
                        else {
                            continue;
                        };
                        if req.first().and_then(|v| v.as_str()) != Some("REQ") {
                            continue;
                        }
                        let sub = req.get(1).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                        if sub == "archy" {
                            let raw = f.lock().unwrap().clone();
                            for r in raw {
                                let frame = format!("[\"EVENT\",\"{sub}\",{r}]");
                                if ws.send(Message::Text(frame.into())).await.is_err() {
                                    return;
                                }
                            }
                        }
                        let eose = format!("[\"EOSE\",\"{sub}\"]");
                        if ws.send(Message::Text(eose.into())).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { _rt: rt, addr }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A relay that accepts the websocket and then never says anything.
    pub fn silent() -> Self {
        let rt = runtime();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
        });
        Self { _rt: rt, addr }
    }
}

/// A publisher: a did:key and the Nostr key bound to it.
pub struct Publisher {
    pub did: SigningKey,
    pub nostr: Keys,
}

impl Publisher {
    pub fn new() -> Self {
        Self { did: SigningKey::generate(), nostr: Keys::generate() }
    }

    pub fn with_did(did: SigningKey) -> Self {
        Self { did, nostr: Keys::generate() }
    }

    pub fn did(&self) -> String {
        self.did.did().to_string()
    }

    pub fn npub(&self) -> String {
        bech32_npub(&self.nostr.public_key())
    }

    pub fn key(&self) -> PublicKey {
        self.nostr.public_key()
    }

    pub fn manifest(&self, id: &str, version: &str) -> VerifiedManifest {
        TestApp::new(id).version(version).verified(&self.did)
    }

    pub fn binding(&self) -> Event {
        event::binding_event(&self.did, &self.nostr).expect("binding event")
    }

    /// A release whose envelope is served by `envelopes`.
    pub fn release(&self, id: &str, version: &str, envelopes: &Envelopes) -> Event {
        let manifest = self.manifest(id, version);
        let url = envelopes.put(&manifest.envelope().to_bytes());
        event::release_event(&manifest, &[Location::Url(url)], &self.did, &self.nostr).expect("release event")
    }

    pub fn revocation(&self, id: &str, version: &str) -> Event {
        event::revocation_event(&id.parse().unwrap(), &version.parse().unwrap(), "broken build", &self.did, &self.nostr)
            .expect("revocation")
    }
}

/// Re-signs `event`'s tags and content with `keys`, after `edit` (a valid Nostr signature over
/// whatever the test wants).
pub fn resign(event: &Event, keys: &Keys, content: &str, edit: impl Fn(&[String]) -> Option<Vec<String>>) -> Event {
    let tags: Vec<Tag> = event.tags.iter().filter_map(|t| edit(t.as_slice())).map(|v| Tag::parse(v).unwrap()).collect();
    EventBuilder::new(Kind::from_u16(event.kind.as_u16()), content).tags(tags).sign_with_keys(keys).unwrap()
}

pub fn follows(keys: &Keys, follows: &[PublicKey]) -> Event {
    follow_list_event(keys, follows).unwrap()
}

pub fn endorse(keys: &Keys, target: &PublicKey) -> Event {
    label_event(keys, target, Label::Endorse, "good publisher").unwrap()
}

/// A folder of envelope files behind a real HTTP server on 127.0.0.1.
pub struct Envelopes {
    pub dir: tempfile::TempDir,
    pub server: HttpServer,
}

impl Envelopes {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = HttpServer::start(dir.path().to_owned());
        Self { dir, server }
    }

    /// Serves `bytes`; returns their URL.
    pub fn put(&self, bytes: &[u8]) -> String {
        let name = blake3::hash(bytes).to_hex().to_string();
        std::fs::write(self.dir.path().join(&name), bytes).unwrap();
        format!("{}/{name}", self.server.url())
    }
}

/// An origin with its catalog served over HTTP, a relay, an envelope server.
pub struct World {
    pub origin: origin::Origin,
    pub http: HttpServer,
    pub relay: Relay,
    pub envelopes: Envelopes,
}

impl World {
    pub fn new() -> Self {
        let origin = origin::Origin::new();
        let http = HttpServer::start(origin.served());
        Self { origin, http, relay: Relay::start(), envelopes: Envelopes::start() }
    }

    /// A node trusting the origin, reading `relays`, seeded with `seeds`, whose container
    /// engine socket does not exist (nothing in these tests may reach Docker). Without seeds
    /// every score is 0, so a node without seeds admits every bound publisher
    /// (`nostr_policy.min_score = 0`): those tests are about the checks of events, not trust.
    pub fn node_with(&self, relays: &[String], seeds: &[&Keys]) -> Node {
        let node = Node::init(&self.origin.root_v1(), Some(&self.http.url()), &[]);
        let relays: Vec<toml::Value> = relays.iter().map(|r| r.clone().into()).collect();
        let seeds: Vec<toml::Value> = seeds.iter().map(|k| bech32_npub(&k.public_key()).into()).collect();
        let open = seeds.is_empty();
        node.edit_config(|c| {
            let mut nostr = toml::Table::new();
            nostr.insert("relays".into(), toml::Value::Array(relays));
            nostr.insert("timeout_secs".into(), 10.into());
            c.insert("nostr".into(), nostr.into());
            let mut trust = toml::Table::new();
            trust.insert("seeds".into(), toml::Value::Array(seeds));
            c.insert("trust".into(), trust.into());
            if open {
                c.insert("nostr_policy".into(), toml::toml! { min_score = 0.0 }.into());
            }
            c.insert("docker_socket".into(), "/nonexistent/archy-test-docker.sock".into());
        });
        node
    }

    /// A world whose relay holds alice's binding and her `hello-nostr` 1.0.0, and an operator
    /// key that follows alice: `(world, operator, alice)`.
    pub fn with_followed_publisher() -> (Self, Keys, Publisher) {
        let world = Self::new();
        let operator = Keys::generate();
        let alice = Publisher::new();
        world.relay.publish(&[
            alice.binding(),
            alice.release("hello-nostr", "1.0.0", &world.envelopes),
            follows(&operator, &[alice.key()]),
        ]);
        (world, operator, alice)
    }

    pub fn node(&self, seeds: &[&Keys]) -> Node {
        self.node_with(&[self.relay.url()], seeds)
    }
}

/// Runs `archy-node <args> --data <node>`; returns the output.
pub fn archy(node: &Node, args: &[&str]) -> Output {
    Command::new(node_bin())
        .args(args)
        .arg("--data")
        .arg(node.path())
        .env("ARCHY_LOG", "warn")
        .output()
        .expect("run archy-node")
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// `archy-node sync --json`: the report and the log on stderr; the node must not crash.
pub fn sync(node: &Node) -> (node::round::RoundReport, String) {
    let out = archy(node, &["sync", "--json"]);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "archy-node crashed: {stderr}");
    let report: node::round::RoundReport = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("sync printed no report ({e}): {} {stderr}", text(&out.stdout)));
    assert!(out.status.success(), "sync failed: {stderr}");
    assert!(report.nostr.is_some(), "sync did not read the relays");
    (report, stderr)
}

/// `archy-node apps --source nostr --json`.
pub fn nostr_apps(node: &Node) -> Vec<serde_json::Value> {
    let out = archy(node, &["apps", "--source", "nostr", "--json"]);
    assert!(out.status.success(), "apps failed: {}", text(&out.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("apps json")
}

/// The (id, version, publisher) of the Nostr apps listed.
pub fn listed(node: &Node) -> Vec<(String, String, String)> {
    nostr_apps(node)
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
                a["publisher"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `archy-node status --json`'s counts of dropped events, by reason, from the last full read.
pub fn dropped(node: &Node) -> std::collections::BTreeMap<String, u64> {
    let status = node.status_json();
    serde_json::from_value(status["nostr"]["last_read"]["counts"]["dropped"].clone()).unwrap_or_default()
}

/// The verified events the node stored, as parsed events.
pub fn stored_events(node: &Node) -> Vec<Event> {
    let dir = node.path().join("nostr/events");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        out.push(Event::from_json(&text).unwrap());
    }
    out
}

/// Whether anything of `publisher` (events by its key or naming its DID, or its envelopes) was
/// stored.
pub fn stored_anything_of(node: &Node, key: &PublicKey, did: &str) -> bool {
    stored_events(node).iter().any(|e| &e.pubkey == key || e.as_json().contains(did))
}

/// The files in the node's content-addressed store.
pub fn stored_files(node: &Node) -> Vec<PathBuf> {
    std::fs::read_dir(node.path().join("files")).into_iter().flatten().flatten().map(|e| e.path()).collect()
}
