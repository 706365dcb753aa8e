//! minisign signatures made with archy's Ed25519 key, so anyone can check a release with the stock
//! `minisign` tool.
//!
//! The formats are minisign's own, as documented at <https://jedisct1.github.io/minisign/>
//! ("Public key format" and "Signature format"):
//!
//! ```text
//! public key file:  untrusted comment: <text>
//!                   base64(<signature_algorithm> <key_id> <public_key>)
//!
//! signature file:   untrusted comment: <text>
//!                   base64(<signature_algorithm> <key_id> <signature>)
//!                   trusted comment: <trusted_comment>
//!                   base64(<global_signature>)
//! ```
//!
//! - `signature_algorithm` is `Ed` in a public key. In a signature archy writes `ED`, minisign's
//!   default *prehashed* mode: `signature` is Ed25519 over BLAKE2b-512 of the data, so large files
//!   can be checked as a stream. Legacy `Ed` signatures (Ed25519 over the raw data) are refused.
//! - `key_id` is 8 bytes, stored as minisign stores them; minisign displays them as the
//!   uppercase hex of that little-endian `u64`. minisign draws a random key id when it makes a
//!   key; archy derives it from the public key ([`key_id`]), so the same key always has the same
//!   minisign public key.
//! - `global_signature` is Ed25519 over `signature ‖ trusted_comment` (the comment's bytes without
//!   the `trusted comment: ` prefix or line end). It is what makes the trusted comment trusted.
//!   The untrusted comment is signed by nothing.
//!
//! ```
//! use catalog::keys::SigningKey;
//!
//! let key = SigningKey::generate();
//! let data = b"release bytes";
//! let minisig = catalog::minisign::sign(&key, data, "file:app.tar").expect("one-line comment");
//! let public = catalog::minisign::public_key_base64(&key);
//! let verified = catalog::minisign::verify(&public, &minisig, data).expect("verifies");
//! assert_eq!(verified.trusted_comment(), "file:app.tar");
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use blake2::Digest as _;
use ed25519_dalek::Signer as _;

use crate::keys::SigningKey;

/// The signature algorithm tag of a public key: Ed25519.
const PUBLIC_KEY_ALGORITHM: [u8; 2] = *b"Ed";
/// The signature algorithm tag of a prehashed signature: Ed25519 over BLAKE2b-512 of the data.
const PREHASHED_ALGORITHM: [u8; 2] = *b"ED";
/// The signature algorithm tag of a legacy signature: Ed25519 over the raw data.
const LEGACY_ALGORITHM: [u8; 2] = *b"Ed";
const UNTRUSTED_PREFIX: &str = "untrusted comment: ";
const TRUSTED_PREFIX: &str = "trusted comment: ";
/// The BLAKE3 `derive_key` context for [`key_id`].
const KEY_ID_CONTEXT: &str = "archy minisign key id v1";

/// The longest trusted comment, in bytes, that the minisign CLI reads back.
///
/// minisign reads the trusted comment line into a buffer of `TRUSTEDCOMMENTMAXBYTES` (8192) bytes
/// including the `trusted comment: ` prefix, the line end and the C string terminator, and its
/// signer refuses comments of `8192 - sizeof "trusted comment: "` (8174) bytes or more.
pub const TRUSTED_COMMENT_MAX_BYTES: usize = 8192 - TRUSTED_PREFIX.len() - 2;

