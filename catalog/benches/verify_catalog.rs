//! Cold-start verification of a 10,000-app catalog spread over 50 publisher delegations, against
//! the raw crypto floor measured in the same run.
//!
//! Run: `cargo bench -p archy-catalog --bench verify_catalog`
//!
//! "Cold" means a client that trusts only root v1: it verifies timestamp, snapshot, top-level
//! targets, all 50 publisher roles, and for each of the 10,000 envelopes finds the target through
//! its delegation, checks length, SHA-256 and BLAKE3, and verifies the envelope's publisher
//! signature and manifest. The floor is the Ed25519 verification of the same signatures plus
//! BLAKE3/SHA-256 of the same bytes, with nothing else.

use std::collections::HashMap;

// The allocator a node binary uses; JSON-heavy verification is allocation-bound.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::hint::black_box;
use std::time::{Duration, Instant};

use catalog::client::local::MemoryStore;
use catalog::client::{Config, FetchError, Remote, Updater};
use catalog::envelope::{SignedEnvelope, signing_message};
use catalog::keys::SigningKey;
use catalog::manifest::{Limits, Manifest};
use catalog::testing::TestKeys;
use sha2::Digest as _;

const PUBLISHERS: usize = 50;
const APPS_PER_PUBLISHER: usize = 200;
const RUNS: usize = 9;

struct MemRemote(HashMap<String, Vec<u8>>);

impl Remote for MemRemote {
    fn fetch_metadata(&mut self, name: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        self.get(&format!("metadata/{name}"), max)
    }
    fn fetch_target(&mut self, path: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        self.get(&format!("targets/{path}"), max)
    }
}

impl MemRemote {
    fn get(&self, key: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        let bytes = self.0.get(key).ok_or(FetchError::NotFound)?;
        if bytes.len() as u64 > max {
            return Err(FetchError::TooLarge { limit: max });
        }
        Ok(bytes.clone())
    }
}

struct Catalog {
    files: HashMap<String, Vec<u8>>,
    root: Vec<u8>,
    paths: Vec<String>,
    envelopes: Vec<Vec<u8>>,
    metadata_sigs: Vec<(ed25519_dalek::VerifyingKey, Vec<u8>, ed25519_dalek::Signature)>,
}

fn build() -> Catalog {
    let now = chrono::Utc::now();
    let key = |n: u8, i: usize| {
        let mut seed = [n; 32];
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        SigningKey::from_seed(seed)
    };
    let keys = TestKeys {
        root: key(1, 0),
        targets: key(2, 0),
        snapshot: key(3, 0),
        timestamp: key(4, 0),
        publisher: key(9, 0),
        log: None,
    };
    let mut repo = keys.create(now);
    let TestKeys { root, targets, snapshot, timestamp, .. } = keys;
    let mut paths = Vec::new();
    let mut envelopes = Vec::new();
    for p in 0..PUBLISHERS {
        let publisher = key(9, p);
        let ids: Vec<String> = (0..APPS_PER_PUBLISHER).map(|i| format!("app-{p}-{i}")).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let role = format!("publisher-{p}");
        repo.add_publisher(&role, &publisher.did(), &id_refs, &targets, now).expect("add publisher");
        let mut batch = Vec::new();
        for id in &ids {
            let manifest =
                Manifest::from_toml_str(&catalog::manifest::example_toml(id, &publisher.did()), &Limits::default())
                    .expect("manifest");
            let bytes = SignedEnvelope::sign(&manifest, &publisher).expect("sign").to_bytes();
            let path = catalog::repo::envelope_target_path(id, &manifest.version);
            paths.push(path.clone());
            envelopes.push(bytes.clone());
            batch.push((path, bytes, "manifest".to_owned()));
        }
        repo.add_publisher_targets(&role, batch, &publisher, now).expect("add targets");
    }
    repo.snapshot_and_timestamp(&snapshot, &timestamp, now).expect("publish");
    let mut files: HashMap<String, Vec<u8>> =
        repo.metadata_files().into_iter().map(|(name, bytes)| (format!("metadata/{name}"), bytes)).collect();
    for (path, bytes) in repo.pending_target_files() {
        files.insert(format!("targets/{path}"), bytes.clone());
    }
    // The metadata signatures a cold client checks (root, timestamp, snapshot, targets, roles).
    let mut metadata_sigs = Vec::new();
    for (name, bytes) in &files {
        if !name.starts_with("metadata/") || name == "metadata/root.json" {
            continue;
        }
        let doc: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        let msg = catalog::canonical::to_canonical(&doc["signed"]).expect("canonical");
        for s in doc["signatures"].as_array().expect("sigs") {
            let sig = ed25519_dalek::Signature::from_slice(&hex::decode(s["sig"].as_str().expect("sig")).expect("hex"))
                .expect("sig");
            let keyid = s["keyid"].as_str().expect("keyid");
            let signer = [&root, &targets, &snapshot, &timestamp]
                .into_iter()
                .cloned()
                .chain((0..PUBLISHERS).map(|p| key(9, p)))
                .find(|k| k.key_id() == keyid)
                .expect("known key");
            metadata_sigs.push((signer.verifying_key(), msg.clone(), sig));
        }
    }
    let root_bytes = files["metadata/1.root.json"].clone();
    Catalog { files, root: root_bytes, paths, envelopes, metadata_sigs }
}

