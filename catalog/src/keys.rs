//! TUF public keys, signature verification for every scheme the TUF ecosystem uses, and archy's
//! Ed25519 signing key.
//!
//! Key objects follow TUF 1.0 spec §4.2 ("KEYS"): `{"keytype", "scheme", "keyval": {"public"}}`.
//! A key id is the hex SHA-256 of the key object's canonical JSON (§4.2 "KEYID"). archy signs
//! with `ed25519` only; it verifies `ed25519`, `ecdsa-sha2-nistp256`, `rsassa-pss-sha256` and
//! `rsa-pkcs1v15-sha256`, so it reads repositories written by other TUF tooling.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::canonical;
use crate::did::DidKey;

/// A TUF key id: lowercase hex SHA-256 of the key's canonical JSON (TUF 1.0 §4.2).
pub type KeyId = String;

/// Why a key object or a signature could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key's `keytype`/`scheme` pair is not one archy verifies.
    #[error("unsupported key scheme `{scheme}` for key type `{keytype}`")]
    UnsupportedScheme {
        /// The key's `keytype`.
        keytype: String,
        /// The key's `scheme`.
        scheme: String,
    },
    /// `keyval.public` does not decode to a key of the declared type.
    #[error("key type `{keytype}`: `keyval.public` is not a valid public key ({reason})")]
    BadPublicKey {
        /// The key's `keytype`.
        keytype: String,
        /// What was wrong.
        reason: String,
    },
    /// The signature bytes are not hex.
    #[error("signature is not lowercase hex")]
    BadSignatureEncoding,
    /// The signature does not verify over the message with this key.
    #[error("signature does not verify")]
    BadSignature,
}

/// A TUF public key as it appears in root or delegating targets metadata.
///
/// Unknown fields (`x-…` extensions written by other tools) are kept so that the key object
/// serializes back to exactly what was signed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// The key type: `ed25519`, `ecdsa`, `ecdsa-sha2-nistp256` or `rsa`.
    pub keytype: String,
    /// The signature scheme.
    pub scheme: String,
    /// The key value; `public` holds the key (hex for ed25519, PEM for ecdsa and rsa).
    pub keyval: KeyVal,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// The `keyval` object of a key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    /// The public key material.
    pub public: String,
    /// Fields this version of archy does not know, kept verbatim.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}/{})", self.keytype, self.scheme)
    }
}

impl PublicKey {
    /// The TUF key object of an Ed25519 public key.
    pub fn ed25519(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal { public: hex::encode(key.to_bytes()), unknown: Map::new() },
            unknown: Map::new(),
        }
    }

    /// The key id: hex SHA-256 over the canonical JSON of the key object (TUF 1.0 §4.2).
    pub fn key_id(&self) -> KeyId {
        let bytes = canonical::to_canonical_serialize(self).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(&bytes))
    }

    /// The Ed25519 key, if this is one.
    pub fn as_ed25519(&self) -> Option<ed25519_dalek::VerifyingKey> {
        if self.keytype != "ed25519" || self.scheme != "ed25519" {
            return None;
        }
        let raw: [u8; 32] = hex::decode(&self.keyval.public).ok()?.try_into().ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw).ok()
    }

    /// Prepares the key for verifying signatures, checking the key material once.
    pub fn verifier(&self) -> Result<Verifier, KeyError> {
        let bad = |reason: String| KeyError::BadPublicKey { keytype: self.keytype.clone(), reason };
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => {
                let raw: [u8; 32] = hex::decode(&self.keyval.public)
                    .map_err(|e| bad(e.to_string()))?
                    .try_into()
                    .map_err(|_| bad("expected 32 bytes".into()))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|e| bad(e.to_string()))?;
                Ok(Verifier::Ed25519(key))
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                use p256::pkcs8::DecodePublicKey as _;
                let key = p256::ecdsa::VerifyingKey::from_public_key_pem(&self.keyval.public)
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Verifier::EcdsaP256(key))
            }
            ("rsa", "rsassa-pss-sha256" | "rsa-pkcs1v15-sha256") => {
                use rsa::pkcs8::DecodePublicKey as _;
                let key =
                    rsa::RsaPublicKey::from_public_key_pem(&self.keyval.public).map_err(|e| bad(e.to_string()))?;
                if self.scheme == "rsassa-pss-sha256" { Ok(Verifier::RsaPss(key)) } else { Ok(Verifier::RsaPkcs1(key)) }
            }
            _ => Err(KeyError::UnsupportedScheme { keytype: self.keytype.clone(), scheme: self.scheme.clone() }),
        }
    }
}

