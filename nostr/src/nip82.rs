//! The NIP-82 mirror: archy releases described in the draft's software-application kinds, so
//! Nostr app-store clients can list archy apps.
//!
//! NIP-82 ("Software Applications", `draft`, nostr-protocol/nips pull request 1336, followed at
//! commit `9d959cd9`, 2026-01-29) defines three kinds. For one archy release [`Mirror`] builds:
//!
//! | kind | what | addressed by | points at |
//! |---|---|---|---|
//! | 32267 | the application | `d` = app id | the archy release address (`a` = `30078:<pubkey>:archy:app:<id>`) |
//! | 30063 | the release | `d` = `<id>@<version>` | its assets (`e`), the application (`a`) |
//! | 3063 | an asset: the signed envelope, and any image archive | event id (not replaceable) | the archy release event (`e`, `a`) |
//!
//! The mirror is for people browsing an app store. A node never reads it: what a node trusts
//! comes from the kind 30078 events and their DID signatures ([`crate::event`],
//! [`crate::discovery`]), and the envelope the node installs from is checked against the DID's
//! BLAKE3 hash, whatever an asset says.
//!
//! ```
//! use archy_nostr::nip82::{KIND_APPLICATION, KIND_ASSET, KIND_RELEASE, Mirror};
//! use archy_nostr::event::{self, Location};
//! use archy_nostr::nostr_sdk::Keys;
//! use catalog::keys::SigningKey;
//! use catalog::testing::TestApp;
//!
//! let (did, nostr) = (SigningKey::generate(), Keys::generate());
//! let manifest = TestApp::new("notes").version("1.2.0").verified(&did);
//! let locations = [Location::Url("http://127.0.0.1:8480/v1/blobs/…".into())];
//! let release = event::release_event(&manifest, &locations, &did, &nostr).unwrap();
//!
//! let mirror = Mirror::new(&manifest, &release).page("http://127.0.0.1:8480/apps/notes").sign(&nostr).unwrap();
//! assert_eq!(mirror.application.kind.as_u16(), KIND_APPLICATION);
//! assert_eq!(mirror.release.kind.as_u16(), KIND_RELEASE);
//! assert_eq!(mirror.release.tags.identifier(), Some("notes@1.2.0"));
//! assert!(mirror.assets.iter().all(|a| a.kind.as_u16() == KIND_ASSET));
//! ```

use std::io::{self, Read};

use catalog::envelope::VerifiedManifest;
use catalog::manifest::Icon;
use nostr_sdk::{Event, EventBuilder, Filter, Keys, Kind, PublicKey, Tag};
use sha2::Digest as _;

use crate::event::{Announcement, KIND_APP_DATA, Location, tag};

/// NIP-82 software application (addressable, `d` = the app id).
pub const KIND_APPLICATION: u16 = 32267;
/// NIP-82 software release (addressable, `d` = `<app id>@<version>`).
pub const KIND_RELEASE: u16 = 30063;
/// NIP-82 software asset (regular; an extension of NIP-94's kind 1063 file metadata).
pub const KIND_ASSET: u16 = 3063;
/// The MIME type of archy's signed envelope file (`{"archy_envelope":1,"manifest":…}`): the
/// runtime it implies is an archy node.
pub const MIME_ENVELOPE: &str = "application/vnd.archy.envelope+json";
/// The MIME type of an image archive (`docker save` / OCI image layout in a tar file).
pub const MIME_IMAGE_ARCHIVE: &str = "application/x-tar";
/// The release channel (NIP-82 Appendix B): archy has none, so every release is on `main`.
pub const CHANNEL: &str = "main";

/// Why a mirror could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The kind 30078 event given is not the archy release of this envelope.
    #[error("event {id} is not the archy release of {app} {version} with envelope blake3 {blake3}: {reason}")]
    NotTheRelease {
        /// The event's id.
        id: String,
        /// App id of the manifest.
        app: String,
        /// Version of the manifest.
        version: String,
        /// BLAKE3 of the envelope.
        blake3: String,
        /// What does not match.
        reason: String,
    },
    /// Signing an event failed.
    #[error("signing a NIP-82 event: {0}")]
    Sign(#[from] nostr_sdk::event::builder::Error),
}