/// Why a minisign signature could not be made or was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MinisignError {
    /// The trusted comment to sign is not a single line of text.
    #[error(
        "trusted comment must be one line of text: it contains {found:?} at byte {at} \
         (tabs are allowed, line breaks and other control characters are not)"
    )]
    TrustedCommentNotOneLine {
        /// The byte offset of the offending character.
        at: usize,
        /// The offending character.
        found: char,
    },
    /// The trusted comment to sign is longer than minisign can read back.
    #[error("trusted comment is {len} bytes; minisign reads at most {max}")]
    TrustedCommentTooLong {
        /// The comment's length in bytes.
        len: usize,
        /// [`TRUSTED_COMMENT_MAX_BYTES`].
        max: usize,
    },
    /// The public key line is not a minisign Ed25519 public key.
    #[error("bad minisign public key: {reason}")]
    BadPublicKey {
        /// What was wrong.
        reason: &'static str,
    },
    /// The `.minisig` text does not have minisign's signature file layout.
    #[error("malformed minisign signature file: {reason}")]
    MalformedSignature {
        /// What was wrong.
        reason: &'static str,
    },
    /// The signature uses minisign's legacy mode (Ed25519 over the raw data), which archy refuses.
    #[error(
        "legacy minisign signature (algorithm `Ed`, over the raw data) refused: \
         only prehashed `ED` signatures are accepted"
    )]
    LegacySignature,
    /// The signature names another key than the public key given.
    #[error("signed by another key: the signature has key id {found}, the public key has {expected}")]
    SignedByAnotherKey {
        /// The public key's key id, as minisign displays it.
        expected: String,
        /// The signature's key id, as minisign displays it.
        found: String,
    },
    /// The signature over the data does not verify: the data is not what was signed.
    #[error("minisign signature does not verify: the data is not what was signed with this key")]
    BadSignature,
    /// The global signature does not verify: the trusted comment is not the one that was signed.
    #[error(
        "minisign global signature does not verify: the trusted comment was altered \
         or not signed with this key"
    )]
    BadTrustedComment,
}

/// A minisign signature that verified over the data, with the trusted comment it authenticates.
///
/// Only [`verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedMinisign {
    trusted_comment: String,
}

impl VerifiedMinisign {
    /// The trusted comment, without the `trusted comment: ` prefix. The global signature covers
    /// it, so it is as authentic as the data.
    pub fn trusted_comment(&self) -> &str {
        &self.trusted_comment
    }
}

/// The minisign key id of an Ed25519 public key: the first 8 bytes of BLAKE3 `derive_key` with
/// the context `archy minisign key id v1` over the 32-byte public key.
///
/// The bytes are in the order minisign stores them; minisign displays them as the uppercase hex
/// of the little-endian `u64` they encode.
pub fn key_id(key: &ed25519_dalek::VerifyingKey) -> [u8; 8] {
    let derived = blake3::derive_key(KEY_ID_CONTEXT, key.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&derived[..8]);
    id
}

/// The key id as minisign displays it (`"%" PRIX64`): uppercase hex of the little-endian `u64`,
/// without leading zeros.
fn key_id_display(id: [u8; 8]) -> String {
    format!("{:X}", u64::from_le_bytes(id))
}

/// The minisign public key line of `key`: base64 of `Ed` ‖ key id ‖ 32-byte public key.
///
/// This is what `minisign -V -P <line>` accepts and what [`verify`] takes.
pub fn public_key_base64(key: &SigningKey) -> String {
    let public = key.verifying_key();
    let mut bin = Vec::with_capacity(42);
    bin.extend_from_slice(&PUBLIC_KEY_ALGORITHM);
    bin.extend_from_slice(&key_id(&public));
    bin.extend_from_slice(public.as_bytes());
    BASE64.encode(bin)
}

/// The contents of a minisign `.pub` file for `key`, as `minisign -G` writes it:
/// `untrusted comment: minisign public key <KEY ID>` and the [`public_key_base64`] line.
pub fn public_key_file(key: &SigningKey) -> String {
    let id = key_id_display(key_id(&key.verifying_key()));
    format!("{UNTRUSTED_PREFIX}minisign public key {id}\n{}\n", public_key_base64(key))
}

