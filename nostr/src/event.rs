//! archy's Nostr events: app releases, DID bindings and revocations, all kind 30078 (NIP-78,
//! arbitrary custom app data, addressable), plus the NIP-09 deletion request that goes with a
//! revocation.
//!
//! | event | `d` tag | `t` tag | DID statement signed |
//! |---|---|---|---|
//! | release | `archy:app:<app-id>` | `archy-app` | [`release_message`] |
//! | binding | `archy:bind:<did>` | `archy-bind` | [`bind_message`] |
//! | revocation | `archy:revoke:<app-id>:<version>` | `archy-revoke` | [`revoke_message`] |
//! | key succession | `archy:key:succession:<old did>:<hash>` | `archy-key` | [`catalog::keylife::Succession::message`] (old and new key) |
//! | key revocation | `archy:key:revocation:<did>:<hash>` | `archy-key` | [`catalog::keylife::Revocation::message`] |
//!
//! A key statement (the last two) is the statement file itself, carried as the event's content:
//! its DID signatures make it valid whoever posts it, so an owner whose key is gone can post the
//! revocation they prepared from any Nostr key, and nodes need no binding to check it.
//!
//! Every DID statement names the Nostr key that posts it, so a statement copied into someone
//! else's event does not verify there. The statements start with their own domain prefix, so a
//! DID signature of one kind is never valid as another, nor as an envelope signature
//! ([`catalog::envelope::SIGNING_PREFIX`]).
//!
//! [`parse`] checks an event's shape and its Nostr signature (NIP-01 id and BIP-340 signature);
//! it does not check DID signatures, which need the binding first (see [`crate::discovery`]).

use std::fmt;
use std::str::FromStr;

use catalog::DidKey;
use catalog::envelope::VerifiedManifest;
use catalog::keys::SigningKey;
use catalog::manifest::AppId;
use nostr_sdk::{Event, EventBuilder, Keys, Kind, PublicKey, Tag, Timestamp};

/// NIP-78 "arbitrary custom app data": addressable, so a relay keeps the newest event per
/// (kind, pubkey, `d`) (NIP-01 addressable events).
pub const KIND_APP_DATA: u16 = 30078;
/// `t` tag of release events (relays index single-letter tags, so nodes filter on it).
pub const TOPIC_APP: &str = "archy-app";
/// `t` tag of binding events.
pub const TOPIC_BIND: &str = "archy-bind";
/// `t` tag of revocation events.
pub const TOPIC_REVOKE: &str = "archy-revoke";
/// `t` tag of key statement events (succession and revocation of a publisher key).
pub const TOPIC_KEY: &str = "archy-key";
/// Largest event accepted, as serialized JSON. An archy event is about 1 KiB.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Largest kind 3 follow list accepted: [`crate::social::MAX_FOLLOWS`] keys of about 70 bytes
/// each.
pub const MAX_FOLLOW_LIST_BYTES: usize = 1024 * 1024;

/// The size limit of an event of `kind`.
pub fn max_event_bytes(kind: u16) -> usize {
    if kind == 3 { MAX_FOLLOW_LIST_BYTES } else { MAX_EVENT_BYTES }
}
/// Largest readable `content`.
pub const MAX_CONTENT_BYTES: usize = 4 * 1024;
/// Most fetch locations in one release.
pub const MAX_LOCATIONS: usize = 8;
/// Largest fetch location string.
pub const MAX_LOCATION_BYTES: usize = 2048;
/// How far in the future an event's `created_at` may be (clock skew).
pub const MAX_FUTURE_SECS: u64 = 600;

const RELEASE_PREFIX: &str = "archy-nostr-release-v1\n";
const BIND_PREFIX: &str = "archy-nostr-bind-v1\n";
const REVOKE_PREFIX: &str = "archy-nostr-revoke-v1\n";

