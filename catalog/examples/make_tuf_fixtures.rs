//! Writes the TUF failure fixtures under `catalog/tests/data/`.
//!
//! Run: `cargo run -p archy-catalog --example make_tuf_fixtures -- catalog/tests/data`
//!
//! Each case folder holds `client/` (what the client trusts before the update), `remote/` (the
//! repository it updates from: `metadata/`, `targets/`) and `case.json` (the fixed update time,
//! the target to fetch, and the expected outcome). Keys are derived from fixed seeds and times are
//! fixed, so the output is byte-for-byte reproducible.

use std::path::{Path, PathBuf};

use catalog::keys::SigningKey;
use catalog::metadata::{SignedMetadata, Snapshot, Timestamp};
use catalog::repo::{Expiry, InitKeys, Repository};
use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use serde_json::json;

const TARGET: &str = "apps/hello-web/1.0.0.json";

struct Keys {
    root: SigningKey,
    targets: SigningKey,
    snapshot: SigningKey,
    timestamp: SigningKey,
    publisher: SigningKey,
}

fn keys() -> Keys {
    Keys {
        root: SigningKey::from_seed([1; 32]),
        targets: SigningKey::from_seed([2; 32]),
        snapshot: SigningKey::from_seed([3; 32]),
        timestamp: SigningKey::from_seed([4; 32]),
        publisher: SigningKey::from_seed([5; 32]),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("fixed date")
}

fn repo(k: &Keys) -> Repository {
    let init = InitKeys {
        root: vec![&k.root],
        root_threshold: 1,
        targets: &k.targets,
        snapshot: &k.snapshot,
        timestamp: &k.timestamp,
        log: None,
    };
    let mut r = Repository::create(&init, t0(), Expiry::default()).expect("create");
    r.add_publisher("alice", &k.publisher.did(), &["hello-web"], &k.targets, t0()).expect("publisher");
    r.add_publisher_target(
        "alice",
        TARGET,
        b"{\"fixture\":\"hello-web 1.0.0\"}".to_vec(),
        "manifest",
        &k.publisher,
        t0(),
    )
    .expect("target");
    r.snapshot_and_timestamp(&k.snapshot, &k.timestamp, t0()).expect("publish");
    r
}

struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(base: &Path, name: &str) -> Self {
        let dir = base.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("client")).expect("mkdir");
        Self { dir }
    }
    fn remote(&self) -> PathBuf {
        self.dir.join("remote")
    }
    fn write_remote(&self, r: &mut Repository) {
        r.write_dir(&self.remote()).expect("write remote");
    }
    fn trust(&self, role: &str, bytes: &[u8]) {
        std::fs::write(self.dir.join("client").join(format!("{role}.json")), bytes).expect("trust");
    }
    fn trust_remote(&self, role: &str, file: &str) {
        let bytes = std::fs::read(self.remote().join("metadata").join(file)).expect("remote file");
        self.trust(role, &bytes);
    }
    fn put(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.remote().join("metadata").join(file), bytes).expect("put");
    }
    fn expect(&self, description: &str, now: DateTime<Utc>, outcome: serde_json::Value) {
        let case = json!({
            "description": description,
            "now": catalog::metadata::expires_format::format(&now),
            "target": TARGET,
            "expect": outcome,
        });
        std::fs::write(self.dir.join("case.json"), serde_json::to_vec_pretty(&case).expect("json")).expect("case");
    }
}

fn error(kind: &str, role: &str) -> serde_json::Value {
    json!({"error": kind, "role": role})
}