/// A file a kind 3063 asset describes: its MIME type, SHA-256 (NIP-82's `x`), archy's BLAKE3,
/// size and where to download it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    mime: &'static str,
    sha256: [u8; 32],
    blake3: blake3::Hash,
    size: u64,
    url: Option<String>,
    variant: Option<String>,
}

impl Asset {
    /// The envelope file, `bytes` as [`catalog::envelope::SignedEnvelope::to_bytes`] writes it.
    pub fn envelope(bytes: &[u8]) -> Self {
        Self {
            mime: MIME_ENVELOPE,
            sha256: sha2::Sha256::digest(bytes).into(),
            blake3: blake3::hash(bytes),
            size: bytes.len() as u64,
            url: None,
            variant: None,
        }
    }

    /// An image archive read from `reader` (streamed: archives can be large). `name` is its
    /// file name, given as the asset's `variant` so that several archives of one release can be
    /// told apart.
    pub fn image_archive(name: &str, mut reader: impl Read) -> io::Result<Self> {
        let mut sha256 = sha2::Sha256::new();
        let mut blake3 = blake3::Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            sha256.update(&buf[..n]);
            blake3.update(&buf[..n]);
            size += n as u64;
        }
        Ok(Self {
            mime: MIME_IMAGE_ARCHIVE,
            sha256: sha256.finalize().into(),
            blake3: blake3.finalize(),
            size,
            url: None,
            variant: Some(name.to_owned()),
        })
    }

    /// The same asset, downloadable at `url`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Its MIME type (`m`).
    pub fn mime(&self) -> &str {
        self.mime
    }

    /// SHA-256 of the file, lowercase hex (`x`).
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// BLAKE3 of the file (the `blake3` tag).
    pub fn blake3(&self) -> blake3::Hash {
        self.blake3
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// The mirror events of one release, in the order they are posted: every asset first, then the
/// release that names them, then the application.
#[derive(Debug, Clone)]
pub struct MirrorEvents {
    /// Kind 3063, the envelope first.
    pub assets: Vec<Event>,
    /// Kind 30063.
    pub release: Event,
    /// Kind 32267.
    pub application: Event,
}

impl MirrorEvents {
    /// `(what, event)` in posting order: `asset`…, `release`, `application`.
    pub fn in_order(&self) -> impl Iterator<Item = (&'static str, &Event)> {
        self.assets.iter().map(|a| ("asset", a)).chain([("release", &self.release), ("application", &self.application)])
    }
}

/// Builds the NIP-82 events that mirror one archy release; [`Mirror::sign`] signs them with the
/// Nostr key that posted the release.
#[derive(Debug, Clone)]
pub struct Mirror<'a> {
    manifest: &'a VerifiedManifest,
    archy_release: &'a Event,
    images: Vec<Asset>,
    page: Option<String>,
    relay: Option<String>,
}

impl<'a> Mirror<'a> {
    /// The mirror of `archy_release`, the kind 30078 release event of `manifest`
    /// ([`crate::event::release_event`]). The envelope asset's `url` is the release's first
    /// `url` location; with none (an iroh ticket only) the asset has no `url`.
    pub fn new(manifest: &'a VerifiedManifest, archy_release: &'a Event) -> Self {
        Self { manifest, archy_release, images: Vec::new(), page: None, relay: None }
    }

    /// Adds an image archive asset ([`Asset::image_archive`]).
    pub fn image(mut self, asset: Asset) -> Self {
        self.images.push(asset);
        self
    }

    /// The app's web page (the application's `url` tag).
    pub fn page(mut self, url: impl Into<String>) -> Self {
        self.page = Some(url.into());
        self
    }

    /// A relay where the events can be found, given as the hint of every `e` and `a` tag.
    pub fn relay_hint(mut self, url: impl Into<String>) -> Self {
        self.relay = Some(url.into());
        self
    }

