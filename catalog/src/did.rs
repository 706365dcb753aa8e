//! Publisher identities as `did:key` over Ed25519.
//!
//! A publisher is the Ed25519 key behind a `did:key` DID (W3C did:key method, draft 0.7):
//! the method-specific id is multibase base58-btc (`z` prefix) of the multicodec
//! `ed25519-pub` varint (`0xed 0x01`) followed by the 32-byte public key. The same key is the
//! publisher's TUF delegation key, so the DID and the TUF key id name one key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Multicodec prefix of an Ed25519 public key (`ed25519-pub`, 0xed as an unsigned varint).
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
const PREFIX: &str = "did:key:z";

/// Why a string is not an Ed25519 `did:key`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DidError {
    /// The string does not start with `did:key:z` (base58-btc multibase).
    #[error("`{0}` is not a did:key with base58-btc multibase (expected `did:key:z…`)")]
    NotDidKey(String),
    /// The multibase part is not valid base58.
    #[error("`{0}` has an invalid base58-btc key part")]
    BadBase58(String),
    /// The decoded key is not a 32-byte Ed25519 key with the `ed25519-pub` multicodec.
    #[error("`{0}` is not an Ed25519 did:key (multicodec 0xed01 with a 32-byte key)")]
    NotEd25519(String),
    /// The 32 bytes are not a valid Ed25519 point.
    #[error("`{0}` does not hold a valid Ed25519 public key")]
    InvalidKey(String),
}

/// A validated Ed25519 `did:key` identity.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DidKey {
    public: [u8; 32],
}

impl DidKey {
    /// The DID of an Ed25519 public key.
    pub fn from_public_key(public: &ed25519_dalek::VerifyingKey) -> Self {
        Self { public: public.to_bytes() }
    }

    /// The 32 bytes of the Ed25519 public key this DID names.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.public
    }

    /// The Ed25519 verifying key this DID names.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        // The bytes were checked to be a valid point when the DID was parsed or built.
        decompress(&self.public).unwrap_or_else(|| unreachable!("DidKey holds a validated point"))
    }
}

impl fmt::Display for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(34);
        raw.extend_from_slice(&ED25519_MULTICODEC);
        raw.extend_from_slice(&self.public);
        write!(f, "{PREFIX}{}", base58_encode(&raw))
    }
}

impl fmt::Debug for DidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DidKey({self})")
    }
}

impl FromStr for DidKey {
    type Err = DidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(PREFIX).ok_or_else(|| DidError::NotDidKey(s.to_owned()))?;
        // did:key allows a fragment naming the same key (`did:key:z…#z…`); accept the DID only.
        if rest.contains(['#', '?', '/']) {
            return Err(DidError::NotDidKey(s.to_owned()));
        }
        let raw = base58_decode(rest).ok_or_else(|| DidError::BadBase58(s.to_owned()))?;
        if raw.len() != 34 || raw[..2] != ED25519_MULTICODEC {
            return Err(DidError::NotEd25519(s.to_owned()));
        }
        let mut public = [0u8; 32];
        public.copy_from_slice(&raw[2..]);
        decompress(&public).ok_or_else(|| DidError::InvalidKey(s.to_owned()))?;
        Ok(Self { public })
    }
}

impl Serialize for DidKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DidKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Decodes an Ed25519 public key, remembering recent results.
///
/// Point decompression (a field square root) costs about as much as a third of a signature
/// verification, and a catalog names the same few publishers thousands of times. The memo holds
/// only public keys, is bounded, and a hit returns exactly what decoding the bytes would.
fn decompress(public: &[u8; 32]) -> Option<ed25519_dalek::VerifyingKey> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    const MAX_ENTRIES: usize = 4096;
    static MEMO: OnceLock<Mutex<HashMap<[u8; 32], ed25519_dalek::VerifyingKey>>> = OnceLock::new();
    let memo = MEMO.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(map) = memo.lock()
        && let Some(key) = map.get(public)
    {
        return Some(*key);
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(public).ok()?;
    if let Ok(mut map) = memo.lock() {
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(*public, key);
    }
    Some(key)
}

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn base58_encode(input: &[u8]) -> String {
    let zeros = input.iter().take_while(|&&b| b == 0).count();
    // Base-58 digits, least significant first.
    let mut digits: Vec<u8> = Vec::with_capacity(input.len() * 138 / 100 + 1);
    for &byte in &input[zeros..] {
        let mut carry = u32::from(byte);
        for d in &mut digits {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|&d| ALPHABET[d as usize] as char));
    out
}

fn base58_decode(input: &str) -> Option<Vec<u8>> {
    let zeros = input.bytes().take_while(|&b| b == b'1').count();
    let mut bytes: Vec<u8> = Vec::with_capacity(input.len());
    for c in input.bytes().skip(zeros) {
        let mut carry = ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in &mut bytes {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vector from the did:key specification (Ed25519 section).
    const SPEC_DID: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";

    #[test]
    fn spec_vector_round_trips() {
        let did: DidKey = SPEC_DID.parse().expect("spec vector parses");
        assert_eq!(did.to_string(), SPEC_DID);
    }

    #[test]
    fn rejects_other_methods_and_codecs() {
        assert!(matches!("did:web:example.com".parse::<DidKey>(), Err(DidError::NotDidKey(_))));
        // A secp256k1 did:key (multicodec 0xe7) is not an Ed25519 identity.
        let secp = "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme";
        assert!(matches!(secp.parse::<DidKey>(), Err(DidError::NotEd25519(_))));
        assert!(matches!("did:key:z0OIl".parse::<DidKey>(), Err(DidError::BadBase58(_))));
    }

    #[test]
    fn base58_round_trips_leading_zeros() {
        let raw = [0u8, 0, 1, 2, 255];
        assert_eq!(base58_decode(&base58_encode(&raw)).as_deref(), Some(&raw[..]));
    }
}
