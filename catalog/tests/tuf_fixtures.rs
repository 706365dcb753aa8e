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

/// A remote with two providers of `alice`'s role: the first sends `first` (then is dropped when
/// the update refuses it), the second the repository's file.
struct TwoProviders {
    remote: DirRemote,
    first: Option<Vec<u8>>,
    refusals: Vec<String>,
}

impl catalog::client::Remote for TwoProviders {
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        if name.ends_with(".alice.json")
            && let Some(bytes) = &self.first
        {
            return Ok(bytes.clone());
        }
        self.remote.fetch_metadata(name, max_length)
    }

    fn fetch_target(&mut self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        self.remote.fetch_target(path, max_length)
    }

    fn refused(&mut self, name: &str, why: &UpdateError) -> bool {
        self.refusals.push(format!("{name}: {}", kind(why).0));
        self.first.take().is_some()
    }
}

#[test]
fn a_refused_role_is_asked_of_the_next_provider_and_only_what_verifies_is_kept() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let valid = base.join("valid-repository");
    let case: Value = serde_json::from_slice(&std::fs::read(valid.join("case.json")).expect("case")).expect("json");
    let now = catalog::metadata::expires_format::parse(case["now"].as_str().expect("now")).expect("time");
    let root = std::fs::read(valid.join("client/root.json")).expect("root");
    let good = std::fs::read(valid.join("remote/metadata/1.alice.json")).expect("alice");
    // Another version of the role, signed by its key (the mix-and-match fixture's), and a copy of
    // the good one with one byte changed: each is refused by §5.6 and the next provider asked.
    let other_version = std::fs::read(base.join("mix-and-match/remote/metadata/1.alice.json")).expect("alice v2");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    for (first, refused_as) in [(other_version, "VersionMismatch"), (flipped, "")] {
        let mut store = MemoryStore::default();
        store.persist("root", &root).expect("persist");
        let remote =
            TwoProviders { remote: DirRemote::new(&valid.join("remote")), first: Some(first), refusals: Vec::new() };
        let mut updater = Updater::new(remote, store, now, Config::default()).expect("updater");
        let target = updater.target_info("apps/hello-web/1.0.0.json").expect("update").expect("the target is listed");
        updater.download_target(&target).expect("the target verifies");
        assert_eq!(updater.store().load("alice"), Some(good.clone()), "the kept role is the one that verified");
        let refusals = &updater.remote_mut().refusals;
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(refusals[0].starts_with("1.alice.json: ") && refusals[0].ends_with(refused_as), "{refusals:?}");
    }
}