/// A public key ready to verify signatures.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Verifier {
    /// `ed25519`: RFC 8032 Ed25519 over the message.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// `ecdsa-sha2-nistp256`: ECDSA P-256 over SHA-256 of the message, DER or raw `r‖s`.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// `rsassa-pss-sha256`: RSASSA-PSS, MGF1-SHA-256, any salt length.
    RsaPss(rsa::RsaPublicKey),
    /// `rsa-pkcs1v15-sha256`: RSASSA-PKCS1-v1_5 over SHA-256.
    RsaPkcs1(rsa::RsaPublicKey),
}

impl Verifier {
    /// Verifies a hex-encoded signature over `message`.
    pub fn verify_hex(&self, message: &[u8], sig_hex: &str) -> Result<(), KeyError> {
        let sig = hex::decode(sig_hex).map_err(|_| KeyError::BadSignatureEncoding)?;
        self.verify(message, &sig)
    }

    /// Verifies raw signature bytes over `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        match self {
            Verifier::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
                key.verify_strict(message, &sig).map_err(|_| KeyError::BadSignature)
            }
            Verifier::EcdsaP256(key) => {
                use p256::ecdsa::signature::Verifier as _;
                let sig = p256::ecdsa::Signature::from_der(sig)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(sig))
                    .map_err(|_| KeyError::BadSignature)?;
                key.verify(message, &sig).map_err(|_| KeyError::BadSignature)
            }
            Verifier::RsaPss(key) => {
                let digest = sha2::Sha256::digest(message);
                // Salt length is not fixed by the scheme name: securesystemslib signs with the
                // digest length and verifies with PSS.AUTO, other signers use the maximum.
                use rsa::traits::PublicKeyParts as _;
                let em_len = (key.n().bits() - 1).div_ceil(8);
                let max_salt = em_len.saturating_sub(32 + 2);
                [32, max_salt, 0]
                    .into_iter()
                    .any(|salt| key.verify(rsa::Pss::new_with_salt::<sha2::Sha256>(salt), &digest, sig).is_ok())
                    .then_some(())
                    .ok_or(KeyError::BadSignature)
            }
            Verifier::RsaPkcs1(key) => {
                let digest = sha2::Sha256::digest(message);
                key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, sig).map_err(|_| KeyError::BadSignature)
            }
        }
    }
}

/// archy's signing key: Ed25519. The same key is a publisher's `did:key`, its TUF delegation key
/// and its minisign key.
///
/// The secret never appears in `Debug` output or logs.
#[derive(Clone)]
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.did())
    }
}

impl SigningKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        // The OS CSPRNG failing is not recoverable: no key can be made safely without it.
        getrandom::fill(&mut seed).unwrap_or_else(|e| panic!("operating system CSPRNG unavailable: {e}"));
        Self::from_seed(seed)
    }

    /// The key with this 32-byte Ed25519 seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { inner: ed25519_dalek::SigningKey::from_bytes(&seed) }
    }

    /// The 32-byte seed. Handle with care: this is the secret.
    pub fn seed(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.inner.verifying_key()
    }

    /// The publisher identity of this key.
    pub fn did(&self) -> DidKey {
        DidKey::from_public_key(&self.verifying_key())
    }

    /// The TUF key object of the public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::ed25519(&self.verifying_key())
    }

    /// The TUF key id of the public half.
    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    /// Signs `message` (Ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.inner.sign(message).to_bytes()
    }

    /// The underlying dalek key, for the minisign writer.
    pub(crate) fn dalek(&self) -> &ed25519_dalek::SigningKey {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_sign_verify_and_key_id_is_stable() {
        let key = SigningKey::from_seed([7; 32]);
        let public = key.public_key();
        assert_eq!(public.key_id(), public.clone().key_id());
        assert_eq!(public.key_id().len(), 64);
        let sig = key.sign(b"hello");
        let verifier = public.verifier().expect("ed25519 key");
        assert!(verifier.verify(b"hello", &sig).is_ok());
        assert_eq!(verifier.verify(b"hellp", &sig), Err(KeyError::BadSignature));
    }

    #[test]
    fn unknown_scheme_is_named() {
        let mut public = SigningKey::from_seed([1; 32]).public_key();
        public.scheme = "ed448".into();
        assert_eq!(
            public.verifier().err(),
            Some(KeyError::UnsupportedScheme { keytype: "ed25519".into(), scheme: "ed448".into() })
        );
    }
}