/// Checks that `comment` can be a trusted comment: one line, that minisign reads back intact.
fn check_trusted_comment(comment: &str) -> Result<(), MinisignError> {
    if let Some((at, found)) = comment.char_indices().find(|&(_, c)| c.is_control() && c != '\t') {
        return Err(MinisignError::TrustedCommentNotOneLine { at, found });
    }
    if comment.len() > TRUSTED_COMMENT_MAX_BYTES {
        return Err(MinisignError::TrustedCommentTooLong { len: comment.len(), max: TRUSTED_COMMENT_MAX_BYTES });
    }
    Ok(())
}

/// Signs `data` with `key` and returns the complete `.minisig` file text.
///
/// The signature is prehashed (`ED`): Ed25519 over BLAKE2b-512(`data`). The global signature is
/// Ed25519 over that signature ‖ `trusted_comment`. The output is minisign's four lines, each
/// ending in `\n`.
///
/// `trusted_comment` must be one line: tabs are allowed, line breaks and other control
/// characters are refused, and so is a comment longer than [`TRUSTED_COMMENT_MAX_BYTES`].
pub fn sign(key: &SigningKey, data: &[u8], trusted_comment: &str) -> Result<String, MinisignError> {
    check_trusted_comment(trusted_comment)?;
    let id = key_id(&key.verifying_key());
    let signer = key.dalek();
    let signature = signer.sign(&blake2::Blake2b512::digest(data)).to_bytes();

    let mut signature_bin = Vec::with_capacity(74);
    signature_bin.extend_from_slice(&PREHASHED_ALGORITHM);
    signature_bin.extend_from_slice(&id);
    signature_bin.extend_from_slice(&signature);

    let mut global_message = Vec::with_capacity(signature.len() + trusted_comment.len());
    global_message.extend_from_slice(&signature);
    global_message.extend_from_slice(trusted_comment.as_bytes());
    let global_signature = signer.sign(&global_message).to_bytes();

    Ok(format!(
        "{UNTRUSTED_PREFIX}signature from archy key {}\n{}\n{TRUSTED_PREFIX}{trusted_comment}\n{}\n",
        key_id_display(id),
        BASE64.encode(signature_bin),
        BASE64.encode(global_signature),
    ))
}

/// A public key line, parsed.
struct ParsedPublicKey {
    key_id: [u8; 8],
    key: ed25519_dalek::VerifyingKey,
}

fn parse_public_key(line: &str) -> Result<ParsedPublicKey, MinisignError> {
    let bad = |reason| MinisignError::BadPublicKey { reason };
    let bin = BASE64.decode(line.trim()).map_err(|_| bad("not base64"))?;
    let bin: [u8; 42] = bin.try_into().map_err(|_| bad("expected 42 bytes (algorithm, key id, key)"))?;
    if bin[..2] != PUBLIC_KEY_ALGORITHM {
        return Err(bad("algorithm is not `Ed`"));
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&bin[2..10]);
    let mut key = [0u8; 32];
    key.copy_from_slice(&bin[10..]);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
    Ok(ParsedPublicKey { key_id, key })
}

/// A signature file, parsed.
struct ParsedSignature<'a> {
    key_id: [u8; 8],
    signature: [u8; 64],
    trusted_comment: &'a str,
    global_signature: [u8; 64],
}

