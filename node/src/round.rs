//! One round of the node: the catalog sync, then the read of the Nostr relays (outside the sync
//! round's lock, so a slow relay never holds up the origin's catalog).

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data_dir::DataDir;
use crate::nostr::read::ReadReport;
use crate::sync::SyncReport;

/// What a round did: the catalog sync's report, with the Nostr read beside it (`archy-node sync
/// --json`, `POST /v1/sync`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoundReport {
    /// The catalog sync.
    #[serde(flatten)]
    pub catalog: SyncReport,
    /// The read of the Nostr relays, when relays are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nostr: Option<ReadReport>,
}

impl std::ops::Deref for RoundReport {
    type Target = SyncReport;

    fn deref(&self) -> &SyncReport {
        &self.catalog
    }
}

/// A round for `archy-node sync`: the catalog, then the relays.
pub async fn run_once(data: &DataDir, config: &Config) -> anyhow::Result<RoundReport> {
    let catalog = crate::sync::sync_once(data, config, None).await?;
    let nostr = crate::nostr::read::sync_relays(data, config).await?;
    Ok(RoundReport { catalog, nostr })
}