/// Why an event was dropped. Each variant names its cause; nodes log it and count it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Larger than a limit.
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not valid JSON or not a NIP-01 event.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// The node's policy refuses the publisher outright (its operator denied it).
    #[error("{0}")]
    NotAdmitted(String),
    /// The NIP-01 id or the BIP-340 signature does not verify.
    #[error("bad Nostr signature: {0}")]
    BadNostrSignature(String),
    /// Not one of archy's events.
    #[error("not an archy event: {0}")]
    NotArchy(String),
    /// An archy event with a missing or invalid tag.
    #[error("malformed archy event: {0}")]
    BadShape(String),
    /// `created_at` too far in the future.
    #[error("created_at is {ahead} s in the future (limit {MAX_FUTURE_SECS} s)")]
    FromTheFuture {
        /// Seconds ahead of the node's clock.
        ahead: u64,
    },
    /// No verified binding says this Nostr key speaks for the DID.
    #[error("no verified binding says npub {npub} speaks for {did}")]
    Unbound {
        /// The DID claimed.
        did: String,
        /// The key that posted the event.
        npub: String,
    },
    /// The DID signature does not verify over the statement the event makes.
    #[error("DID signature by {did} does not verify over the {statement} statement for npub {npub}")]
    BadDidSignature {
        /// The DID.
        did: String,
        /// Which statement.
        statement: &'static str,
        /// The key that posted the event.
        npub: String,
    },
    /// An older version than the newest one already verified (a replay).
    #[error("{app} {version} by {did} is older than the verified {newest}: replayed or out of order")]
    Replayed {
        /// App id.
        app: String,
        /// Version announced.
        version: String,
        /// Newest verified version.
        newest: String,
        /// Publisher DID.
        did: String,
    },
    /// The same version was already announced with other bytes (versions are immutable).
    #[error("{app} {version} by {did} was already announced with manifest {known}; versions are immutable")]
    Conflicting {
        /// App id.
        app: String,
        /// Version.
        version: String,
        /// Publisher DID.
        did: String,
        /// The hash already verified.
        known: String,
    },
    /// The publisher revoked this version.
    #[error("{app} {version} by {did} is revoked")]
    Revoked {
        /// App id.
        app: String,
        /// Version.
        version: String,
        /// Publisher DID.
        did: String,
    },
    /// The envelope could not be fetched from any location.
    #[error("envelope {hash} could not be fetched: {reason}")]
    FetchFailed {
        /// The BLAKE3 hash.
        hash: String,
        /// What each location answered.
        reason: String,
    },
    /// The fetched bytes are not what the event names, or the envelope does not verify.
    #[error("envelope {hash} refused: {reason}")]
    BadEnvelope {
        /// The BLAKE3 hash.
        hash: String,
        /// Why.
        reason: String,
    },
    /// A publisher key statement whose DID signatures do not verify.
    #[error("{0}")]
    BadKeyStatement(String),
    /// The publisher's key is revoked, or holds its standing only through a revoked key.
    #[error("refused: {0}")]
    KeyRefused(String),
    /// The node holds too many events waiting for their binding.
    #[error("dropped: {0}")]
    Overloaded(String),
}

/// Where an envelope's bytes can be fetched. The bytes are checked against the signed hash
/// whatever the location, so a location is only a hint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// An `http://` or `https://` URL serving the envelope file.
    Url(String),
    /// An iroh-blobs ticket (`blob…`) of the envelope file.
    Iroh(String),
}

impl Location {
    fn tag_name(&self) -> &'static str {
        match self {
            Self::Url(_) => "url",
            Self::Iroh(_) => "iroh",
        }
    }

    /// The location string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Url(s) | Self::Iroh(s) => s,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.tag_name(), self.as_str())
    }
}

/// A release announcement as the event claims it (shape and Nostr signature checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// App id.
    pub app: AppId,
    /// Version.
    pub version: semver::Version,
    /// BLAKE3 of the envelope file.
    pub hash: blake3::Hash,
    /// Size of the envelope file.
    pub size: u64,
    /// Publisher DID.
    pub did: DidKey,
    /// Ed25519 signature over [`release_message`].
    pub did_sig: [u8; 64],
    /// Where to fetch the envelope.
    pub locations: Vec<Location>,
}

/// A DID↔npub binding as the event claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The DID.
    pub did: DidKey,
    /// Ed25519 signature over [`bind_message`].
    pub did_sig: [u8; 64],
}

/// A revocation as the event claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// App id.
    pub app: AppId,
    /// The revoked version.
    pub version: semver::Version,
    /// Publisher DID.
    pub did: DidKey,
    /// Ed25519 signature over [`revoke_message`].
    pub did_sig: [u8; 64],
}

/// One of archy's events, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// An app release.
    Release(Release),
    /// A DID↔npub binding.
    Binding(Binding),
    /// A revocation.
    Revocation(Revocation),
    /// A publisher key statement (its DID signatures not yet checked).
    KeyStatement(catalog::keylife::Statement),
}

