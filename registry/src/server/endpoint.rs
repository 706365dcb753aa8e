//! The origin over iroh: one endpoint (relays off, direct addresses only) serving iroh-blobs and
//! the metadata protocol of `archy_net`, and the blob store behind it.
//!
//! Every metadata and target file is added to the blob store by BLAKE3 ([`Registry::publish_blobs`])
//! at start and after every change, so nodes and peers can fetch them with verified streaming.

use std::path::Path;
use std::sync::Arc;

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
    let metrics = registry.metrics.clone();
    let blobs = iroh_blobs::BlobsProtocol::new(&store, Some(count_blob_bytes(metrics.clone())));
    registry.blobs = Some(store);
    let meta = MetaServer::new(Arc::new(CountingMeta {
        inner: registry.cache.clone(),
        metrics,
        repo_dir: registry.repo_dir.clone(),
    }));
    // The origin is a member of every swarm of its catalog: nodes bootstrap from it. It relays
    // announcements and announces nothing (it is every file's provider of last resort).
    let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
    for topic in registry.swarm_topics()? {
        let swarm = archy_net::swarm::relay_only(&endpoint, &gossip, topic).await?;
        registry.swarms.push(swarm);
    }
    Ok(iroh::protocol::Router::builder(endpoint)
        .accept(iroh_blobs::ALPN, blobs)
        .accept(archy_net::META_ALPN, meta)
        .accept(iroh_gossip::ALPN, gossip)
        .spawn())
}

/// The metadata the iroh metadata protocol serves, counted.
#[derive(Debug)]
struct CountingMeta {
    inner: Arc<super::state::Cache>,
    metrics: Arc<super::metrics::Metrics>,
    /// The repository folder, for the log's proofs.
    repo_dir: std::path::PathBuf,
}

impl archy_net::MetaSource for CountingMeta {
    fn meta(&self, name: &str) -> Option<Bytes> {
        let bytes = match self.inner.meta(name) {
            Some(bytes) => bytes,
            // The transparency log's proofs travel as metadata names.
            None => super::log::proof_by_name(&self.repo_dir, name)?,
        };
        super::metrics::add(&self.metrics.iroh_metadata_bytes, bytes.len() as u64);
        Some(bytes)
    }
}

/// Provider events of iroh-blobs: every finished or aborted transfer adds what it sent.
fn count_blob_bytes(metrics: Arc<super::metrics::Metrics>) -> iroh_blobs::provider::events::EventSender {
    use iroh_blobs::provider::events::{EventMask, EventSender, ProviderMessage, RequestMode, RequestUpdate};
    let mask = EventMask { get: RequestMode::NotifyLog, get_many: RequestMode::NotifyLog, ..EventMask::DEFAULT };
    let (sender, mut rx) = EventSender::channel(256, mask);
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let mut updates = match message {
                ProviderMessage::GetRequestReceivedNotify(m) => m.rx,
                ProviderMessage::GetManyRequestReceivedNotify(m) => m.rx,
                _ => continue,
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                while let Ok(Some(update)) = updates.recv().await {
                    let stats = match update {
                        RequestUpdate::Completed(c) => c.stats,
                        RequestUpdate::Aborted(a) => a.stats,
                        _ => continue,
                    };
                    super::metrics::add(&metrics.iroh_target_bytes, stats.payload_bytes_sent + stats.other_bytes_sent);
                }
            });
        }
    });
    sender
}

impl Registry {
    /// The swarm topics of this catalog: one per distinct root key set in its root history
    /// (`archy_net::topic_for_root`), so nodes pinned to any root version find the origin.
    fn swarm_topics(&self) -> anyhow::Result<Vec<[u8; 32]>> {
        let mut topics = Vec::new();
        let cache = self.cache.0.read().map_err(|_| anyhow::anyhow!("cache lock poisoned"))?;
        for (name, bytes) in &cache.files {
            let is_root =
                name == "root.json" || name.strip_suffix(".root.json").is_some_and(|v| v.parse::<u64>().is_ok());
            if is_root
                && let Ok(topic) = archy_net::topic_for_root(bytes)
                && !topics.contains(&topic)
            {
                topics.push(topic);
            }
        }
        Ok(topics)
    }

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
