//! `archy publish <app-dir> --registry URL`: submit a signed app to an origin registry.
//! `archy publish <app-dir> --relay URL …` and `archy publish --revoke <app> <version> --relay
//! URL …`: announce or revoke it on Nostr instead ([`nostr`]).
//!
//! Everything is signed here, on the publisher's machine; the key never leaves it:
//! 1. the manifest is validated and signed as an envelope;
//! 2. the registry is asked which role it delegated to this DID and for that role's current
//!    signed metadata, whose signature is checked against this key (a registry can't slip
//!    targets into the next version we sign);
//! 3. the next version of the role lists the envelope and any image archives
//!    (`<app-dir>/dist/<file>` or `--image FILE`), is signed, and is uploaded with the files.
//!
//! The registry answers 200 with the new catalog versions, or 4xx with `{"error","reason"}`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use catalog::envelope::VerifiedManifest;
use catalog::keys::{PublicKey, SigningKey};
use catalog::manifest::{Image, Limits, Manifest};
use catalog::metadata::{SignedMetadata, Targets};
use chrono::Utc;
use clap::Args;
use serde_json::json;

use crate::cli::{KeyPath, NostrKeyPath};
use crate::output::{Output, user_error};

pub mod nostr;

/// `archy publish`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The app folder (holds archy.toml).
    #[arg(required_unless_present = "revoke")]
    app: Option<PathBuf>,
    /// Base URL of the origin registry, e.g. http://127.0.0.1:8480.
    #[arg(long, required_unless_present_any = ["relays", "revoke"], conflicts_with = "relays")]
    registry: Option<String>,
    /// An image archive the manifest names (default: `<app>/dist/<file>` when present).
    #[arg(long = "image", value_name = "FILE", requires = "registry")]
    images: Vec<PathBuf>,
    /// Announce on this Nostr relay (ws://… or wss://…) instead of submitting to a registry;
    /// repeat for several.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// With --relay: upload the signed envelope to this archy registry (its `POST /v1/blobs`)
    /// and announce where it serves it.
    #[arg(long, value_name = "URL", requires = "relays")]
    upload: Option<String>,
    /// With --relay: you host the envelope yourself at this URL (a URL ending in `/` gets the
    /// file name appended); it is written to `<app>/dist/<app-id>-<version>.archy.json`.
    #[arg(long, value_name = "URL", requires = "relays")]
    url: Option<String>,
    /// With --relay: serve the envelope from this machine over iroh (relays off) until Ctrl-C,
    /// and announce its blob ticket.
    #[arg(long, requires = "relays")]
    serve: bool,
    /// The address `--serve` listens on; the ticket names it, so it must be one nodes can reach.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    iroh_bind: SocketAddr,
    /// With --relay: revoke one version of an app (an app id, or an app folder).
    #[arg(
        long,
        num_args = 2,
        value_names = ["APP", "VERSION"],
        requires = "relays",
        conflicts_with_all = ["app", "registry", "upload", "url", "serve"]
    )]
    revoke: Option<Vec<String>>,
    /// Why the version is revoked (shown to people in the revocation event).
    #[arg(long, value_name = "TEXT", requires = "revoke")]
    reason: Option<String>,
    #[command(flatten)]
    key: KeyPath,
    #[command(flatten)]
    nostr_key: NostrKeyPath,
}

/// Runs `archy publish`.
pub fn run(args: PublishArgs, out: &Output) -> anyhow::Result<ExitCode> {
    if let Some(revoke) = &args.revoke {
        let [app, version] = revoke.as_slice() else {
            return Err(user_error("--revoke takes an app and a version"));
        };
        return nostr::revoke(&args, app, version, out);
    }
    let app = args.app.clone().ok_or_else(|| user_error("name the app folder to publish"))?;
    match &args.registry {
        Some(registry) => submit_to_registry(&args, &app, registry, out),
        None => nostr::announce(&args, &app, out),
    }
}

/// Loads the app at `app`, checks that `key` is its publisher, signs its envelope and verifies
/// the result as a node would.
pub fn sign_app(app: &Path, key: &SigningKey) -> anyhow::Result<VerifiedManifest> {
    let manifest = crate::commands::app::load(app)?;
    if manifest.publisher != key.did() {
        return Err(user_error(format!(
            "{}: publisher is {} but the key is {}; set `publisher = \"{}\"`",
            app.join("archy.toml").display(),
            manifest.publisher,
            key.did(),
            key.did()
        )));
    }
    let envelope = catalog::envelope::SignedEnvelope::sign(&manifest, key)?;
    Ok(envelope.verify(&Limits::default())?)
}