fn main() {
    let base = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "catalog/tests/data".into()));
    let k = keys();

    // A good repository, for contrast.
    let c = Case::new(&base, "valid-repository");
    c.write_remote(&mut repo(&k));
    c.trust_remote("root", "1.root.json");
    c.expect("a fresh client finds and verifies the target", t0(), json!("ok"));

    let c = Case::new(&base, "expired-timestamp");
    c.write_remote(&mut repo(&k));
    c.trust_remote("root", "1.root.json");
    c.expect(
        "timestamp expired one day after signing (TUF 5.4.5)",
        t0() + TimeDelta::days(2),
        error("Expired", "timestamp"),
    );

    let c = Case::new(&base, "expired-root");
    c.write_remote(&mut repo(&k));
    c.trust_remote("root", "1.root.json");
    c.expect(
        "the newest root is expired: freeze attack (TUF 5.3.10)",
        t0() + TimeDelta::days(400),
        error("Expired", "root"),
    );

    let c = Case::new(&base, "rollback-timestamp");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    let old_ts = std::fs::read(c.remote().join("metadata/timestamp.json")).expect("ts");
    r.refresh_timestamp(&k.timestamp, t0()).expect("ts v3");
    c.write_remote(&mut r);
    c.trust_remote("root", "1.root.json");
    c.trust_remote("timestamp", "timestamp.json");
    c.put("timestamp.json", &old_ts);
    c.expect(
        "the remote offers an older timestamp than the trusted one (TUF 5.4.3)",
        t0(),
        error("Rollback", "timestamp"),
    );

    let c = Case::new(&base, "rollback-snapshot");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    let trusted_ts = std::fs::read(c.remote().join("metadata/timestamp.json")).expect("ts");
    // A newer timestamp (valid signature) that names an older snapshot version.
    let mut ts = r.timestamp().clone();
    ts.version += 1;
    if let Some(m) = ts.meta.get_mut("snapshot.json") {
        m.version -= 1;
        m.length = None;
        m.hashes = None;
    }
    c.trust("root", &std::fs::read(c.remote().join("metadata/1.root.json")).expect("root"));
    c.trust("timestamp", &trusted_ts);
    c.put("timestamp.json", &SignedMetadata::sign(ts, &[&k.timestamp]).expect("sign").to_bytes());
    c.expect("a new timestamp names an older snapshot (TUF 5.4.4)", t0(), error("Rollback", "snapshot"));

    let c = Case::new(&base, "threshold-not-met");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    let attacker = SigningKey::from_seed([66; 32]);
    let ts = r.timestamp().clone();
    let mut forged = ts.clone();
    forged.version += 1;
    c.put("timestamp.json", &SignedMetadata::<Timestamp>::sign(forged, &[&attacker]).expect("sign").to_bytes());
    c.trust_remote("root", "1.root.json");
    c.expect(
        "timestamp signed by a key that is not the timestamp key (TUF 5.4.2)",
        t0(),
        error("ThresholdNotMet", "timestamp"),
    );

    let c = Case::new(&base, "duplicate-signatures");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.remote().join("metadata/timestamp.json")).expect("ts")).expect("json");
    let sig = doc["signatures"][0].clone();
    doc["signatures"].as_array_mut().expect("array").push(sig);
    c.put("timestamp.json", &serde_json::to_vec_pretty(&doc).expect("json"));
    c.trust_remote("root", "1.root.json");
    c.expect(
        "one signature repeated to fake a threshold (TUF 4.2: one signature per key)",
        t0(),
        error("DuplicateSignatures", "timestamp"),
    );

    let c = Case::new(&base, "bad-delegation");
    let mut r = repo(&k);
    // The publisher role is re-signed by a key the delegation does not name.
    let impostor = SigningKey::from_seed([77; 32]);
    let path = "apps/hello-web/1.0.1.json";
    let file = catalog::repo::target_file(b"evil", "manifest");
    let next = r.next_publisher_targets("alice", [(path.to_owned(), file)], t0()).expect("next");
    let forged = SignedMetadata::sign(next, &[&impostor]).expect("sign");
    c.write_remote(&mut r);
    let version = forged.signed.version;
    let snap_version = r.snapshot().version + 1;
    c.put(&format!("{version}.alice.json"), &forged.to_bytes());
    let mut snap: Snapshot = r.snapshot().clone();
    snap.version = snap_version;
    snap.meta.insert(
        "alice.json".into(),
        catalog::metadata::MetaFile { version, length: None, hashes: None, unknown: Default::default() },
    );
    let snap = SignedMetadata::sign(snap, &[&k.snapshot]).expect("sign");
    c.put(&format!("{snap_version}.snapshot.json"), &snap.to_bytes());
    let mut ts = r.timestamp().clone();
    ts.version += 1;
    ts.meta.insert(
        "snapshot.json".into(),
        catalog::metadata::MetaFile { version: snap_version, length: None, hashes: None, unknown: Default::default() },
    );
    c.put("timestamp.json", &SignedMetadata::sign(ts, &[&k.timestamp]).expect("sign").to_bytes());
    c.trust_remote("root", "1.root.json");
    c.expect(
        "a publisher role signed by a key its delegation does not name (TUF 5.6.3)",
        t0(),
        error("ThresholdNotMet", "alice"),
    );

    let c = Case::new(&base, "hash-mismatch");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    for entry in walk(&c.remote().join("targets")) {
        std::fs::write(&entry, b"{\"fixture\":\"tampered 1.0.0\"}").expect("tamper");
    }
    c.trust_remote("root", "1.root.json");
    c.expect("target bytes differ from the signed sha256 (TUF 5.7.3)", t0(), error("Hash", TARGET));

    let c = Case::new(&base, "oversized-metadata");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.remote().join("metadata/timestamp.json")).expect("ts")).expect("json");
    doc["signed"]["x-padding"] = json!("A".repeat(20_000));
    c.put("timestamp.json", &serde_json::to_vec(&doc).expect("json"));
    c.trust_remote("root", "1.root.json");
    c.expect(
        "timestamp.json larger than the 16 KiB bound: endless data (TUF 5.4.1)",
        t0(),
        error("TooLarge", "timestamp.json"),
    );

    let c = Case::new(&base, "mix-and-match");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    // Version 2 of alice's role exists on the remote but the signed snapshot still names version 1.
    r.add_publisher_target("alice", "apps/hello-web/2.0.0.json", b"{}".to_vec(), "manifest", &k.publisher, t0())
        .expect("add");
    let v2 = r.delegated("alice").expect("alice").version;
    let files = r.metadata_files();
    let (name, bytes) = files.iter().find(|(n, _)| n.ends_with(".alice.json")).expect("alice");
    assert_eq!(name, &format!("{v2}.alice.json"));
    c.put(&format!("{}.alice.json", v2 - 1), bytes);
    c.trust_remote("root", "1.root.json");
    c.expect(
        "a role file whose version differs from the signed snapshot (TUF 5.6.4)",
        t0(),
        error("VersionMismatch", "alice"),
    );

    let c = Case::new(&base, "rotated-root");
    let mut r = repo(&k);
    let root2 = SigningKey::from_seed([11; 32]);
    let root3 = SigningKey::from_seed([12; 32]);
    r.rotate("root", &[root2.public_key()], 1, &[&k.root, &root2], t0()).expect("rotate 2");
    r.rotate("root", &[root3.public_key()], 1, &[&root2, &root3], t0()).expect("rotate 3");
    r.snapshot_and_timestamp(&k.snapshot, &k.timestamp, t0()).expect("publish");
    c.write_remote(&mut r);
    c.trust_remote("root", "1.root.json");
    c.expect(
        "root v1 → v2 → v3, each signed by the old and the new keys (TUF 5.3.4)",
        t0(),
        json!({"ok_root_version": 3}),
    );

    let c = Case::new(&base, "broken-root-chain");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    let mut root = r.root().clone();
    let attacker = SigningKey::from_seed([67; 32]);
    root.version = 2;
    let id = attacker.key_id();
    root.keys.insert(id.clone(), attacker.public_key());
    if let Some(role) = root.roles.get_mut("root") {
        role.keyids = vec![id];
    }
    c.put("2.root.json", &SignedMetadata::sign(root, &[&attacker]).expect("sign").to_bytes());
    c.trust_remote("root", "1.root.json");
    c.expect("root v2 signed only by a new key, not by v1's keys (TUF 5.3.4)", t0(), error("ThresholdNotMet", "root"));

    let c = Case::new(&base, "wrong-type");
    let mut r = repo(&k);
    c.write_remote(&mut r);
    let snap =
        std::fs::read(c.remote().join(format!("metadata/{}.snapshot.json", r.snapshot().version))).expect("snap");
    c.put("timestamp.json", &snap);
    c.trust_remote("root", "1.root.json");
    c.expect(
        "snapshot metadata served as timestamp.json (TUF 5.4.2: the type must match)",
        t0(),
        error("WrongType", "timestamp"),
    );

    println!("fixtures written to {}", base.display());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
