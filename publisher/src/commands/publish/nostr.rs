//! `archy publish <app-dir> --relay URL …`: announce a signed app on Nostr (NIP-78), and
//! `archy publish --revoke <app> <version> --relay URL …`: withdraw one version.
//!
//! Announcing, in order; nothing is posted until every check passed:
//! 1. the manifest is validated and signed as an envelope with the did:key, and verified;
//! 2. every relay is reached (an unreachable one stops the command) and asked for this Nostr
//!    key's current release event of the app and its revocations: versions only move forward,
//!    so a version not greater than the one a relay holds (or one it revoked) is refused;
//! 3. the envelope bytes are made fetchable: uploaded to a registry (`--upload`), written to
//!    `dist/` for the publisher to host (`--url`), and/or served from here over iroh (`--serve`);
//! 4. a relay with no verified binding of this Nostr key to the DID gets the binding event first;
//! 5. the release event (kind 30078, `d` = `archy:app:<id>`) is posted to every relay, and each
//!    relay's answer is reported;
//! 6. the NIP-82 mirror of the release, for app-store clients, is posted after it ([`mirror`]).
//!
//! Nodes check all of it again (`archy_nostr::discovery`): the event only points at the bytes,
//! and the DID signature names them by BLAKE3 hash and size.

use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use archy_nostr::event::{self, Location, bech32_npub, release_d_tag, revoke_d_tag};
use catalog::DidKey;
use catalog::envelope::VerifiedManifest;
use catalog::manifest::AppId;
use serde_json::json;

use super::PublishArgs;
use crate::output::{Output, user_error};
use crate::relays::{self, Answer};

mod mirror;