/// The statement a publisher's DID signs for a release: the app, version, envelope hash and
/// size, and the Nostr key allowed to announce it.
pub fn release_message(
    app: &str,
    version: &semver::Version,
    hash: &blake3::Hash,
    size: u64,
    npub: &PublicKey,
) -> Vec<u8> {
    format!("{RELEASE_PREFIX}{app}\n{version}\n{}\n{size}\n{}", hash.to_hex(), npub.to_hex()).into_bytes()
}

/// The statement a DID signs to say that a Nostr key speaks for it.
pub fn bind_message(did: &DidKey, npub: &PublicKey) -> Vec<u8> {
    format!("{BIND_PREFIX}{did}\n{}", npub.to_hex()).into_bytes()
}

/// The statement a DID signs to revoke one version of one of its apps.
pub fn revoke_message(app: &str, version: &semver::Version, npub: &PublicKey) -> Vec<u8> {
    format!("{REVOKE_PREFIX}{app}\n{version}\n{}", npub.to_hex()).into_bytes()
}

/// `d` tag of an app's release events.
pub fn release_d_tag(app: &str) -> String {
    format!("archy:app:{app}")
}

/// `d` tag of a DID's binding event.
pub fn bind_d_tag(did: &DidKey) -> String {
    format!("archy:bind:{did}")
}

/// `d` tag of a key statement's event:
/// `archy:key:<succession|revocation>:<subject did>:<first 16 hex digits of BLAKE3(statement)>`.
/// The hash makes each statement its own address, so a later statement about the same key by the
/// same Nostr key (a thief holding both keys) never replaces an earlier one on relays (NIP-01
/// keeps one addressable event per address).
pub fn key_statement_d_tag(statement: &catalog::keylife::Statement) -> String {
    let hash = blake3::hash(&statement.to_bytes()).to_hex();
    format!("archy:key:{}:{}:{}", statement.kind(), statement.subject(), &hash[..16])
}

/// Builds the event carrying a key statement (signed by any Nostr key: the statement's own DID
/// signatures are what nodes check).
pub fn key_statement_event(
    statement: &catalog::keylife::Statement,
    nostr: &Keys,
) -> Result<Event, nostr_sdk::event::builder::Error> {
    let content = String::from_utf8_lossy(&statement.to_bytes()).into_owned();
    let alt = match statement {
        catalog::keylife::Statement::Succession(s) => format!("archy key succession: {} moved to {}", s.old, s.new),
        catalog::keylife::Statement::Revocation(r) => format!("archy key revocation: {} is revoked", r.did),
    };
    let tags = [tag(&["d", &key_statement_d_tag(statement)]), tag(&["t", TOPIC_KEY]), tag(&["alt", &alt])];
    EventBuilder::new(Kind::from_u16(KIND_APP_DATA), content).tags(tags).sign_with_keys(nostr)
}

/// `d` tag of a revocation event.
pub fn revoke_d_tag(app: &str, version: &semver::Version) -> String {
    format!("archy:revoke:{app}:{version}")
}

pub(crate) fn tag(values: &[&str]) -> Tag {
    // Tag::parse only fails on an empty slice.
    Tag::parse(values.iter().copied()).unwrap_or_else(|_| Tag::parse(["invalid"]).expect("non-empty tag"))
}

/// Builds the kind 30078 release event for a verified manifest whose envelope file
/// (`manifest.envelope().to_bytes()`) is fetchable at `locations`.
pub fn release_event(
    manifest: &VerifiedManifest,
    locations: &[Location],
    did_key: &SigningKey,
    nostr: &Keys,
) -> Result<Event, nostr_sdk::event::builder::Error> {
    let m = manifest.manifest();
    let bytes = manifest.envelope().to_bytes();
    let hash = blake3::hash(&bytes);
    let size = bytes.len() as u64;
    let sig = did_key.sign(&release_message(m.id.as_str(), &m.version, &hash, size, &nostr.public_key()));
    let did = did_key.did().to_string();
    let mut tags = vec![
        tag(&["d", &release_d_tag(m.id.as_str())]),
        tag(&["t", TOPIC_APP]),
        tag(&["app", m.id.as_str()]),
        tag(&["version", &m.version.to_string()]),
        tag(&["x", &hash.to_hex(), "blake3"]),
        tag(&["size", &size.to_string()]),
        tag(&["did", &did]),
        tag(&["did-sig", &hex::encode(sig)]),
        tag(&["title", &m.title]),
    ];
    tags.extend(locations.iter().map(|l| tag(&[l.tag_name(), l.as_str()])));
    tags.push(tag(&["alt", &format!("archy app release: {} {} ({}) by {did}", m.title, m.version, m.id)]));
    let content = format!("{} {}\n\n{}", m.title, m.version, m.summary);
    EventBuilder::new(Kind::from_u16(KIND_APP_DATA), content).tags(tags).sign_with_keys(nostr)
}

