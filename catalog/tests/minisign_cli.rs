//! archy's minisign signatures against the stock `minisign` CLI, in both directions.
//!
//! Needs the `minisign` binary (Debian package `minisign`); set `MINISIGN` to use another path.
//! These tests fail, never skip, when it is missing.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use catalog::keys::SigningKey;
use catalog::minisign::{self, MinisignError};

const DATA: &[u8] = b"hello-web 1.0.0 release tarball\n";

/// The `minisign` program: `$MINISIGN` or `minisign` on `PATH`.
fn program() -> OsString {
    std::env::var_os("MINISIGN").unwrap_or_else(|| "minisign".into())
}

/// Runs `minisign` with `args` in `dir`, with no stdin so a password prompt cannot hang the test.
fn minisign(dir: &Path, args: &[&str]) -> Output {
    let program = program();
    Command::new(&program).args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{}` ({e}): these tests need the minisign CLI; \
                 install the Debian package `minisign` (apt-get install minisign) \
                 or set MINISIGN to its path",
            program.to_string_lossy()
        )
    })
}

/// Runs `minisign` and asserts that it succeeded; returns its stdout and stderr.
fn minisign_ok(dir: &Path, args: &[&str]) -> String {
    let out = minisign(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "minisign {args:?} failed ({}): {text}", out.status);
    text
}

/// Runs `minisign` and asserts that it failed; returns its stdout and stderr.
fn minisign_fails(dir: &Path, args: &[&str]) -> String {
    let out = minisign(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "minisign {args:?} accepted what it should refuse: {text}");
    text
}

/// A directory holding `release.tar`, its archy-made `release.tar.minisig` and `key.pub`.
fn signed_by_archy(key: &SigningKey, comment: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("release.tar"), DATA).expect("write data");
    let minisig = minisign::sign(key, DATA, comment).expect("signs");
    std::fs::write(dir.path().join("release.tar.minisig"), minisig).expect("write signature");
    std::fs::write(dir.path().join("key.pub"), minisign::public_key_file(key)).expect("write public key");
    dir
}

#[test]
fn minisign_cli_verifies_archy_signatures() {
    let key = SigningKey::from_seed([11; 32]);
    let comment = "archy app hello-web 1.0.0\tsigned by archy";
    let dir = signed_by_archy(&key, comment);

    let out = minisign_ok(dir.path(), &["-V", "-p", "key.pub", "-m", "release.tar"]);
    assert!(out.contains(&format!("Trusted comment: {comment}")), "{out}");

    // The bare public key line works too, as `minisign -P` takes it.
    let line = minisign::public_key_base64(&key);
    let out = minisign_ok(dir.path(), &["-V", "-P", &line, "-m", "release.tar"]);
    assert!(out.contains(comment), "{out}");
}

#[test]
fn minisign_cli_refuses_tampered_data_and_trusted_comment() {
    let key = SigningKey::from_seed([12; 32]);
    let dir = signed_by_archy(&key, "file:release.tar");

    std::fs::write(dir.path().join("release.tar"), b"hello-web 1.0.0 evil tarball\n").expect("tamper data");
    let out = minisign_fails(dir.path(), &["-V", "-p", "key.pub", "-m", "release.tar"]);
    assert!(out.contains("Signature verification failed"), "{out}");

    std::fs::write(dir.path().join("release.tar"), DATA).expect("restore data");
    let sig_path = dir.path().join("release.tar.minisig");
    let minisig = std::fs::read_to_string(&sig_path).expect("read signature");
    let tampered = minisig.replace("trusted comment: file:release.tar", "trusted comment: file:evil.tar");
    assert_ne!(tampered, minisig);
    std::fs::write(&sig_path, tampered).expect("tamper comment");
    let out = minisign_fails(dir.path(), &["-V", "-p", "key.pub", "-m", "release.tar"]);
    assert!(out.contains("Comment signature verification failed"), "{out}");
}

#[test]
fn minisign_cli_refuses_another_key() {
    let signer = SigningKey::from_seed([13; 32]);
    let dir = signed_by_archy(&signer, "c");
    let other = minisign::public_key_base64(&SigningKey::from_seed([14; 32]));
    let out = minisign_fails(dir.path(), &["-V", "-P", &other, "-m", "release.tar"]);

    // archy names the same two key ids, written the way minisign writes them.
    let minisig = std::fs::read_to_string(dir.path().join("release.tar.minisig")).expect("read signature");
    match minisign::verify(&other, &minisig, DATA) {
        Err(MinisignError::SignedByAnotherKey { expected, found }) => {
            assert!(out.contains(&format!("is {found}")), "signature key id {found}: {out}");
            assert!(out.contains(&format!("public key is {expected}")), "public key id {expected}: {out}");
        }
        other => panic!("expected SignedByAnotherKey, got {other:?}"),
    }
}

#[test]
fn minisign_cli_reads_the_longest_trusted_comment() {
    let comment = "a".repeat(minisign::TRUSTED_COMMENT_MAX_BYTES);
    let dir = signed_by_archy(&SigningKey::from_seed([15; 32]), &comment);
    let out = minisign_ok(dir.path(), &["-V", "-p", "key.pub", "-m", "release.tar"]);
    assert!(out.contains(&comment), "{out}");
}

/// A directory with a passwordless minisign key pair `key.pub`/`key.sec` and `release.tar`.
fn minisign_key_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    minisign_ok(dir.path(), &["-G", "-W", "-p", "key.pub", "-s", "key.sec"]);
    std::fs::write(dir.path().join("release.tar"), DATA).expect("write data");
    let pub_file = std::fs::read_to_string(dir.path().join("key.pub")).expect("read key.pub");
    let line = pub_file.lines().nth(1).expect("key.pub has a key line").to_owned();
    (dir, line)
}

fn read_minisig(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("release.tar.minisig")).expect("minisign wrote release.tar.minisig")
}

#[test]
fn archy_verifies_minisign_cli_signatures() {
    let (dir, public) = minisign_key_dir();
    minisign_ok(dir.path(), &["-S", "-s", "key.sec", "-m", "release.tar", "-t", "made by minisign"]);
    let minisig = read_minisig(dir.path());

    let verified = minisign::verify(&public, &minisig, DATA).expect("archy verifies minisign's signature");
    assert_eq!(verified.trusted_comment(), "made by minisign");

    assert_eq!(minisign::verify(&public, &minisig, b"other data"), Err(MinisignError::BadSignature));
    let archy_key = minisign::public_key_base64(&SigningKey::from_seed([16; 32]));
    assert!(matches!(minisign::verify(&archy_key, &minisig, DATA), Err(MinisignError::SignedByAnotherKey { .. })));
}

#[test]
fn archy_reads_minisign_default_trusted_comment() {
    let (dir, public) = minisign_key_dir();
    minisign_ok(dir.path(), &["-S", "-s", "key.sec", "-m", "release.tar"]);
    let verified = minisign::verify(&public, &read_minisig(dir.path()), DATA).expect("verifies");
    assert!(verified.trusted_comment().contains("file:release.tar"), "{}", verified.trusted_comment());
}

#[test]
fn archy_refuses_minisign_legacy_signatures() {
    let (dir, public) = minisign_key_dir();
    minisign_ok(dir.path(), &["-S", "-l", "-s", "key.sec", "-m", "release.tar"]);
    assert_eq!(minisign::verify(&public, &read_minisig(dir.path()), DATA), Err(MinisignError::LegacySignature));
}
