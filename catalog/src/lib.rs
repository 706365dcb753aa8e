//! archy's trust core: app manifests, the TUF catalog, canonical encoding, signing and verification.
//!
//! This crate is pure. It opens no sockets, runs no async runtime and never reads the clock inside a
//! verification: the time and every byte to check are parameters, so every rule is unit-testable.
//! Filesystem access is limited to the explicit on-disk helpers ([`keyfile`], [`repo::write_dir`]).
//!
//! The flow everywhere is *parse, then verify, then use*: unverified `Signed*` values become
//! `Verified*` values only through a `verify` function; `Verified*` types have private fields and no
//! other constructor, so code that holds one knows every check ran.
//!
//! Tests, here and in the crates built on this one, make their keys, manifests and envelopes with
//! `catalog::testing`, compiled with the `testing` feature (`[dev-dependencies]` enable it).
//!
//! ```
//! use catalog::envelope::SignedEnvelope;
//! use catalog::keys::SigningKey;
//! use catalog::manifest::{Limits, Manifest};
//!
//! let key = SigningKey::generate();
//! let toml = catalog::manifest::example_toml("hello-web", &key.did());
//! let manifest = Manifest::from_toml_str(&toml, &Limits::default()).expect("valid manifest");
//! let envelope = SignedEnvelope::sign(&manifest, &key).expect("signs");
//! let bytes = envelope.to_bytes();
//! let verified = SignedEnvelope::from_slice(&bytes)
//!     .and_then(|e| e.verify(&Limits::default()))
//!     .expect("verifies");
//! assert_eq!(verified.manifest().id.as_str(), "hello-web");
//! ```

pub mod canonical;
pub mod client;
pub mod did;
pub mod envelope;
pub mod hash;
pub mod keyfile;
pub mod keylife;
pub mod keys;
pub mod manifest;
pub mod metadata;
pub mod minisign;
pub mod pattern;
pub mod repo;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tlog;
pub mod trust;

pub use did::DidKey;
