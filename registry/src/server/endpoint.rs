//! The origin over iroh: one endpoint (relays off, direct addresses only) serving iroh-blobs and
//! the metadata protocol of `archy_net`, and the blob store behind it.
//!
//! Every metadata and target file is added to the blob store by BLAKE3 ([`Registry::publish_blobs`])
//! at start and after every change, so nodes and peers can fetch them with verified streaming.

use std::path::Path;

use bytes::Bytes;

use super::Registry;
use archy_net::MetaServer;

/// Opens the blob store under `state_dir`, binds the endpoint on `bind` with the key in
/// `state_dir/iroh.key` (made on first start), and starts serving both protocols. The registry
/// learns its iroh address and store; the returned router shuts both down.
pub(crate) async fn start(
    registry: &mut Registry,
    bind: std::net::SocketAddr,
    state_dir: &Path,
) -> anyhow::Result<iroh::protocol::Router> {
    let store = iroh_blobs::store::fs::FsStore::load(state_dir.join("blobs"))
        .await
        .map_err(|e| anyhow::anyhow!("opening the blob store: {e}"))?;
    let secret = archy_net::load_or_create_secret(&state_dir.join("iroh.key"))?;
    let endpoint = archy_net::bind_endpoint(secret, bind).await?;
    registry.iroh_addr = Some(archy_net::local_peer_addr(&endpoint)?);
    let blobs = iroh_blobs::BlobsProtocol::new(&store, None);
    registry.blobs = Some(store);
    let meta = MetaServer::new(registry.cache.clone());
    Ok(iroh::protocol::Router::builder(endpoint)
        .accept(iroh_blobs::ALPN, blobs)
        .accept(archy_net::META_ALPN, meta)
        .spawn())
}

impl Registry {
    /// Adds every metadata and target file to the iroh blob store (by BLAKE3).
    pub(crate) async fn publish_blobs(&self) -> anyhow::Result<()> {
        let Some(store) = &self.blobs else { return Ok(()) };
        let mut done = self.in_blobs.lock().await;
        let files: Vec<(String, Bytes)> = self
            .cache
            .0
            .read()
            .map_err(|_| anyhow::anyhow!("cache lock poisoned"))?
            .files
            .iter()
            // timestamp.json and root.json change in place; they are fetched by name, not hash.
            .filter(|(name, _)| !done.contains(*name) && *name != "timestamp.json" && *name != "root.json")
            .map(|(n, b)| (n.clone(), b.clone()))
            .collect();
        for (name, bytes) in files {
            store.blobs().add_bytes(bytes).with_tag().await.map_err(|e| anyhow::anyhow!("blob store: {e}"))?;
            done.insert(name);
        }
        // Target files are served in place (by reference, not copied).
        self.targets_in_blobs.lock().await.import_new(store, &self.repo_dir.join("targets")).await?;
        Ok(())
    }
}