fn parse_signature(minisig: &str) -> Result<ParsedSignature<'_>, MinisignError> {
    let bad = |reason| MinisignError::MalformedSignature { reason };
    let mut lines = minisig.lines();
    let mut next = |missing| lines.next().ok_or(bad(missing));

    let untrusted = next("the untrusted comment line is missing")?;
    if !untrusted.starts_with(UNTRUSTED_PREFIX) {
        return Err(bad("the first line does not start with `untrusted comment: `"));
    }
    let signature_bin =
        BASE64.decode(next("the signature line is missing")?).map_err(|_| bad("the signature line is not base64"))?;
    let signature_bin: [u8; 74] = signature_bin
        .try_into()
        .map_err(|_| bad("the signature line is not 74 bytes (algorithm, key id, signature)"))?;
    let trusted_comment = next("the trusted comment line is missing")?
        .strip_prefix(TRUSTED_PREFIX)
        .ok_or(bad("the third line does not start with `trusted comment: `"))?;
    let global_signature = BASE64
        .decode(next("the global signature line is missing")?)
        .map_err(|_| bad("the global signature line is not base64"))?
        .try_into()
        .map_err(|_| bad("the global signature is not 64 bytes"))?;
    if lines.any(|line| !line.is_empty()) {
        return Err(bad("text after the global signature line"));
    }

    match [signature_bin[0], signature_bin[1]] {
        PREHASHED_ALGORITHM => {}
        LEGACY_ALGORITHM => return Err(MinisignError::LegacySignature),
        _ => return Err(bad("the signature algorithm is neither `ED` nor `Ed`")),
    }
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&signature_bin[2..10]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&signature_bin[10..]);
    Ok(ParsedSignature { key_id, signature, trusted_comment, global_signature })
}

/// Verifies the `.minisig` text `minisig` over `data` with the minisign public key line
/// `public_key_base64` (the second line of a `.pub` file; surrounding whitespace is ignored).
///
/// The steps, each its own error:
/// 1. the public key is base64 of `Ed` ‖ key id ‖ an Ed25519 key ([`MinisignError::BadPublicKey`]);
/// 2. the signature file has minisign's four lines ([`MinisignError::MalformedSignature`]) and a
///    prehashed `ED` signature ([`MinisignError::LegacySignature`]);
/// 3. its key id is the public key's ([`MinisignError::SignedByAnotherKey`]);
/// 4. the signature verifies over BLAKE2b-512(`data`) ([`MinisignError::BadSignature`]) and the
///    global signature over signature ‖ trusted comment ([`MinisignError::BadTrustedComment`]),
///    checked by the `minisign-verify` crate.
pub fn verify(public_key_base64: &str, minisig: &str, data: &[u8]) -> Result<VerifiedMinisign, MinisignError> {
    // Steps 1–3 parse strictly here so that each failure names its cause; step 4 is left to
    // minisign-verify, the reference verifier in Rust.
    let public = parse_public_key(public_key_base64)?;
    let parsed = parse_signature(minisig)?;
    if parsed.key_id != public.key_id {
        return Err(MinisignError::SignedByAnotherKey {
            expected: key_id_display(public.key_id),
            found: key_id_display(parsed.key_id),
        });
    }

    let malformed = |reason| MinisignError::MalformedSignature { reason };
    let reference_key = minisign_verify::PublicKey::from_base64(public_key_base64.trim())
        .map_err(|_| MinisignError::BadPublicKey { reason: "refused by minisign-verify" })?;
    let reference_signature =
        minisign_verify::Signature::decode(minisig).map_err(|_| malformed("refused by minisign-verify"))?;
    match reference_key.verify(data, &reference_signature, false) {
        Ok(()) => {}
        // minisign-verify reports both signatures failing the same way; name which one did.
        Err(minisign_verify::Error::InvalidSignature) => {
            return Err(if global_signature_verifies(&public.key, &parsed) {
                MinisignError::BadSignature
            } else {
                MinisignError::BadTrustedComment
            });
        }
        Err(minisign_verify::Error::UnexpectedKeyId) => {
            return Err(MinisignError::SignedByAnotherKey {
                expected: key_id_display(public.key_id),
                found: key_id_display(parsed.key_id),
            });
        }
        Err(minisign_verify::Error::UnexpectedAlgorithm | minisign_verify::Error::UnsupportedLegacyMode) => {
            return Err(MinisignError::LegacySignature);
        }
        Err(_) => return Err(malformed("refused by minisign-verify")),
    }
    Ok(VerifiedMinisign { trusted_comment: reference_signature.trusted_comment().to_owned() })
}