/// The icon file of an app folder and its target path, when the manifest names a local file
/// (an `https://` icon is only a link: nothing is uploaded).
pub fn icon(manifest: &catalog::manifest::Manifest, app: &Path) -> anyhow::Result<Option<(String, PathBuf)>> {
    let Some(catalog::manifest::Icon::Path(file)) = &manifest.icon else { return Ok(None) };
    // `Manifest::from_dir` (every way an app folder is loaded) already refused any other type.
    let target = catalog::repo::icon_target_path(manifest.id.as_str(), &manifest.version, file).ok_or_else(|| {
        user_error(format!("{}: icon `{file}` is not an image type", app.join("archy.toml").display()))
    })?;
    Ok(Some((target, app.join(file))))
}

fn submit_to_registry(args: &PublishArgs, app: &Path, registry: &str, out: &Output) -> anyhow::Result<ExitCode> {
    let key = args.key.load()?;
    let verified = sign_app(app, &key)?;
    let manifest = verified.manifest();
    let mut files: Vec<(String, Upload)> = vec![(
        catalog::repo::envelope_target_path(manifest.id.as_str(), &manifest.version),
        Upload::Bytes(verified.envelope().to_bytes()),
    )];
    for (target, path) in archives(manifest, app, &args.images)? {
        files.push((catalog::repo::image_target_path(&target), Upload::File(path)));
    }
    if let Some((target, path)) = icon(manifest, app)? {
        files.push((target, Upload::File(path)));
    }

    let base = registry.trim_end_matches('/').to_owned();
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(120))
        .redirects(0)
        .build();
    let (role, current) = current_role(&agent, &base, &key)?;

    let now = Utc::now();
    let mut next = match current {
        Some(t) => t,
        None => Targets {
            kind: "targets".into(),
            spec_version: catalog::metadata::SPEC_VERSION.into(),
            version: 0,
            expires: now,
            targets: Default::default(),
            delegations: None,
            unknown: Default::default(),
        },
    };
    let mut new_paths = Vec::new();
    for (path, upload) in &files {
        let described = upload.describe(path)?;
        match next.targets.get(path) {
            Some(old) if old.length == described.length && old.hashes == described.hashes => continue,
            Some(_) => {
                return Err(user_error(format!(
                    "`{path}` is already published with other content; bump the version in archy.toml"
                )));
            }
            None => {
                next.targets.insert(path.clone(), described);
                new_paths.push(path.clone());
            }
        }
    }
    if new_paths.is_empty() {
        out.print(
            format!("{} {} is already published; nothing to do", manifest.id, manifest.version),
            &json!({"role": role, "published": [], "version": next.version}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    next.version += 1;
    next.expires = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
        + catalog::repo::Expiry::default().delegated;
    let signed = SignedMetadata::sign(next, &[&key])?;
    let uploads: Vec<&(String, Upload)> = files.iter().filter(|(p, _)| new_paths.contains(p)).collect();
    let answer = submit(&agent, &base, &role, &signed.to_bytes(), &uploads)?;
    out.print(
        format!(
            "published {} {} as role `{role}` v{} (catalog snapshot v{}, timestamp v{})\n  {}",
            manifest.id,
            manifest.version,
            signed.signed.version,
            answer["snapshot_version"],
            answer["timestamp_version"],
            new_paths.join("\n  ")
        ),
        &json!({"role": role, "published": new_paths, "version": signed.signed.version, "registry": answer}),
    );
    Ok(ExitCode::SUCCESS)
}

enum Upload {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Upload {
    fn describe(&self, path: &str) -> anyhow::Result<catalog::metadata::TargetFile> {
        let kind = if path.starts_with("apps/") {
            "manifest"
        } else if catalog::repo::icon_media_type(path).is_some() && path.contains("/icon-") {
            "icon"
        } else {
            "image"
        };
        match self {
            Upload::Bytes(b) => Ok(catalog::repo::target_file(b, kind)),
            Upload::File(p) => {
                let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                Ok(catalog::repo::target_file(&bytes, kind))
            }
        }
    }

    fn len(&self) -> anyhow::Result<u64> {
        Ok(match self {
            Upload::Bytes(b) => b.len() as u64,
            Upload::File(p) => std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?.len(),
        })
    }

    fn reader(&self) -> anyhow::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Upload::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
            Upload::File(p) => Box::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?),
        })
    }
}