/// Runs `archy publish <app-dir> --relay …`.
pub fn announce(args: &PublishArgs, app: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    if args.upload.is_none() && args.url.is_none() && !args.serve {
        return Err(user_error(
            "say where nodes fetch the envelope: --upload <registry URL>, --url <URL you host it at>, or --serve",
        ));
    }
    let signing = args.key.load()?;
    let verified = super::sign_app(app, &signing)?;
    let m = verified.manifest();
    let self_hosted = args.url.as_deref().map(|u| self_hosted_url(u, m.id.as_str(), &m.version)).transpose()?;
    let bytes = verified.envelope().to_bytes();
    let images = mirror::image_assets(&verified, app)?;
    let page = args.upload.as_deref().map(|base| format!("{}/apps/{}", base.trim_end_matches('/'), m.id));
    let (keys, created) = args.nostr_key.load_or_create()?;
    let npub = bech32_npub(&keys.public_key());
    let did = signing.did();
    let rt = relays::runtime()?;
    let server = rt.block_on(relays::with_relays(&args.relays, async |connections| {
        // Versions only move forward, on every relay, before anything is posted or uploaded.
        let mut newest = None;
        let mut unbound = Vec::new();
        // Relays that already hold this very release (same version, same envelope): a publish
        // that reached some relays and not others is finished by running it again.
        let mut holding = Vec::new();
        let hash = blake3::hash(&bytes);
        for relay in connections {
            let current = relays::current_release(relay, &keys, m.id.as_str()).await?;
            if let Some((event, current)) = &current
                && current.version == m.version
                && current.hash == hash
            {
                holding.push((relay.url(), event.clone()));
                continue;
            }
            if let Some((_, current)) = current
                && current.version >= m.version
            {
                return Err(user_error(format!(
                    "relay {} already has {} {} from {npub}; versions only move forward: set a version above {} in {}",
                    relay.url(),
                    m.id,
                    current.version,
                    current.version,
                    app.join("archy.toml").display()
                )));
            }
            if let Some(revoked) = relays::revoked_versions(relay, &keys, &did, m.id.as_str())
                .await?
                .into_iter()
                .filter(|v| *v >= m.version)
                .max()
            {
                return Err(user_error(format!(
                    "relay {} holds a revocation of {} {revoked} from {npub}; versions only move forward: set a version above {revoked} in {}",
                    relay.url(),
                    m.id,
                    app.join("archy.toml").display()
                )));
            }
            let at = relays::newest_at_address(relay, &keys, &release_d_tag(m.id.as_str())).await?;
            newest = newest.max(at.map(|at| (at, relay.url())));
            if !relays::has_binding(relay, &keys, &did).await? {
                unbound.push(relay);
            }
        }

        // Make the bytes fetchable.
        let mut locations = Vec::new();
        let mut hosted = Vec::new();
        if let Some(base) = &args.upload {
            let answer = upload(base, bytes.clone()).await?;
            hosted.push(json!({"upload": base, "answer": answer.raw}));
            locations.push(Location::Url(answer.url));
            locations.extend(answer.iroh.map(Location::Iroh));
        }
        if let Some(url) = self_hosted {
            let file = app.join("dist").join(catalog::envelope::file_name(&m.id, &m.version));
            write_dist(&file, &bytes)?;
            hosted.push(json!({"file": file, "url": url}));
            locations.push(Location::Url(url));
        }
        let server = if args.serve {
            let server = serve::start(args.iroh_bind, bytes.clone()).await?;
            locations.push(Location::Iroh(server.ticket.clone()));
            Some(server)
        } else {
            None
        };

        // A relay that can't tell this key speaks for the DID gets the binding first.
        let mut answers: Vec<Answer> = Vec::new();
        if !unbound.is_empty() {
            let binding = event::binding_event(&signing, &keys)?;
            for relay in unbound {
                answers.push(relays::post(relay, "binding", &binding).await);
            }
            relays::check(&answers)?;
        }

        // The release event, dated after what it replaces.
        if let Some((at, relay)) = newest {
            relays::wait_until_after(at, &relay).await?;
        }
        let release = event::release_event(&verified, &locations, &signing, &keys)?;
        for relay in connections.iter().filter(|r| !holding.iter().any(|(url, _)| *url == r.url())) {
            answers.push(relays::post(relay, "release", &release).await);
        }
        for (url, event) in &holding {
            let id = event.id.to_hex();
            answers.push(Answer { relay: url.clone(), what: "release (already held)", id, result: Ok(()) });
        }
        relays::check(&answers)?;

        // The NIP-82 mirror, once the archy events are out.
        let mirrored =
            mirror::announce(connections, &release, &holding, &verified, &images, page.as_deref(), &keys).await?;
        let announced = Announced { id: release.id.to_hex(), locations, hosted, answers, mirrored };
        print_announced(out, &verified, &did, &npub, created, &announced);
        Ok(server)
    }))?;
    if let Some(server) = server {
        if !out.json {
            println!("serving the envelope over iroh until Ctrl-C");
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        rt.block_on(async {
            shutdown_signal().await;
            server.shutdown().await;
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// What one publish posted: the release event's id, the envelope's locations, where it is
/// hosted, and each relay's answers to the archy events and to the NIP-82 mirror.
struct Announced {
    id: String,
    locations: Vec<Location>,
    hosted: Vec<serde_json::Value>,
    answers: Vec<Answer>,
    mirrored: Vec<Answer>,
}

fn print_announced(out: &Output, verified: &VerifiedManifest, did: &DidKey, npub: &str, created: bool, a: &Announced) {
    let Announced { id, locations, hosted, answers, mirrored } = a;
    let m = verified.manifest();
    let bytes = verified.envelope().to_bytes();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let bound: Vec<&str> = answers.iter().filter(|a| a.what == "binding").map(|a| a.relay.as_str()).collect();
    let mut human = String::new();
    if created {
        human.push_str("created a Nostr key for this publisher\n");
    }
    if !bound.is_empty() {
        human.push_str(&format!("posted the binding of {npub} to {did} first, to {}\n", bound.join(", ")));
    }
    human.push_str(&format!(
        "announced {} {} (envelope blake3 {hash}, {} bytes)\nevent: {id}\nnpub: {npub}\ndid: {did}\n",
        m.id,
        m.version,
        bytes.len()
    ));
    for l in locations {
        human.push_str(&format!("location: {l}\n"));
    }
    human.push_str(&relays::lines(answers));
    human.push('\n');
    human.push_str(&mirror::report(mirrored));
    out.print(
        human.trim_end().to_owned(),
        &json!({
            "app": m.id.as_str(),
            "version": m.version.to_string(),
            "event": id,
            "npub": npub,
            "did": did.to_string(),
            "blake3": hash,
            "size": bytes.len(),
            "locations": locations,
            "hosted": hosted,
            "nostr_key_created": created,
            "relays": answers.iter().map(Answer::json).collect::<Vec<_>>(),
            "mirror": mirrored.iter().map(Answer::json).collect::<Vec<_>>(),
        }),
    );
}

/// The URL announced for `--url`: as given, or with the file name appended when it ends in `/`.
fn self_hosted_url(url: &str, app: &str, version: &semver::Version) -> anyhow::Result<String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(user_error(format!("--url {url}: nodes fetch over http:// or https://")));
    }
    Ok(if url.ends_with('/') { format!("{url}{app}-{version}.archy.json") } else { url.to_owned() })
}

fn write_dist(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    catalog::repo::write_atomic(file, bytes).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

/// What a registry answered to `POST /v1/blobs`.
struct Hosted {
    url: String,
    iroh: Option<String>,
    raw: serde_json::Value,
}

/// Uploads the envelope to a registry's `POST /v1/blobs` and checks that the answer names
/// these bytes.
async fn upload(base: &str, bytes: Vec<u8>) -> anyhow::Result<Hosted> {
    let endpoint = format!("{}/v1/blobs", base.trim_end_matches('/'));
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let size = bytes.len() as u64;
    let what = format!("uploading the envelope to {endpoint}");
    let raw: serde_json::Value = tokio::task::spawn_blocking({
        let (endpoint, what) = (endpoint.clone(), what.clone());
        move || -> anyhow::Result<serde_json::Value> {
            let agent = ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout_read(Duration::from_secs(60))
                .redirects(0)
                .build();
            let response = agent
                .post(&endpoint)
                .set("Content-Type", "application/json")
                .send_bytes(&bytes)
                .map_err(|e| super::http_error(e, &what))?;
            response.into_json().with_context(|| format!("{what}: the answer is not JSON"))
        }
    })
    .await
    .context("upload task")??;
    if raw["blake3"].as_str() != Some(hash.as_str()) || raw["size"].as_u64() != Some(size) {
        return Err(anyhow::anyhow!(
            "{what}: the registry answered {raw}, which does not name these {size} bytes (blake3 {hash})"
        ));
    }
    let url = raw["url"].as_str().filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let url = url.with_context(|| format!("{what}: the answer has no http(s) `url`: {raw}"))?.to_owned();
    let iroh = raw["iroh"].as_str().map(str::to_owned);
    Ok(Hosted { url, iroh, raw })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Runs `archy publish --revoke <app> <version> --relay …`: posts the revocation event to every
/// relay and, where the relay's current release of the app is that version, a NIP-09 deletion
/// request for it; then a NIP-09 deletion request for the NIP-82 mirror of that version where a
/// relay holds it.
pub fn revoke(args: &PublishArgs, app: &str, version: &str, out: &Output) -> anyhow::Result<ExitCode> {
    let signing = args.key.load()?;
    let app_id = if Path::new(app).join("archy.toml").is_file() {
        crate::commands::app::load(Path::new(app))?.id
    } else {
        AppId::from_str(app).map_err(|e| user_error(format!("--revoke {app}: {e}")))?
    };
    let version = semver::Version::parse(version).map_err(|e| user_error(format!("--revoke … {version}: {e}")))?;
    let (keys, created) = args.nostr_key.load_or_create()?;
    let npub = bech32_npub(&keys.public_key());
    let did = signing.did();
    let reason = args.reason.as_deref().unwrap_or_default().trim();
    let rt = relays::runtime()?;
    let deletion_text = if reason.is_empty() { format!("{app_id} {version} is revoked") } else { reason.to_owned() };
    let (answers, mirrored) = rt.block_on(relays::with_relays(&args.relays, async |connections| {
        let mut answers = Vec::new();
        let mut plans = Vec::new();
        for relay in connections {
            let current = relays::current_release(relay, &keys, app_id.as_str()).await?;
            let delete = current.filter(|(_, r)| r.version == version).map(|(e, _)| e);
            let bound = relays::has_binding(relay, &keys, &did).await?;
            // Revoking again replaces the earlier revocation: date it after that one.
            if let Some(at) = relays::newest_at_address(relay, &keys, &revoke_d_tag(app_id.as_str(), &version)).await? {
                relays::wait_until_after(at, &relay.url()).await?;
            }
            plans.push((relay, bound, delete));
        }
        let binding = event::binding_event(&signing, &keys)?;
        for (relay, bound, _) in &plans {
            if !bound {
                answers.push(relays::post(relay, "binding", &binding).await);
            }
        }
        relays::check(&answers)?;
        let revocation = event::revocation_event(&app_id, &version, reason, &signing, &keys)?;
        for (relay, _, delete) in &plans {
            answers.push(relays::post(relay, "revocation", &revocation).await);
            if let Some(release) = delete {
                let deletion = event::deletion_request(release, &deletion_text, &keys)?;
                answers.push(relays::post(relay, "deletion", &deletion).await);
            }
        }
        relays::check(&answers)?;
        let mirrored = mirror::revoke(connections, &app_id, &version, &deletion_text, &keys).await?;
        Ok((answers, mirrored))
    }))?;
    let revocation_id = answers.iter().find(|a| a.what == "revocation").map(|a| a.id.clone()).unwrap_or_default();
    let deleted: Vec<&str> = answers.iter().filter(|a| a.what == "deletion").map(|a| a.relay.as_str()).collect();
    let mut human =
        format!("revoked {app_id} {version}\nrevocation event: {revocation_id}\nnpub: {npub}\ndid: {did}\n");
    if created {
        human.insert_str(0, "created a Nostr key for this publisher\n");
    }
    if deleted.is_empty() {
        human.push_str("no relay held it as the current release: no deletion request\n");
    } else {
        human.push_str(&format!("asked {} to delete the release event (NIP-09)\n", deleted.join(", ")));
    }
    let mirror_deleted: Vec<&str> = mirrored.iter().filter(|a| a.result.is_ok()).map(|a| a.relay.as_str()).collect();
    if !mirror_deleted.is_empty() {
        human.push_str(&format!(
            "asked {} to delete the NIP-82 release of {version} and its assets (NIP-09)\n",
            mirror_deleted.join(", ")
        ));
    }
    human.push_str(&relays::lines(&answers));
    human.push('\n');
    human.push_str(&mirror::report(&mirrored));
    out.print(
        human.trim_end().to_owned(),
        &json!({
            "app": app_id.as_str(),
            "version": version.to_string(),
            "revocation": revocation_id,
            "npub": npub,
            "did": did.to_string(),
            "relays": answers.iter().map(Answer::json).collect::<Vec<_>>(),
            "mirror": mirrored.iter().map(Answer::json).collect::<Vec<_>>(),
        }),
    );
    Ok(ExitCode::SUCCESS)
}

/// `--serve`: the envelope from this machine's own iroh endpoint.
mod serve {
    use std::net::SocketAddr;

    /// The running provider and the ticket naming it.
    pub(super) struct Server {
        pub(super) ticket: String,
        router: iroh::protocol::Router,
    }

    /// Binds an endpoint with [`archy_net::bind_endpoint`] (relays off, no address lookup, direct
    /// addresses only: nothing reaches public infrastructure) under a key made for this run, puts
    /// the bytes in an in-memory blob store and serves it with iroh-blobs. The ticket is an
    /// iroh-blobs `BlobTicket` (`blob…`) holding the endpoint id, the bound address and the hash.
    pub(super) async fn start(bind: SocketAddr, bytes: Vec<u8>) -> anyhow::Result<Server> {
        let endpoint = archy_net::bind_endpoint(iroh::SecretKey::generate(), bind)
            .await
            .map_err(|e| anyhow::anyhow!("--iroh-bind {bind}: {e:#}"))?;
        let addr = archy_net::local_peer_addr(&endpoint)?.addr;
        let store = iroh_blobs::store::mem::MemStore::new();
        let tag = store.add_bytes(bytes).with_tag().await.map_err(|e| anyhow::anyhow!("blob store: {e}"))?;
        let ticket = iroh_blobs::ticket::BlobTicket::new(
            iroh::EndpointAddr::new(endpoint.id()).with_ip_addr(addr),
            tag.hash,
            iroh_blobs::BlobFormat::Raw,
        );
        let blobs = iroh_blobs::BlobsProtocol::new(&store, None);
        let router = iroh::protocol::Router::builder(endpoint).accept(iroh_blobs::ALPN, blobs).spawn();
        Ok(Server { ticket: ticket.to_string(), router })
    }

    impl Server {
        /// Stops serving (this also shuts the blob store down).
        pub(super) async fn shutdown(self) {
            if let Err(e) = self.router.shutdown().await {
                eprintln!("warning: stopping the iroh endpoint: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_ending_in_a_slash_gets_the_file_name() {
        let v = semver::Version::new(1, 2, 0);
        assert_eq!(
            self_hosted_url("https://files.example/archy/", "notes", &v).expect("url"),
            "https://files.example/archy/notes-1.2.0.archy.json"
        );
        assert_eq!(self_hosted_url("http://h/x.json", "notes", &v).expect("url"), "http://h/x.json");
        let err = self_hosted_url("ftp://h/x.json", "notes", &v).expect_err("ftp");
        assert!(err.to_string().contains("http:// or https://"), "{err}");
    }
}