/// Whether the global signature covers the signature and the trusted comment of `parsed`.
fn global_signature_verifies(key: &ed25519_dalek::VerifyingKey, parsed: &ParsedSignature<'_>) -> bool {
    let mut message = Vec::with_capacity(parsed.signature.len() + parsed.trusted_comment.len());
    message.extend_from_slice(&parsed.signature);
    message.extend_from_slice(parsed.trusted_comment.as_bytes());
    let signature = ed25519_dalek::Signature::from_bytes(&parsed.global_signature);
    key.verify_strict(&message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &[u8] = b"hello-web 1.0.0 release tarball";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed([seed; 32])
    }

    /// Replaces line `index` (0-based) of a signature file.
    fn replace_line(minisig: &str, index: usize, line: &str) -> String {
        let mut lines: Vec<&str> = minisig.lines().collect();
        lines[index] = line;
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn round_trip_returns_the_trusted_comment() {
        let key = key(1);
        let comment = "timestamp:1700000000\tfile:hello-web.tar\thashed";
        let minisig = sign(&key, DATA, comment).expect("signs");
        let verified = verify(&public_key_base64(&key), &minisig, DATA).expect("verifies");
        assert_eq!(verified.trusted_comment(), comment);
    }

    #[test]
    fn signature_file_has_minisign_layout() {
        let key = key(1);
        let minisig = sign(&key, DATA, "c").expect("signs");
        let lines: Vec<&str> = minisig.split('\n').collect();
        assert_eq!(lines.len(), 5, "four lines and a trailing newline: {minisig:?}");
        assert!(lines[0].starts_with("untrusted comment: "));
        let sig = BASE64.decode(lines[1]).expect("base64");
        assert_eq!(sig.len(), 74);
        assert_eq!(&sig[..2], b"ED");
        assert_eq!(sig[2..10], key_id(&key.verifying_key()));
        assert_eq!(lines[2], "trusted comment: c");
        assert_eq!(BASE64.decode(lines[3]).expect("base64").len(), 64);
        assert_eq!(lines[4], "");
        // Ed25519 is deterministic: the same input gives the same file.
        assert_eq!(sign(&key, DATA, "c").expect("signs"), minisig);
    }

    #[test]
    fn public_key_is_stable_and_matches_the_file() {
        let key = key(2);
        let line = public_key_base64(&key);
        assert_eq!(line, public_key_base64(&SigningKey::from_seed(key.seed())));
        let bin = BASE64.decode(&line).expect("base64");
        assert_eq!(bin.len(), 42);
        assert_eq!(&bin[..2], b"Ed");
        assert_eq!(bin[10..], key.verifying_key().to_bytes());
        let id = format!("{:X}", u64::from_le_bytes(key_id(&key.verifying_key())));
        assert_eq!(public_key_file(&key), format!("untrusted comment: minisign public key {id}\n{line}\n"));
        assert_ne!(key_id(&key.verifying_key()), key_id(&self::key(3).verifying_key()));
    }

    #[test]
    fn tampered_data_is_refused() {
        let key = key(1);
        let minisig = sign(&key, DATA, "c").expect("signs");
        assert_eq!(
            verify(&public_key_base64(&key), &minisig, b"hello-web 1.0.1 release tarball"),
            Err(MinisignError::BadSignature)
        );
    }

    #[test]
    fn tampered_trusted_comment_is_refused_by_the_global_signature() {
        let key = key(1);
        let minisig = sign(&key, DATA, "file:hello-web.tar").expect("signs");
        let tampered = replace_line(&minisig, 2, "trusted comment: file:evil.tar");
        assert_eq!(verify(&public_key_base64(&key), &tampered, DATA), Err(MinisignError::BadTrustedComment));
    }

    #[test]
    fn untrusted_comment_is_not_signed() {
        let key = key(1);
        let minisig = sign(&key, DATA, "c").expect("signs");
        let edited = replace_line(&minisig, 0, "untrusted comment: anything at all");
        assert!(verify(&public_key_base64(&key), &edited, DATA).is_ok());
    }

    #[test]
    fn another_key_is_refused() {
        let (signer, other) = (key(1), key(2));
        let minisig = sign(&signer, DATA, "c").expect("signs");
        let err = verify(&public_key_base64(&other), &minisig, DATA).expect_err("wrong key");
        assert_eq!(
            err,
            MinisignError::SignedByAnotherKey {
                expected: key_id_display(key_id(&other.verifying_key())),
                found: key_id_display(key_id(&signer.verifying_key())),
            }
        );
        assert!(err.to_string().contains("signed by another key"), "{err}");
    }

    #[test]
    fn another_key_claiming_the_key_id_is_refused() {
        // A signature by `other` that carries the signer's key id still fails: ids are not trust.
        let (signer, other) = (key(1), key(2));
        let forged = sign(&other, DATA, "c").expect("signs");
        let mut bin = BASE64.decode(forged.lines().nth(1).expect("line")).expect("base64");
        bin[2..10].copy_from_slice(&key_id(&signer.verifying_key()));
        let forged = replace_line(&forged, 1, &BASE64.encode(bin));
        assert_eq!(verify(&public_key_base64(&signer), &forged, DATA), Err(MinisignError::BadTrustedComment));
    }

    #[test]
    fn legacy_signatures_are_refused() {
        let key = key(1);
        let minisig = sign(&key, DATA, "c").expect("signs");
        let mut bin = BASE64.decode(minisig.lines().nth(1).expect("line")).expect("base64");
        bin[..2].copy_from_slice(b"Ed");
        let legacy = replace_line(&minisig, 1, &BASE64.encode(bin));
        assert_eq!(verify(&public_key_base64(&key), &legacy, DATA), Err(MinisignError::LegacySignature));
    }

    #[test]
    fn trusted_comments_must_be_one_line() {
        let key = key(1);
        for (comment, at, found) in [("a\nb", 1, '\n'), ("a\rb", 1, '\r'), ("nul\0", 3, '\0')] {
            assert_eq!(
                sign(&key, DATA, comment),
                Err(MinisignError::TrustedCommentNotOneLine { at, found }),
                "{comment:?}"
            );
        }
        let longest = "a".repeat(TRUSTED_COMMENT_MAX_BYTES);
        assert!(sign(&key, DATA, &longest).is_ok());
        assert_eq!(
            sign(&key, DATA, &format!("{longest}a")),
            Err(MinisignError::TrustedCommentTooLong {
                len: TRUSTED_COMMENT_MAX_BYTES + 1,
                max: TRUSTED_COMMENT_MAX_BYTES
            })
        );
    }

    #[test]
    fn malformed_inputs_name_the_cause() {
        let key = key(1);
        let public = public_key_base64(&key);
        let minisig = sign(&key, DATA, "c").expect("signs");
        assert!(matches!(verify("not a key", &minisig, DATA), Err(MinisignError::BadPublicKey { .. })));
        assert!(matches!(verify(&public[..20], &minisig, DATA), Err(MinisignError::BadPublicKey { .. })));
        let first_three: String = minisig.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(
            verify(&public, &first_three, DATA),
            Err(MinisignError::MalformedSignature { reason: "the global signature line is missing" })
        );
        let no_prefix = replace_line(&minisig, 2, "c");
        assert!(matches!(verify(&public, &no_prefix, DATA), Err(MinisignError::MalformedSignature { .. })));
        let trailing = format!("{minisig}extra\n");
        assert!(matches!(verify(&public, &trailing, DATA), Err(MinisignError::MalformedSignature { .. })));
        // Surrounding whitespace on the key line and CRLF line ends are accepted.
        let crlf = minisig.replace('\n', "\r\n");
        assert!(verify(&format!("  {public}\n"), &crlf, DATA).is_ok());
    }
}
