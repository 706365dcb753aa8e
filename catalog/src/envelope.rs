//! The signed manifest envelope: a manifest that verifies on its own wherever it travels.
//!
//! File format (compact JSON, fields in a fixed order, so the file is deterministic):
//!
//! ```json
//! {"archy_envelope":1,"manifest":{…},"signature":{"did":"did:key:z…","keyid":"<TUF key id>","sig":"<hex>"}}
//! ```
//!
//! The publisher signs, with Ed25519, the 18-byte domain-separation prefix `archy-manifest-v1\n`
//! followed by the 32-byte BLAKE3 hash of the manifest's canonical JSON bytes. The prefix keeps an
//! envelope signature from ever being valid as a TUF metadata signature or a minisign signature
//! made with the same key. The signing DID must be the manifest's own `publisher`, so a manifest
//! can't be re-signed by someone else and keep its claimed publisher.
//!
//! The same envelope is the TUF target file in the origin's catalog and the file that Nostr
//! announcements point to by hash.

use serde_json::Value;

use crate::canonical;
use crate::did::DidKey;
use crate::keys::SigningKey;
use crate::manifest::{Limits, Manifest, ManifestErrors};

/// Domain-separation prefix of the envelope signature.
pub const SIGNING_PREFIX: &[u8] = b"archy-manifest-v1\n";

/// Largest envelope file accepted before parsing (a manifest is at most a few KiB; this bound
/// keeps hostile input from costing memory).
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The file is larger than the limit.
    #[error("envelope is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not an archy envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// The signature is not by the manifest's publisher.
    #[error("envelope is signed by {signer} but the manifest's publisher is {publisher}")]
    WrongSigner {
        /// DID in the signature.
        signer: String,
        /// DID in the manifest.
        publisher: String,
    },
    /// The Ed25519 signature does not verify.
    #[error("envelope signature by {0} does not verify over the manifest hash")]
    BadSignature(String),
    /// The envelope sits at a target path other than `apps/<id>/<version>.json` for its own
    /// manifest's id and version.
    #[error("catalog entry `{path}` (role `{role}`) holds {found}: the path for this manifest is `{expected}`")]
    WrongPath {
        /// The target path.
        path: String,
        /// The role that lists it.
        role: String,
        /// What the envelope holds (`<id> <version> by <did>`).
        found: String,
        /// The path this manifest belongs at.
        expected: String,
    },
    /// The role that lists the envelope is not delegated to the manifest's publisher key.
    #[error(
        "catalog entry `{path}` (role `{role}`) holds {found}: the listing role is not signed by the manifest's publisher key"
    )]
    WrongRoleKey {
        /// The target path.
        path: String,
        /// The role that lists it.
        role: String,
        /// What the envelope holds (`<id> <version> by <did>`).
        found: String,
    },
    /// The manifest itself is invalid.
    #[error("manifest in envelope is invalid:\n{0}")]
    InvalidManifest(#[from] ManifestErrors),
}

/// A parsed envelope whose signature has not been checked.
#[derive(Clone, Debug)]
pub struct SignedEnvelope {
    manifest: Value,
    did: String,
    keyid: String,
    sig: String,
}

/// The file name of a signed envelope, `<id>-<version>.archy.json`: what `archy app sign` and
/// `archy publish` write, and what `archy-node install --from DIR` reads.
pub fn file_name(id: &crate::manifest::AppId, version: &semver::Version) -> String {
    format!("{id}-{version}.archy.json")
}

/// The message the publisher signs: prefix ‖ BLAKE3(canonical manifest bytes).
pub fn signing_message(manifest_hash: &blake3::Hash) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_PREFIX.len() + 32);
    msg.extend_from_slice(SIGNING_PREFIX);
    msg.extend_from_slice(manifest_hash.as_bytes());
    msg
}

impl SignedEnvelope {
    /// Signs a manifest with the publisher's key. The key must be the manifest's publisher.
    pub fn sign(manifest: &Manifest, key: &SigningKey) -> Result<Self, EnvelopeError> {
        if manifest.publisher != key.did() {
            return Err(EnvelopeError::WrongSigner {
                signer: key.did().to_string(),
                publisher: manifest.publisher.to_string(),
            });
        }
        let value = manifest.to_json_value();
        let bytes = canonical::to_canonical(&value).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let sig = key.sign(&signing_message(&blake3::hash(&bytes)));
        Ok(Self { manifest: value, did: key.did().to_string(), keyid: key.key_id(), sig: hex::encode(sig) })
    }