/// Builds the binding event: signed by the Nostr key (the event) and the DID (`did-sig` over
/// [`bind_message`] naming that Nostr key).
pub fn binding_event(did_key: &SigningKey, nostr: &Keys) -> Result<Event, nostr_sdk::event::builder::Error> {
    let did = did_key.did();
    let sig = did_key.sign(&bind_message(&did, &nostr.public_key()));
    let npub = bech32_npub(&nostr.public_key());
    let tags = [
        tag(&["d", &bind_d_tag(&did)]),
        tag(&["t", TOPIC_BIND]),
        tag(&["did", &did.to_string()]),
        tag(&["did-sig", &hex::encode(sig)]),
        tag(&["alt", &format!("archy identity binding: {npub} speaks for {did}")]),
    ];
    let content = format!("This Nostr key ({npub}) publishes archy apps for {did}.");
    EventBuilder::new(Kind::from_u16(KIND_APP_DATA), content).tags(tags).sign_with_keys(nostr)
}

/// Builds the revocation event for one version.
pub fn revocation_event(
    app: &AppId,
    version: &semver::Version,
    reason: &str,
    did_key: &SigningKey,
    nostr: &Keys,
) -> Result<Event, nostr_sdk::event::builder::Error> {
    let did = did_key.did().to_string();
    let sig = did_key.sign(&revoke_message(app.as_str(), version, &nostr.public_key()));
    let tags = [
        tag(&["d", &revoke_d_tag(app.as_str(), version)]),
        tag(&["t", TOPIC_REVOKE]),
        tag(&["app", app.as_str()]),
        tag(&["version", &version.to_string()]),
        tag(&["did", &did]),
        tag(&["did-sig", &hex::encode(sig)]),
        tag(&["alt", &format!("archy revocation: {app} {version} by {did} is withdrawn")]),
    ];
    let content = format!("{app} {version} is revoked by its publisher. {reason}");
    EventBuilder::new(Kind::from_u16(KIND_APP_DATA), content).tags(tags).sign_with_keys(nostr)
}

/// Builds the NIP-09 deletion request for a release event being revoked: it names the event by
/// id (`e`), its address (`a`) and its kind (`k`).
pub fn deletion_request(
    release: &Event,
    reason: &str,
    nostr: &Keys,
) -> Result<Event, nostr_sdk::event::builder::Error> {
    let d = release.tags.identifier().unwrap_or_default();
    let tags = [
        tag(&["e", &release.id.to_hex()]),
        tag(&["a", &format!("{KIND_APP_DATA}:{}:{d}", release.pubkey.to_hex())]),
        tag(&["k", &KIND_APP_DATA.to_string()]),
    ];
    EventBuilder::new(Kind::EventDeletion, reason).tags(tags).sign_with_keys(nostr)
}

/// An `npub1…` string.
pub fn bech32_npub(key: &PublicKey) -> String {
    use nostr_sdk::ToBech32;
    key.to_bech32().unwrap_or_else(|_| key.to_hex())
}

/// Parses an event from relay JSON, with the size limit, checking its NIP-01 id and signature.
pub fn event_from_json(json: &str) -> Result<Event, Rejected> {
    // Before parsing only the largest limit of any kind applies; check_nostr applies the kind's.
    if json.len() > MAX_FOLLOW_LIST_BYTES {
        return Err(Rejected::TooLarge { what: "event", size: json.len(), limit: MAX_FOLLOW_LIST_BYTES });
    }
    use nostr_sdk::JsonUtil;
    let event = Event::from_json(json).map_err(|e| Rejected::Malformed(e.to_string()))?;
    check_nostr(&event)?;
    Ok(event)
}

/// Checks what every event must pass first: size, NIP-01 id and BIP-340 signature, and a
/// `created_at` not far in the future.
pub fn check_nostr(event: &Event) -> Result<(), Rejected> {
    use nostr_sdk::JsonUtil;
    let size = event.as_json().len();
    let limit = max_event_bytes(event.kind.as_u16());
    if size > limit {
        return Err(Rejected::TooLarge { what: "event", size, limit });
    }
    event.verify().map_err(|e| Rejected::BadNostrSignature(e.to_string()))?;
    let now = Timestamp::now().as_secs();
    let at = event.created_at.as_secs();
    if at > now + MAX_FUTURE_SECS {
        return Err(Rejected::FromTheFuture { ahead: at - now });
    }
    Ok(())
}

