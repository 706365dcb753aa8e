//! `<data>/node.json`: where a running `archy-node run` listens, for the commands and tools that
//! talk to it.

use archy_net::PeerAddr;
use serde::{Deserialize, Serialize};

use crate::data_dir::DataDir;

/// Where a running node listens (`<data>/node.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NodeInfo {
    /// Local API base URL.
    pub api: String,
    /// iroh address other nodes use as a peer.
    pub iroh: PeerAddr,
    /// Process id.
    pub pid: u32,
    /// The embedded Nostr relay's URL, when `[nostr] serve_relay` runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
}

/// Reads `<data>/node.json` of a running (or last run) node.
pub(crate) fn read_node_info(data: &DataDir) -> Option<NodeInfo> {
    serde_json::from_slice(&std::fs::read(data.node_info()).ok()?).ok()
}
