//! `archy-node tuf-client`: the client protocol of the TUF conformance suite
//! (theupdateframework/tuf-conformance, `CLIENT-CLI.md`) over archy's update workflow.
//!
//! - `--metadata-dir D init ROOT` copies the bootstrap root to `D/root.json` (no network).
//! - `--metadata-dir D --metadata-url U refresh` runs the TUF 1.0 §5 update.
//! - `… --target-name T [--target-name T2 …] --target-base-url B --target-dir O download` updates,
//!   then finds each target through the delegation graph, reuses a cached copy whose length and
//!   hashes match, or downloads and verifies it; targets are processed in order and the first
//!   failure stops the command.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use catalog::client::{Config, Updater, encode_role_name};

use crate::http::HttpRemote;
use catalog::repo::write_atomic;

use crate::store::MetadataDir;

/// Copies the bootstrap root into the metadata directory.
pub(crate) fn init(metadata_dir: &Path, trusted_root: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(trusted_root).with_context(|| format!("reading {}", trusted_root.display()))?;
    let mut store = MetadataDir::open(metadata_dir).with_context(|| format!("creating {}", metadata_dir.display()))?;
    catalog::client::LocalStore::persist(&mut store, "root", &bytes).map_err(anyhow::Error::msg)?;
    Ok(())
}

fn updater(
    metadata_dir: &Path,
    metadata_url: &str,
    target_base: Option<&str>,
) -> anyhow::Result<Updater<HttpRemote, MetadataDir>> {
    let store = MetadataDir::open(metadata_dir).with_context(|| format!("opening {}", metadata_dir.display()))?;
    let remote = HttpRemote::new(metadata_url, target_base);
    // §5.1: the update start time is fixed once for the whole update.
    Ok(Updater::new(remote, store, chrono::Utc::now(), Config::default())?)
}

/// Runs the update workflow for the top-level roles.
pub(crate) fn refresh(metadata_dir: &Path, metadata_url: &str) -> anyhow::Result<()> {
    let mut updater = updater(metadata_dir, metadata_url, None)?;
    updater.refresh()?;
    Ok(())
}

/// Targets up to this length are downloaded many at once (their bytes are held in memory until
/// written); larger ones one at a time.
const PARALLEL_UP_TO: u64 = 1 << 20;
/// Small targets downloaded at once.
const PARALLEL: usize = 16;

/// Updates, then fetches each target into `target_dir` (cached by matching length and hashes).
///
/// Small targets are downloaded many at once, each over its own keep-alive connection, and
/// written in the order given: a target is written only when every target before it succeeded,
/// so the first failure stops the command exactly as a one-at-a-time download would.
pub(crate) fn download(
    metadata_dir: &Path,
    metadata_url: &str,
    target_names: &[String],
    target_base_url: &str,
    target_dir: &Path,
) -> anyhow::Result<()> {
    if target_names.is_empty() {
        bail!("download needs at least one --target-name");
    }
    let mut updater = updater(metadata_dir, metadata_url, Some(target_base_url))?;
    std::fs::create_dir_all(target_dir).with_context(|| format!("creating {}", target_dir.display()))?;
    let mut pending = Vec::new();
    for name in target_names {
        // Resolved one by one, in order (delegations are walked and cached by the updater).
        let target = match updater.target_info(name) {
            Ok(Some(t)) => t,
            Ok(None) => {
                write_all(&mut updater, &pending, metadata_url, target_base_url)?;
                bail!("target `{name}` is not in the repository");
            }
            Err(e) => {
                write_all(&mut updater, &pending, metadata_url, target_base_url)?;
                return Err(e.into());
            }
        };
        let local: PathBuf = target_dir.join(encode_role_name(name));
        if let Ok(existing) = std::fs::read(&local)
            && target.verify(&existing).is_ok()
        {
            tracing::info!(target = %name, "cached copy matches its signed hashes");
            continue;
        }
        pending.push((name.clone(), target, local));
    }
    write_all(&mut updater, &pending, metadata_url, target_base_url)
}

/// Downloads and writes `pending` in order, small ones many at once.
fn write_all(
    updater: &mut Updater<HttpRemote, MetadataDir>,
    pending: &[(String, catalog::client::VerifiedTarget, PathBuf)],
    metadata_url: &str,
    target_base_url: &str,
) -> anyhow::Result<()> {
    let mut i = 0;
    while i < pending.len() {
        let (name, target, local) = &pending[i];
        if target.file().length > PARALLEL_UP_TO {
            let bytes = updater.download_target(target).with_context(|| format!("downloading `{name}`"))?;
            write_atomic(local, &bytes).with_context(|| format!("writing {}", local.display()))?;
            i += 1;
            continue;
        }
        // A run of small targets: fetched at once, written in order up to the first failure.
        let end =
            pending[i..].iter().position(|(_, t, _)| t.file().length > PARALLEL_UP_TO).map_or(pending.len(), |n| i + n);
        let run = &pending[i..end];
        let paths: Vec<String> = run.iter().map(|(_, t, _)| updater.target_remote_path(t)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<anyhow::Result<Vec<u8>>>>> =
            run.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL.min(run.len()) {
                scope.spawn(|| {
                    let mut remote = HttpRemote::new(metadata_url, Some(target_base_url));
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((name, target, _)) = run.get(k) else { return };
                        let result =
                            catalog::client::Remote::fetch_target(&mut remote, &paths[k], target.file().length)
                                .map_err(|source| catalog::client::UpdateError::Fetch {
                                    file: paths[k].clone(),
                                    source,
                                })
                                .and_then(|bytes| target.verify(&bytes).map(|()| bytes))
                                .with_context(|| format!("downloading `{name}`"));
                        let failed = result.is_err();
                        *results[k].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
                        if failed {
                            // Nothing after a failure is written; stop taking more.
                            next.fetch_add(run.len(), std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        for ((_, _, local), result) in run.iter().zip(results) {
            let Some(result) = result.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) else {
                bail!("a download before this one failed");
            };
            let bytes = result?;
            write_atomic(local, &bytes).with_context(|| format!("writing {}", local.display()))?;
        }
        i = end;
    }
    Ok(())
}