/// The archive files to upload: each `--image`, or `<app>/dist/<file>` for every archive image
/// the manifest names when that file exists.
pub(crate) fn archives(manifest: &Manifest, app: &Path, given: &[PathBuf]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let targets: Vec<&str> = manifest
        .containers
        .iter()
        .filter_map(|c| match &c.image {
            Image::Archive { target, .. } => Some(target.as_str()),
            Image::Pinned(_) => None,
        })
        .collect();
    let mut out = Vec::new();
    for file in given {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let target = targets
            .iter()
            .find(|t| t.rsplit('/').next() == Some(name.as_str()))
            .ok_or_else(|| user_error(format!("{}: the manifest names no archive image `{name}`", file.display())))?;
        out.push(((*target).to_owned(), file.clone()));
    }
    for target in targets {
        if out.iter().any(|(t, _)| t == target) {
            continue;
        }
        let name = target.rsplit('/').next().unwrap_or(target);
        let candidate = app.join("dist").join(name);
        if candidate.is_file() {
            out.push((target.to_owned(), candidate));
        }
    }
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

pub(crate) fn http_error(e: ureq::Error, what: &str) -> anyhow::Error {
    match e {
        ureq::Error::Status(code, response) => {
            let body: serde_json::Value = response.into_json().unwrap_or_default();
            let reason = body["reason"].as_str().unwrap_or("no reason given");
            let kind = body["error"].as_str().unwrap_or("error");
            if (400..500).contains(&code) {
                user_error(format!("{what}: refused ({code} {kind}): {reason}"))
            } else {
                anyhow::anyhow!("{what}: the registry failed ({code} {kind}): {reason}")
            }
        }
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

/// The role delegated to this key and its current signed metadata, checked to carry this key's
/// signature (TUF 1.0 §5.6.3 threshold 1 over the publisher's own key).
fn current_role(agent: &ureq::Agent, base: &str, key: &SigningKey) -> anyhow::Result<(String, Option<Targets>)> {
    let url = format!("{base}/v1/publishers/{}", key.did());
    let body: serde_json::Value = agent
        .get(&url)
        .call()
        .map_err(|e| http_error(e, "asking the registry for this publisher's role"))?
        .into_json()?;
    let role = body["role"].as_str().context("the registry's answer has no role")?.to_owned();
    let current = match &body["current"] {
        serde_json::Value::Null => None,
        value => {
            let bytes = serde_json::to_vec(value)?;
            let md = SignedMetadata::<Targets>::from_slice(&bytes, &role)?;
            let public = PublicKey::ed25519(&key.verifying_key());
            let keys = [(public.key_id(), public.clone())].into_iter().collect();
            md.verify_role(&role, &keys, &[public.key_id()], 1).map_err(|e| {
                anyhow::anyhow!("the registry's current metadata for role `{role}` is not signed by this key: {e}")
            })?;
            Some(md.signed)
        }
    };
    Ok((role, current))
}

/// Uploads the signed role and its new files as `multipart/form-data`, streaming the files.
fn submit(
    agent: &ureq::Agent,
    base: &str,
    role: &str,
    metadata: &[u8],
    files: &[&(String, Upload)],
) -> anyhow::Result<serde_json::Value> {
    let mut seed = [0u8; 12];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let boundary = format!("archy-{}", hex::encode(seed));
    let part = |name: &str, filename: Option<&str>| {
        let disposition = match filename {
            Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
            None => format!("form-data; name=\"{name}\""),
        };
        format!("--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n")
            .into_bytes()
    };
    let mut pieces: Vec<Box<dyn Read + Send>> = Vec::new();
    let mut length = 0u64;
    let mut push_bytes = |bytes: Vec<u8>, pieces: &mut Vec<Box<dyn Read + Send>>| {
        length += bytes.len() as u64;
        pieces.push(Box::new(std::io::Cursor::new(bytes)));
    };
    let mut head = part("role", None);
    head.extend_from_slice(role.as_bytes());
    head.extend_from_slice(b"\r\n");
    head.extend(part("metadata", None));
    head.extend_from_slice(metadata);
    head.extend_from_slice(b"\r\n");
    push_bytes(head, &mut pieces);
    let mut file_bytes = 0u64;
    for (path, upload) in files {
        push_bytes(part("file", Some(path)), &mut pieces);
        file_bytes += upload.len()?;
        pieces.push(upload.reader()?);
        push_bytes(b"\r\n".to_vec(), &mut pieces);
    }
    push_bytes(format!("--{boundary}--\r\n").into_bytes(), &mut pieces);
    let total = length + file_bytes;
    let body =
        pieces.into_iter().fold(Box::new(std::io::empty()) as Box<dyn Read + Send>, |acc, r| Box::new(acc.chain(r)));
    let response = agent
        .post(&format!("{base}/v1/submissions"))
        .set("Content-Type", &format!("multipart/form-data; boundary={boundary}"))
        .set("Content-Length", &total.to_string())
        .send(body)
        .map_err(|e| http_error(e, "submitting"))?;
    Ok(response.into_json()?)
}
