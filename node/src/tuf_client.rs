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

/// Updates, then fetches each target into `target_dir` (cached by matching length and hashes).
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
    for name in target_names {
        let target = updater.target_info(name)?.with_context(|| format!("target `{name}` is not in the repository"))?;
        let local: PathBuf = target_dir.join(encode_role_name(name));
        if let Ok(existing) = std::fs::read(&local)
            && target.verify(&existing).is_ok()
        {
            tracing::info!(target = %name, "cached copy matches its signed hashes");
            continue;
        }
        let bytes = updater.download_target(&target).with_context(|| format!("downloading `{name}`"))?;
        write_atomic(&local, &bytes).with_context(|| format!("writing {}", local.display()))?;
    }
    Ok(())
}