    /// Checks that the archy event is this envelope's release, then builds and signs the
    /// assets, the release and the application.
    pub fn sign(self, keys: &Keys) -> Result<MirrorEvents, MirrorError> {
        let m = self.manifest.manifest();
        let bytes = self.manifest.envelope().to_bytes();
        let mut envelope = Asset::envelope(&bytes);
        let not_it = |reason: String| MirrorError::NotTheRelease {
            id: self.archy_release.id.to_hex(),
            app: m.id.to_string(),
            version: m.version.to_string(),
            blake3: envelope.blake3.to_hex().to_string(),
            reason,
        };
        let release = match crate::event::parse(self.archy_release) {
            Ok(Announcement::Release(r)) => r,
            Ok(_) => return Err(not_it("not a release event".into())),
            Err(e) => return Err(not_it(e.to_string())),
        };
        if release.app != m.id || release.version != m.version || release.hash != envelope.blake3 {
            return Err(not_it(format!(
                "it announces {} {} with blake3 {}",
                release.app, release.version, release.hash
            )));
        }
        if let Some(url) = release.locations.iter().find_map(|l| match l {
            Location::Url(u) => Some(u.clone()),
            Location::Iroh(_) => None,
        }) {
            envelope = envelope.url(url);
        }

        let author = keys.public_key();
        let (id, version) = (m.id.as_str(), m.version.to_string());
        let archy_address = format!("{KIND_APP_DATA}:{}:{}", author.to_hex(), crate::event::release_d_tag(id));
        let hint = self.relay.as_deref();
        let pointer = |name: &str, value: &str| match hint {
            Some(h) => tag(&[name, value, h]),
            None => tag(&[name, value]),
        };

        let mut assets = Vec::new();
        for (n, asset) in std::iter::once(&envelope).chain(&self.images).enumerate() {
            let mut tags = vec![tag(&["i", id])];
            tags.extend(asset.url.as_deref().map(|u| tag(&["url", u])));
            tags.extend([
                tag(&["m", asset.mime]),
                tag(&["x", &asset.sha256_hex()]),
                tag(&["size", &asset.size.to_string()]),
                tag(&["version", &version]),
                tag(&["blake3", &asset.blake3.to_hex()]),
            ]);
            tags.extend(asset.variant.as_deref().map(|v| tag(&["variant", v])));
            let what = if n == 0 {
                // The envelope is the file the archy release names: point back at that event.
                tags.push(pointer("e", &self.archy_release.id.to_hex()));
                tags.push(pointer("a", &archy_address));
                "signed envelope".to_owned()
            } else {
                format!("image archive {}", asset.variant.as_deref().unwrap_or_default())
            };
            tags.push(tag(&["alt", &format!("Software asset: the {what} of archy app {id} {version}")]));
            assets.push(EventBuilder::new(Kind::from_u16(KIND_ASSET), "").tags(tags).sign_with_keys(keys)?);
        }

        let mut tags = vec![tag(&["i", id]), tag(&["version", &version]), tag(&["d", &release_d_tag(id, &m.version)])];
        tags.push(tag(&["c", CHANNEL]));
        tags.extend(assets.iter().map(|a| pointer("e", &a.id.to_hex())));
        tags.push(pointer("a", &application_address(&author, id)));
        tags.push(tag(&["alt", &format!("Software release: {} {version} (archy app {id})", m.title)]));
        // archy manifests carry no release notes.
        let release_82 = EventBuilder::new(Kind::from_u16(KIND_RELEASE), "").tags(tags).sign_with_keys(keys)?;

        let mut tags = vec![tag(&["d", id]), tag(&["name", &m.title]), tag(&["summary", &m.summary])];
        if let Some(Icon::Url(icon)) = &m.icon {
            tags.push(tag(&["icon", icon]));
        }
        tags.extend(m.categories.iter().map(|c| tag(&["t", c])));
        tags.extend(self.page.as_deref().map(|p| tag(&["url", p])));
        tags.push(tag(&["repository", &m.source]));
        tags.push(tag(&["license", &m.license]));
        tags.push(pointer("a", &archy_address));
        tags.push(tag(&["alt", &format!("Software application: {} ({id}), an archy app", m.title)]));
        let application = EventBuilder::new(Kind::from_u16(KIND_APPLICATION), m.description.trim_end())
            .tags(tags)
            .sign_with_keys(keys)?;
        Ok(MirrorEvents { assets, release: release_82, application })
    }
}

