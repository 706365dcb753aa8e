//! File lengths and hashes as TUF metadata records them (TUF 1.0 spec §4.4 `METAFILES`, §4.5
//! `TARGETS`): a file is accepted only if its length is exactly the signed length and every listed
//! hash matches.
//!
//! Understood algorithms: `sha256`, `sha512` and `blake3`. An algorithm this client does not know
//! fails the check rather than being skipped (the same rule python-tuf applies), so a hash list can
//! never be satisfied by ignoring its only strong entry.

use serde_json::{Map, Value};
use sha2::Digest as _;

/// Why bytes do not match their signed description.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashError {
    /// The length differs from the signed length.
    #[error("length is {actual} bytes but the signed length is {expected}")]
    LengthMismatch {
        /// Signed length.
        expected: u64,
        /// Observed length.
        actual: u64,
    },
    /// A hash differs from the signed hash.
    #[error("{algorithm} hash is {actual} but the signed hash is {expected}")]
    HashMismatch {
        /// Algorithm name.
        algorithm: String,
        /// Signed hex digest.
        expected: String,
        /// Observed hex digest.
        actual: String,
    },
    /// The algorithm is not one archy computes.
    #[error("unsupported hash algorithm `{0}` (understood: sha256, sha512, blake3)")]
    UnsupportedAlgorithm(String),
    /// A hash value is not a string.
    #[error("hash for `{0}` is not a hex string")]
    NotAString(String),
}

/// Hex digest of `data` under `algorithm`, if archy understands the algorithm.
pub fn digest_hex(algorithm: &str, data: &[u8]) -> Option<String> {
    Some(match algorithm {
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        "blake3" => blake3::hash(data).to_hex().to_string(),
        _ => return None,
    })
}

/// Checks every entry of a TUF `hashes` object against `data`.
pub fn verify_hashes(hashes: &Map<String, Value>, data: &[u8]) -> Result<(), HashError> {
    for (algorithm, expected) in hashes {
        let expected = expected.as_str().ok_or_else(|| HashError::NotAString(algorithm.clone()))?;
        let actual = digest_hex(algorithm, data).ok_or_else(|| HashError::UnsupportedAlgorithm(algorithm.clone()))?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(HashError::HashMismatch {
                algorithm: algorithm.clone(),
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    Ok(())
}

/// Checks the exact length.
pub fn verify_length(expected: u64, data: &[u8]) -> Result<(), HashError> {
    let actual = data.len() as u64;
    if actual != expected {
        return Err(HashError::LengthMismatch { expected, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn matching_hashes_pass_and_any_mismatch_fails() {
        let data = b"archy";
        let sha = digest_hex("sha256", data).expect("sha256");
        let b3 = digest_hex("blake3", data).expect("blake3");
        assert!(verify_hashes(&map(json!({"sha256": sha, "blake3": b3})), data).is_ok());
        let bad = map(json!({"sha256": sha, "blake3": "00"}));
        assert!(matches!(verify_hashes(&bad, data), Err(HashError::HashMismatch { .. })));
    }

    #[test]
    fn unknown_algorithm_fails() {
        let hashes = map(json!({"md5": "00"}));
        assert_eq!(verify_hashes(&hashes, b"x"), Err(HashError::UnsupportedAlgorithm("md5".into())));
    }
}