    /// Parses envelope bytes (structure only).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let limit = MAX_ENVELOPE_BYTES;
        if bytes.len() > limit {
            return Err(EnvelopeError::TooLarge { size: bytes.len(), limit });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let bad = |what: &str| EnvelopeError::Malformed(what.to_owned());
        let Value::Object(mut top) = value else { return Err(bad("not a JSON object")) };
        if top.get("archy_envelope").and_then(Value::as_u64) != Some(1) {
            return Err(bad("`archy_envelope` is not 1"));
        }
        let manifest = top.remove("manifest").filter(Value::is_object).ok_or_else(|| bad("no `manifest` object"))?;
        let sig = top.get("signature").ok_or_else(|| bad("no `signature` object"))?;
        let field = |name: &str| {
            sig.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("signature has no `{name}`")))
        };
        Ok(Self { did: field("did")?, keyid: field("keyid")?, sig: field("sig")?, manifest })
    }

    /// The envelope file bytes: compact JSON with fields in a fixed order. (Not canonical JSON:
    /// OLPC canonical form writes control characters raw, which JSON parsers refuse; the
    /// canonical form is used only for the bytes that are hashed and signed.)
    pub fn to_bytes(&self) -> Vec<u8> {
        let doc = serde_json::json!({
            "archy_envelope": 1,
            "manifest": self.manifest,
            "signature": {"did": self.did, "keyid": self.keyid, "sig": self.sig},
        });
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// The DID the signature claims (not yet verified).
    pub fn claimed_did(&self) -> &str {
        &self.did
    }

    /// Verifies the signature and validates the manifest.
    pub fn verify(self, limits: &Limits) -> Result<VerifiedManifest, EnvelopeError> {
        let prepared = self.prepare()?;
        prepared
            .did
            .verifying_key()
            .verify_strict(&prepared.message, &prepared.signature)
            .map_err(|_| EnvelopeError::BadSignature(prepared.did.to_string()))?;
        prepared.finish(limits)
    }

    /// Verifies many envelopes, checking their signatures as Ed25519 batches (several times
    /// faster per signature than one by one). A batch that fails is re-checked one signature at
    /// a time, so each envelope gets its own result and a bad one names itself.
    pub fn verify_many(
        envelopes: Vec<SignedEnvelope>,
        limits: &Limits,
    ) -> Vec<Result<VerifiedManifest, EnvelopeError>> {
        let prepared: Vec<Result<Prepared, EnvelopeError>> =
            envelopes.into_iter().map(SignedEnvelope::prepare).collect();
        let ready: Vec<&Prepared> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let messages: Vec<&[u8]> = ready.iter().map(|p| p.message.as_slice()).collect();
        let signatures: Vec<ed25519_dalek::Signature> = ready.iter().map(|p| p.signature).collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> = ready.iter().map(|p| p.did.verifying_key()).collect();
        let batch_ok = ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
        prepared
            .into_iter()
            .map(|p| {
                let p = p?;
                if !batch_ok {
                    p.did
                        .verifying_key()
                        .verify_strict(&p.message, &p.signature)
                        .map_err(|_| EnvelopeError::BadSignature(p.did.to_string()))?;
                }
                p.finish(limits)
            })
            .collect()
    }

    /// Everything up to the signature check: DID, canonical bytes, hash, signed message.
    fn prepare(self) -> Result<Prepared, EnvelopeError> {
        let did: DidKey =
            self.did.parse().map_err(|e: crate::did::DidError| EnvelopeError::Malformed(e.to_string()))?;
        let bytes = canonical::to_canonical(&self.manifest).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let hash = blake3::hash(&bytes);
        let sig: [u8; 64] = hex::decode(&self.sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| EnvelopeError::BadSignature(self.did.clone()))?;
        Ok(Prepared {
            did,
            claimed_did: self.did,
            keyid: self.keyid,
            sig_hex: self.sig,
            message: signing_message(&hash),
            signature: ed25519_dalek::Signature::from_bytes(&sig),
            hash,
            size: bytes.len(),
            manifest: self.manifest,
        })
    }
}