/// The `d` tag of the release event of `app` at `version`: `<app id>@<version>` (NIP-82: the
/// `i` and `version` tags joined by `@`).
pub fn release_d_tag(app: &str, version: &semver::Version) -> String {
    format!("{app}@{version}")
}

/// `32267:<pubkey hex>:<app id>`, the address of an application event.
pub fn application_address(author: &PublicKey, app: &str) -> String {
    format!("{KIND_APPLICATION}:{}:{app}", author.to_hex())
}

/// The release events of `app` at `version` by `author`.
pub fn release_filter(author: &PublicKey, app: &str, version: &semver::Version) -> Filter {
    Filter::new().kind(Kind::from_u16(KIND_RELEASE)).author(*author).identifier(release_d_tag(app, version))
}

/// The application events of `app` by `author`.
pub fn application_filter(author: &PublicKey, app: &str) -> Filter {
    Filter::new().kind(Kind::from_u16(KIND_APPLICATION)).author(*author).identifier(app)
}

/// The NIP-09 deletion request for a mirrored release being revoked: the release by id (`e`)
/// and address (`a`), and every asset it names (`e`), with a `k` tag per kind.
pub fn deletion_request(release: &Event, reason: &str, keys: &Keys) -> Result<Event, nostr_sdk::event::builder::Error> {
    let d = release.tags.identifier().unwrap_or_default();
    let mut tags = vec![tag(&["e", &release.id.to_hex()])];
    tags.extend(
        release
            .tags
            .iter()
            .map(Tag::as_slice)
            .filter(|t| t.first().map(String::as_str) == Some("e"))
            .filter_map(|t| t.get(1))
            .map(|id| tag(&["e", id])),
    );
    tags.push(tag(&["a", &format!("{KIND_RELEASE}:{}:{d}", release.pubkey.to_hex())]));
    tags.push(tag(&["k", &KIND_RELEASE.to_string()]));
    tags.push(tag(&["k", &KIND_ASSET.to_string()]));
    EventBuilder::new(Kind::EventDeletion, reason).tags(tags).sign_with_keys(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use catalog::keys::SigningKey;
    use catalog::testing::TestApp;

    use super::*;
    use crate::event;

    /// Every value of tag `name`, first value only.
    fn values<'e>(event: &'e Event, name: &str) -> Vec<&'e str> {
        event
            .tags
            .iter()
            .map(Tag::as_slice)
            .filter(|t| t.first().map(String::as_str) == Some(name))
            .filter_map(|t| t.get(1).map(String::as_str))
            .collect()
    }

    fn one<'e>(event: &'e Event, name: &str) -> &'e str {
        let v = values(event, name);
        assert_eq!(v.len(), 1, "one `{name}` tag in {:?}", event.tags);
        v[0]
    }

    struct Fixture {
        nostr: Keys,
        manifest: VerifiedManifest,
        archy: Event,
    }

    fn fixture(locations: &[Location]) -> Fixture {
        let (did, nostr) = (SigningKey::generate(), Keys::generate());
        let manifest = TestApp::new("notes").version("1.2.0").verified(&did);
        let archy = event::release_event(&manifest, locations, &did, &nostr).unwrap();
        Fixture { nostr, manifest, archy }
    }

    const URL: &str = "http://127.0.0.1:8480/v1/blobs/abc";

    #[test]
    fn the_envelope_asset_names_the_envelope_by_sha256_and_blake3_and_points_at_the_archy_release() {
        let f = fixture(&[Location::Iroh("blobabc".into()), Location::Url(URL.into())]);
        let mirror = Mirror::new(&f.manifest, &f.archy).relay_hint("ws://127.0.0.1:7447").sign(&f.nostr).unwrap();
        let [asset] = mirror.assets.as_slice() else { panic!("one asset: {:?}", mirror.assets) };
        let bytes = f.manifest.envelope().to_bytes();
        assert_eq!(asset.kind.as_u16(), 3063);
        assert_eq!(asset.content, "");
        assert_eq!(one(asset, "i"), "notes");
        assert_eq!(one(asset, "version"), "1.2.0");
        assert_eq!(one(asset, "m"), "application/vnd.archy.envelope+json");
        assert_eq!(one(asset, "x"), hex::encode(sha2::Sha256::digest(&bytes)));
        assert_eq!(one(asset, "blake3"), blake3::hash(&bytes).to_hex().as_str());
        assert_eq!(one(asset, "size"), bytes.len().to_string());
        assert_eq!(one(asset, "url"), URL, "the first url location, not the iroh ticket");
        let e: Vec<&[String]> = asset.tags.iter().map(Tag::as_slice).filter(|t| t[0] == "e").collect();
        assert_eq!(e, [[String::from("e"), f.archy.id.to_hex(), "ws://127.0.0.1:7447".into()]]);
        let archy_address = format!("30078:{}:archy:app:notes", f.nostr.public_key().to_hex());
        assert_eq!(one(asset, "a"), archy_address);
        assert_eq!(asset.pubkey, f.nostr.public_key(), "signed by the key that posted the archy release");
    }

    #[test]
    fn the_sha256_is_the_standard_one() {
        // FIPS 180-2 test vector.
        let asset = Asset::envelope(b"abc");
        assert_eq!(asset.sha256_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let streamed = Asset::image_archive("x.tar", &b"abc"[..]).unwrap();
        assert_eq!(
            (streamed.sha256_hex(), streamed.blake3(), streamed.size()),
            (asset.sha256_hex(), asset.blake3(), 3)
        );
        assert_eq!(streamed.mime(), "application/x-tar");
    }

    #[test]
    fn the_release_is_addressed_by_id_at_version_and_names_every_asset() {
        let f = fixture(&[Location::Url(URL.into())]);
        let archive = Asset::image_archive("notes-1.2.0.tar", &b"not really a tar"[..]).unwrap();
        let mirror = Mirror::new(&f.manifest, &f.archy).image(archive.clone()).sign(&f.nostr).unwrap();
        let release = &mirror.release;
        assert_eq!(release.kind.as_u16(), 30063);
        assert_eq!(one(release, "d"), "notes@1.2.0");
        assert_eq!(one(release, "i"), "notes");
        assert_eq!(one(release, "version"), "1.2.0");
        assert_eq!(one(release, "c"), "main");
        let ids: Vec<String> = mirror.assets.iter().map(|a| a.id.to_hex()).collect();
        assert_eq!(values(release, "e"), ids, "every asset, the envelope first");
        assert_eq!(one(release, "a"), format!("32267:{}:notes", f.nostr.public_key().to_hex()));

        let image = &mirror.assets[1];
        assert_eq!(one(image, "m"), "application/x-tar");
        assert_eq!(one(image, "x"), archive.sha256_hex());
        assert_eq!(one(image, "variant"), "notes-1.2.0.tar");
        assert!(values(image, "url").is_empty(), "nothing hosts an image archive on Nostr");
        assert!(values(image, "e").is_empty(), "only the envelope is what the archy release names");
        let order: Vec<&str> = mirror.in_order().map(|(what, _)| what).collect();
        assert_eq!(order, ["asset", "asset", "release", "application"]);
    }

    #[test]
    fn the_application_carries_the_manifest_metadata_and_the_page_only_when_given() {
        let f = fixture(&[Location::Url(URL.into())]);
        let m = f.manifest.manifest();
        let with_page =
            Mirror::new(&f.manifest, &f.archy).page("http://127.0.0.1:8480/apps/notes").sign(&f.nostr).unwrap();
        let app = &with_page.application;
        assert_eq!(app.kind.as_u16(), 32267);
        assert_eq!(one(app, "d"), "notes");
        assert_eq!(one(app, "name"), m.title);
        assert_eq!(one(app, "summary"), m.summary);
        assert_eq!(one(app, "license"), m.license);
        assert_eq!(one(app, "repository"), m.source);
        assert_eq!(values(app, "t"), m.categories.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(one(app, "url"), "http://127.0.0.1:8480/apps/notes");
        assert_eq!(one(app, "a"), format!("30078:{}:archy:app:notes", f.nostr.public_key().to_hex()));
        assert_eq!(app.content, m.description.trim_end());
        assert!(values(app, "icon").is_empty(), "an icon file in the app folder has no URL");

        let without = Mirror::new(&f.manifest, &f.archy).sign(&f.nostr).unwrap();
        assert!(values(&without.application, "url").is_empty());
    }

    #[test]
    fn an_icon_url_is_given_as_the_icon() {
        let (did, nostr) = (SigningKey::generate(), Keys::generate());
        let mut manifest = TestApp::new("notes").manifest(&did);
        manifest.icon = Some(Icon::Url("https://example.org/notes.png".into()));
        let manifest = catalog::testing::verified(&manifest, &did);
        let archy = event::release_event(&manifest, &[Location::Url(URL.into())], &did, &nostr).unwrap();
        let mirror = Mirror::new(&manifest, &archy).sign(&nostr).unwrap();
        assert_eq!(one(&mirror.application, "icon"), "https://example.org/notes.png");
    }

    #[test]
    fn an_event_that_is_not_this_envelopes_release_is_refused() {
        let f = fixture(&[Location::Url(URL.into())]);
        let other = fixture(&[Location::Url(URL.into())]);
        let err = Mirror::new(&f.manifest, &other.archy).sign(&f.nostr).unwrap_err();
        assert!(matches!(err, MirrorError::NotTheRelease { .. }), "{err}");
        let binding = event::binding_event(&SigningKey::generate(), &f.nostr).unwrap();
        let err = Mirror::new(&f.manifest, &binding).sign(&f.nostr).unwrap_err();
        assert!(
            matches!(err, MirrorError::NotTheRelease { ref reason, .. } if reason == "not a release event"),
            "{err}"
        );
    }

    #[test]
    fn a_release_with_only_an_iroh_ticket_gives_an_asset_without_url() {
        let f = fixture(&[Location::Iroh("blobabc".into())]);
        let mirror = Mirror::new(&f.manifest, &f.archy).sign(&f.nostr).unwrap();
        assert!(values(&mirror.assets[0], "url").is_empty());
        // Without a relay hint the pointers have no third value.
        let e: Vec<&[String]> = mirror.release.tags.iter().map(Tag::as_slice).filter(|t| t[0] == "e").collect();
        assert!(e.iter().all(|t| t.len() == 2), "{e:?}");
    }

    #[test]
    fn the_deletion_request_names_the_release_and_its_assets() {
        let f = fixture(&[Location::Url(URL.into())]);
        let mirror = Mirror::new(&f.manifest, &f.archy).sign(&f.nostr).unwrap();
        let deletion = deletion_request(&mirror.release, "revoked", &f.nostr).unwrap();
        assert_eq!(deletion.kind, Kind::EventDeletion);
        let mut expected = vec![mirror.release.id.to_hex()];
        expected.extend(mirror.assets.iter().map(|a| a.id.to_hex()));
        assert_eq!(values(&deletion, "e"), expected);
        assert_eq!(one(&deletion, "a"), format!("30063:{}:notes@1.2.0", f.nostr.public_key().to_hex()));
        assert_eq!(values(&deletion, "k"), ["30063", "3063"]);
    }

    #[test]
    fn the_filters_match_the_events() {
        use nostr_sdk::filter::MatchEventOptions;
        let f = fixture(&[Location::Url(URL.into())]);
        let mirror = Mirror::new(&f.manifest, &f.archy).sign(&f.nostr).unwrap();
        let author = f.nostr.public_key();
        let v = semver::Version::new(1, 2, 0);
        assert!(release_filter(&author, "notes", &v).match_event(&mirror.release, MatchEventOptions::new()));
        assert!(
            !release_filter(&author, "notes", &semver::Version::new(1, 2, 1))
                .match_event(&mirror.release, MatchEventOptions::new())
        );
        assert!(application_filter(&author, "notes").match_event(&mirror.application, MatchEventOptions::new()));
    }
}
