//! Runs the update workflow over every fixture in `tests/data/<case>/` (written by
//! `cargo run -p archy-catalog --example make_tuf_fixtures`) and checks the outcome a client sees,
//! and that a refused update leaves the refused role's trusted metadata unchanged.

use std::path::Path;

use catalog::client::local::{DirRemote, MemoryStore};
use catalog::client::{Config, FetchError, LocalStore as _, UpdateError, Updater};
use catalog::metadata::MetadataError;
use serde_json::Value;

fn kind(err: &UpdateError) -> (String, String) {
    let (k, r): (&str, String) = match err {
        UpdateError::Expired { role, .. } => ("Expired", role.clone()),
        UpdateError::Rollback { role, .. } => ("Rollback", role.clone()),
        UpdateError::VersionMismatch { role, .. } => ("VersionMismatch", role.clone()),
        UpdateError::Hash { file, .. } => ("Hash", file.clone()),
        UpdateError::Fetch { file, source: FetchError::TooLarge { .. } } => ("TooLarge", file.clone()),
        UpdateError::Fetch { file, .. } => ("Fetch", file.clone()),
        UpdateError::NotInSnapshot(role) => ("NotInSnapshot", role.clone()),
        UpdateError::Metadata(MetadataError::ThresholdNotMet { role, .. }) => ("ThresholdNotMet", role.clone()),
        UpdateError::Metadata(MetadataError::DuplicateSignatures { role, .. }) => ("DuplicateSignatures", role.clone()),
        UpdateError::Metadata(MetadataError::WrongType { expected, .. }) => ("WrongType", expected.clone()),
        UpdateError::Metadata(MetadataError::Malformed { role, .. }) => ("Malformed", role.clone()),
        other => ("Other", other.to_string()),
    };
    (k.to_owned(), r)
}

fn run_case(dir: &Path) {
    let case: Value = serde_json::from_slice(&std::fs::read(dir.join("case.json")).expect("case.json")).expect("json");
    let now = catalog::metadata::expires_format::parse(case["now"].as_str().expect("now")).expect("time");
    let mut store = MemoryStore::default();
    let mut before = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("client")).expect("client dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let role = name.strip_suffix(".json").expect("json file").to_owned();
        let bytes = std::fs::read(entry.path()).expect("read");
        store.persist(&role, &bytes).expect("persist");
        before.insert(role, bytes);
    }
    let mut updater =
        Updater::new(DirRemote::new(&dir.join("remote")), store, now, Config::default()).expect("updater");
    let target = case["target"].as_str().expect("target");
    let result = updater.target_info(target).and_then(|t| {
        let t = t.ok_or_else(|| UpdateError::NotInSnapshot(format!("target {target} not found")))?;
        updater.download_target(&t).map(|_| ())
    });
    let name = dir.file_name().expect("name").to_string_lossy().into_owned();
    match (&case["expect"], result) {
        (Value::String(s), Ok(())) if s == "ok" => {}
        (Value::Object(o), Ok(())) if o.contains_key("ok_root_version") => {
            assert_eq!(Some(updater.trusted_root().version), o["ok_root_version"].as_u64(), "{name}");
        }
        (Value::Object(o), Err(err)) if o.contains_key("error") => {
            let (k, role) = kind(&err);
            assert_eq!(
                (k.as_str(), role.as_str()),
                (o["error"].as_str().expect("error"), o["role"].as_str().expect("role")),
                "{name}: {err}"
            );
            // Nothing refused was stored: every role the client trusted before is either unchanged
            // or was replaced by metadata that passed verification earlier in the same update.
            let failed_role = role.trim_end_matches(".json");
            if let Some(old) = before.get(failed_role) {
                assert_eq!(updater.store().load(failed_role).as_ref(), Some(old), "{name}: {failed_role} changed");
            }
        }
        (expect, got) => panic!("{name}: expected {expect}, got {got:?}"),
    }
}

#[test]
fn every_fixture_has_the_expected_outcome() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut cases: Vec<_> = std::fs::read_dir(&data)
        .expect("tests/data")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 14, "expected the TUF fixture set, found {}", cases.len());
    for case in cases {
        run_case(&case);
    }
}

#[test]
fn fixtures_are_reproducible_from_the_generator() {
    // The committed fixtures must be what the generator writes today: regenerate into a
    // temporary folder and compare byte for byte.
    let tmp = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "archy-catalog", "--example", "make_tuf_fixtures", "--"])
        .arg(tmp.path())
        .status()
        .expect("run generator");
    assert!(status.success());
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for file in walk(tmp.path()) {
        let rel = file.strip_prefix(tmp.path()).expect("prefix");
        let committed = std::fs::read(data.join(rel)).unwrap_or_else(|_| panic!("{} is not committed", rel.display()));
        assert_eq!(committed, std::fs::read(&file).expect("read"), "{} differs from the generator", rel.display());
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