/// The single value of tag `name`; an error if it is missing or repeated.
fn one<'e>(event: &'e Event, name: &str) -> Result<&'e str, Rejected> {
    let mut found = event.tags.iter().filter(|t| t.as_slice().first().map(String::as_str) == Some(name));
    let first = found.next().ok_or_else(|| Rejected::BadShape(format!("missing `{name}` tag")))?;
    if found.next().is_some() {
        return Err(Rejected::BadShape(format!("repeated `{name}` tag")));
    }
    first.as_slice().get(1).map(String::as_str).ok_or_else(|| Rejected::BadShape(format!("empty `{name}` tag")))
}

fn did_of(event: &Event) -> Result<DidKey, Rejected> {
    let did = one(event, "did")?;
    DidKey::from_str(did).map_err(|e| Rejected::BadShape(format!("`did` tag: {e}")))
}

fn sig_of(event: &Event) -> Result<[u8; 64], Rejected> {
    let sig = one(event, "did-sig")?;
    let bytes = hex::decode(sig).map_err(|_| Rejected::BadShape("`did-sig` tag is not hex".into()))?;
    bytes.try_into().map_err(|_| Rejected::BadShape("`did-sig` tag is not a 64-byte Ed25519 signature".into()))
}

fn app_of(event: &Event) -> Result<AppId, Rejected> {
    AppId::from_str(one(event, "app")?).map_err(|e| Rejected::BadShape(format!("`app` tag: {e}")))
}

fn version_of(event: &Event) -> Result<semver::Version, Rejected> {
    semver::Version::parse(one(event, "version")?).map_err(|e| Rejected::BadShape(format!("`version` tag: {e}")))
}

/// Parses one of archy's events. Checks, in order: [`check_nostr`], the kind and `d` tag, the
/// content size, then every tag the shape requires. DID signatures are not checked here.
pub fn parse(event: &Event) -> Result<Announcement, Rejected> {
    check_nostr(event)?;
    if event.kind.as_u16() != KIND_APP_DATA {
        return Err(Rejected::NotArchy(format!("kind {}", event.kind.as_u16())));
    }
    let d = one(event, "d").map_err(|_| Rejected::NotArchy("kind 30078 without a single `d` tag".into()))?;
    if event.content.len() > MAX_CONTENT_BYTES {
        return Err(Rejected::TooLarge { what: "content", size: event.content.len(), limit: MAX_CONTENT_BYTES });
    }
    if let Some(app) = d.strip_prefix("archy:app:") {
        let release = parse_release(event)?;
        if release.app.as_str() != app {
            return Err(Rejected::BadShape(format!("`d` names app `{app}` but the `app` tag says `{}`", release.app)));
        }
        Ok(Announcement::Release(release))
    } else if let Some(did) = d.strip_prefix("archy:bind:") {
        let binding = Binding { did: did_of(event)?, did_sig: sig_of(event)? };
        if binding.did.to_string() != did {
            return Err(Rejected::BadShape(format!("`d` names {did} but the `did` tag says {}", binding.did)));
        }
        Ok(Announcement::Binding(binding))
    } else if d.starts_with("archy:revoke:") {
        let revocation = Revocation {
            app: app_of(event)?,
            version: version_of(event)?,
            did: did_of(event)?,
            did_sig: sig_of(event)?,
        };
        if d != revoke_d_tag(revocation.app.as_str(), &revocation.version) {
            return Err(Rejected::BadShape(format!("`d` tag `{d}` does not name the revoked app and version")));
        }
        Ok(Announcement::Revocation(revocation))
    } else if d.starts_with("archy:key:") {
        let statement = catalog::keylife::Statement::from_slice(event.content.as_bytes())
            .map_err(|e| Rejected::BadShape(e.to_string()))?;
        if d != key_statement_d_tag(&statement) {
            return Err(Rejected::BadShape(format!("`d` tag `{d}` does not name the statement's kind and key")));
        }
        Ok(Announcement::KeyStatement(statement))
    } else {
        Err(Rejected::NotArchy(format!("`d` tag `{d}`")))
    }
}