/// Time of one cold verification, split into phases: (metadata refresh, target search and
/// download with hash checks, envelope parse, envelope signature + manifest validation).
fn archy_verify(c: &Catalog) -> (Duration, [Duration; 4]) {
    let remote = MemRemote(c.files.clone());
    let start = Instant::now();
    let mut updater =
        Updater::new(remote, MemoryStore::with_root(c.root.clone()), chrono::Utc::now(), Config::default())
            .expect("updater");
    updater.refresh().expect("refresh");
    // Load and verify every publisher role (the first lookup into each role does it).
    for path in c.paths.iter().step_by(APPS_PER_PUBLISHER) {
        updater.target_info(path).expect("search").expect("found");
    }
    let mut phases = [start.elapsed(), Duration::ZERO, Duration::ZERO, Duration::ZERO];
    let limits = Limits::default();
    // Envelopes are checked in batches, as a node does when it verifies a whole catalog.
    for chunk in c.paths.chunks(2048) {
        let mut envelopes = Vec::with_capacity(chunk.len());
        for path in chunk {
            let t = Instant::now();
            let target = updater.target_info(path).expect("search").expect("found");
            let bytes = updater.download_target(&target).expect("download");
            let t1 = Instant::now();
            envelopes.push(SignedEnvelope::from_slice(&bytes).expect("envelope"));
            phases[1] += t1 - t;
            phases[2] += t1.elapsed();
        }
        let t = Instant::now();
        for verified in SignedEnvelope::verify_many(envelopes, &limits) {
            black_box(verified.expect("verify"));
        }
        phases[3] += t.elapsed();
    }
    (start.elapsed(), phases)
}

struct FloorInput {
    envelope_sigs: Vec<(ed25519_dalek::VerifyingKey, Vec<u8>, ed25519_dalek::Signature)>,
    manifest_bytes: Vec<Vec<u8>>,
}

fn floor_input(c: &Catalog) -> FloorInput {
    let mut envelope_sigs = Vec::new();
    let mut manifest_bytes = Vec::new();
    for bytes in &c.envelopes {
        let doc: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        let canonical = catalog::canonical::to_canonical(&doc["manifest"]).expect("canonical");
        let did: catalog::DidKey = doc["signature"]["did"].as_str().expect("did").parse().expect("did");
        let sig = ed25519_dalek::Signature::from_slice(
            &hex::decode(doc["signature"]["sig"].as_str().expect("sig")).expect("hex"),
        )
        .expect("sig");
        envelope_sigs.push((did.verifying_key(), canonical.clone(), sig));
        manifest_bytes.push(canonical);
    }
    FloorInput { envelope_sigs, manifest_bytes }
}

fn floor(c: &Catalog, f: &FloorInput) -> Duration {
    let start = Instant::now();
    for (key, msg, sig) in &c.metadata_sigs {
        key.verify_strict(msg, sig).expect("metadata signature");
    }
    for ((key, canonical, sig), envelope) in f.envelope_sigs.iter().zip(&c.envelopes) {
        black_box(sha2::Sha256::digest(envelope));
        black_box(blake3::hash(envelope));
        let hash = blake3::hash(canonical);
        key.verify_strict(&signing_message(&hash), sig).expect("envelope signature");
    }
    black_box(&f.manifest_bytes);
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let t = Instant::now();
    let c = build();
    let f = floor_input(&c);
    let bytes: usize = c.files.values().map(Vec::len).sum();
    println!(
        "catalog: {} envelopes, {PUBLISHERS} publisher roles, {:.1} MB of metadata and targets (built in {:.1} s)",
        c.paths.len(),
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut archy = Vec::new();
    let mut raw = Vec::new();
    // One unmeasured pair first, so both sides start with warm caches and allocator pages.
    archy_verify(&c);
    floor(&c, &f);
    let mut last_phases = [Duration::ZERO; 4];
    for _ in 0..RUNS {
        let (total, phases) = archy_verify(&c);
        archy.push(total);
        last_phases = phases;
        raw.push(floor(&c, &f));
    }
    // Each archy run is paired with a floor run right after it; the ratio reported is the median
    // of the paired ratios, which cancels most of the machine's drift between runs.
    let mut ratios: Vec<f64> = archy.iter().zip(&raw).map(|(a, r)| a.as_secs_f64() / r.as_secs_f64()).collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let (a, r) = (median(archy), median(raw));
    println!(
        "archy cold verify:  {:>8.1} ms  ({:.0} envelopes/s)",
        a.as_secs_f64() * 1e3,
        c.paths.len() as f64 / a.as_secs_f64()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  phases (last run): all metadata incl. 50 roles {:.1} ms, search+download+hashes {:.1} ms, envelope parse {:.1} ms, signature+manifest {:.1} ms",
        ms(last_phases[0]),
        ms(last_phases[1]),
        ms(last_phases[2]),
        ms(last_phases[3])
    );
    println!(
        "raw crypto floor:   {:>8.1} ms  (ed25519 verify + BLAKE3/SHA-256 of the same bytes)",
        r.as_secs_f64() * 1e3
    );
    println!("ratio archy/floor:  {ratio:>8.2}x  (target <= 1.30x; median of {RUNS} paired runs)");
}