/// An envelope ready for its signature check.
struct Prepared {
    did: DidKey,
    claimed_did: String,
    keyid: String,
    sig_hex: String,
    message: Vec<u8>,
    signature: ed25519_dalek::Signature,
    hash: blake3::Hash,
    size: usize,
    manifest: Value,
}

impl Prepared {
    /// After the signature verified: validate the manifest and bind it to the signer.
    fn finish(self, limits: &Limits) -> Result<VerifiedManifest, EnvelopeError> {
        let manifest = Manifest::from_json_value_sized(&self.manifest, self.size, limits)?;
        if manifest.publisher != self.did {
            return Err(EnvelopeError::WrongSigner {
                signer: self.did.to_string(),
                publisher: manifest.publisher.to_string(),
            });
        }
        // The envelope's parts are moved, not copied: keeping them costs verification nothing.
        let envelope =
            SignedEnvelope { manifest: self.manifest, did: self.claimed_did, keyid: self.keyid, sig: self.sig_hex };
        Ok(VerifiedManifest { manifest, hash: self.hash, size: self.size as u64, envelope })
    }
}

/// A manifest whose publisher signature verified and whose content passed validation.
///
/// Only [`SignedEnvelope::verify`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedManifest {
    manifest: Manifest,
    hash: blake3::Hash,
    size: u64,
    envelope: SignedEnvelope,
}

impl VerifiedManifest {
    /// Checks that this manifest is what its catalog entry claims: the placement rule of
    /// [`check_placement`](Self::check_placement) for the entry's path, role and the keys that
    /// role's metadata was verified with.
    pub fn check_catalog_entry(&self, target: &crate::client::VerifiedTarget) -> Result<(), EnvelopeError> {
        self.check_placement(target.path(), target.role(), target.role_keyids())
    }

    /// The placement rule of an envelope in the catalog: it may sit only at
    /// `apps/<id>/<version>.json` for this manifest's id and version
    /// ([`envelope_target_path`](crate::repo::envelope_target_path)), in the targets of a role
    /// delegated to this manifest's publisher key (a publisher's delegation is its did:key;
    /// `role_keyids` are that delegation's key ids). Without it a publisher delegated `apps/a/*`
    /// could place app `b` at `apps/a/…`. Nodes check it for every entry they sync
    /// ([`check_catalog_entry`](Self::check_catalog_entry)); the origin checks it before it
    /// accepts a submission.
    pub fn check_placement(
        &self,
        path: &str,
        role: &str,
        role_keyids: &[crate::keys::KeyId],
    ) -> Result<(), EnvelopeError> {
        let m = &self.manifest;
        let found = || format!("{} {} by {}", m.id, m.version, m.publisher);
        let expected = crate::repo::envelope_target_path(m.id.as_str(), &m.version);
        if path != expected {
            return Err(EnvelopeError::WrongPath {
                path: path.to_owned(),
                role: role.to_owned(),
                found: found(),
                expected,
            });
        }
        let keyid = crate::keys::PublicKey::ed25519(&m.publisher.verifying_key()).key_id();
        if !role_keyids.contains(&keyid) {
            return Err(EnvelopeError::WrongRoleKey { path: path.to_owned(), role: role.to_owned(), found: found() });
        }
        Ok(())
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// BLAKE3 of the manifest's canonical bytes (what the publisher signed, and what Nostr
    /// announcements name).
    pub fn manifest_hash(&self) -> blake3::Hash {
        self.hash
    }
    /// Length of the manifest's canonical bytes.
    pub fn manifest_size(&self) -> u64 {
        self.size
    }
    /// The publisher.
    pub fn publisher(&self) -> &DidKey {
        &self.manifest.publisher
    }
    /// The signed envelope this manifest was verified from, byte for byte what the publisher
    /// signed. A node stores it ([`SignedEnvelope::to_bytes`]) so that what it installed can be
    /// verified again later, without trusting its own files.
    pub fn envelope(&self) -> &SignedEnvelope {
        &self.envelope
    }
}