fn parse_release(event: &Event) -> Result<Release, Rejected> {
    let x =
        event.tags.iter().map(Tag::as_slice).filter(|t| t.first().map(String::as_str) == Some("x")).collect::<Vec<_>>();
    let [x] = x.as_slice() else {
        return Err(Rejected::BadShape("expected exactly one `x` tag".into()));
    };
    if x.get(2).map(String::as_str) != Some("blake3") {
        return Err(Rejected::BadShape("`x` tag must be `[\"x\", <hex>, \"blake3\"]`".into()));
    }
    let hash = blake3::Hash::from_hex(x.get(1).map(String::as_str).unwrap_or_default())
        .map_err(|_| Rejected::BadShape("`x` tag is not a BLAKE3 hex hash".into()))?;
    let size: u64 = one(event, "size")?.parse().map_err(|_| Rejected::BadShape("`size` tag is not a number".into()))?;
    let limit = catalog::envelope::MAX_ENVELOPE_BYTES;
    if size > limit as u64 {
        return Err(Rejected::TooLarge { what: "announced envelope", size: size as usize, limit });
    }
    let mut locations = Vec::new();
    for t in event.tags.iter().map(Tag::as_slice) {
        let location = match (t.first().map(String::as_str), t.get(1)) {
            (Some("url"), Some(u)) if u.starts_with("http://") || u.starts_with("https://") => Location::Url(u.clone()),
            (Some("url"), _) => return Err(Rejected::BadShape("`url` tag is not an http(s) URL".into())),
            (Some("iroh"), Some(ticket)) => Location::Iroh(ticket.clone()),
            (Some("iroh"), None) => return Err(Rejected::BadShape("empty `iroh` tag".into())),
            _ => continue,
        };
        if location.as_str().len() > MAX_LOCATION_BYTES {
            return Err(Rejected::TooLarge {
                what: "fetch location",
                size: location.as_str().len(),
                limit: MAX_LOCATION_BYTES,
            });
        }
        locations.push(location);
    }
    if locations.is_empty() {
        return Err(Rejected::BadShape("no `url` or `iroh` tag says where to fetch the envelope".into()));
    }
    if locations.len() > MAX_LOCATIONS {
        return Err(Rejected::TooLarge {
            what: "list of fetch locations",
            size: locations.len(),
            limit: MAX_LOCATIONS,
        });
    }
    Ok(Release {
        app: app_of(event)?,
        version: version_of(event)?,
        hash,
        size,
        did: did_of(event)?,
        did_sig: sig_of(event)?,
        locations,
    })
}

fn verify_did(
    did: &DidKey,
    message: &[u8],
    sig: &[u8; 64],
    statement: &'static str,
    npub: &PublicKey,
) -> Result<(), Rejected> {
    let signature = ed25519_dalek::Signature::from_bytes(sig);
    // verify_strict: no malleable or small-order signatures (RFC 8032 §5.1.7 plus the
    // cofactorless check ed25519-dalek documents).
    did.verifying_key().verify_strict(message, &signature).map_err(|_| Rejected::BadDidSignature {
        did: did.to_string(),
        statement,
        npub: bech32_npub(npub),
    })
}

impl Binding {
    /// Checks the DID signature over [`bind_message`] for the key that posted the event.
    pub fn verify(&self, npub: &PublicKey) -> Result<(), Rejected> {
        verify_did(&self.did, &bind_message(&self.did, npub), &self.did_sig, "binding", npub)
    }
}

impl Release {
    /// Checks the DID signature over [`release_message`] for the key that posted the event.
    pub fn verify(&self, npub: &PublicKey) -> Result<(), Rejected> {
        let message = release_message(self.app.as_str(), &self.version, &self.hash, self.size, npub);
        verify_did(&self.did, &message, &self.did_sig, "release", npub)
    }
}

impl Revocation {
    /// Checks the DID signature over [`revoke_message`] for the key that posted the event.
    pub fn verify(&self, npub: &PublicKey) -> Result<(), Rejected> {
        let message = revoke_message(self.app.as_str(), &self.version, npub);
        verify_did(&self.did, &message, &self.did_sig, "revocation", npub)
    }
}

#[cfg(test)]
mod key_statement_tests {
    use super::*;

    #[test]
    fn a_key_statement_event_parses_back_to_its_statement() {
        let (old, new) = (SigningKey::generate(), SigningKey::generate());
        let statement = catalog::keylife::Statement::Succession(
            catalog::keylife::Succession::sign(&old, &new, catalog::testing::t0()).expect("sign"),
        );
        let event = key_statement_event(&statement, &Keys::generate()).expect("event");
        match parse(&event) {
            Ok(Announcement::KeyStatement(parsed)) => assert_eq!(parsed, statement),
            other => panic!("{other:?}"),
        }
    }
}
