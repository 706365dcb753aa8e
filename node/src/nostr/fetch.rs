//! Fetching a release's envelope by hash from the locations its event names.
//!
//! A location is only a hint: whatever answers, [`archy_nostr::discovery::Discovery::accept`]
//! checks the bytes against the size and BLAKE3 hash the publisher's DID signed. Reads are
//! bounded by the announced size (itself at most [`catalog::envelope::MAX_ENVELOPE_BYTES`]) and
//! by a timeout, redirects are not followed, and an envelope already in the node's file store is
//! taken from there.

use std::io::Read as _;
use std::time::Duration;

use archy_nostr::event::{Location, Rejected, Release};
use tokio::sync::OnceCell;

use crate::config::{Config, client_endpoint};
use crate::files::{FileError, FileStore};

/// Fetches envelopes into one node's file store.
pub(crate) struct Fetcher {
    files: FileStore,
    config: Config,
    timeout: Duration,
    endpoint: OnceCell<Result<iroh::Endpoint, String>>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("files", &self.files).field("timeout", &self.timeout).finish()
    }
}

/// The envelope of `hash` in the node's file store, re-hashed: [`FileError::Damaged`] when the
/// stored bytes changed (the file is removed, so the next read fetches it again).
pub(crate) fn local_envelope(files: &FileStore, hash: &blake3::Hash, size: u64) -> Result<Vec<u8>, FileError> {
    files.get(hash.to_hex().as_str(), size)
}

impl Fetcher {
    /// A fetcher into `files` giving each location `timeout` of silence (its iroh endpoint, opened
    /// when first needed, is bound as `config` says).
    pub(crate) fn new(files: FileStore, config: &Config, timeout: Duration) -> Self {
        Self { files, config: config.clone(), timeout, endpoint: OnceCell::new() }
    }

    /// How long the fetches of one read may take together: as long as one relay query may
    /// ([`super::relay::QUERY_DEADLINE_FACTOR`] times the timeout, at least
    /// [`super::relay::MIN_QUERY_SECS`]), so a location that drips bytes slowly cannot keep a
    /// read busy for long.
    pub(crate) fn phase_limit(&self) -> Duration {
        (self.timeout * super::relay::QUERY_DEADLINE_FACTOR).max(Duration::from_secs(super::relay::MIN_QUERY_SECS))
    }

    /// The envelope bytes of `release`: from the file store, else from its locations in order.
    pub(crate) async fn fetch(&self, release: &Release) -> Result<Vec<u8>, Rejected> {
        if let Ok(bytes) = local_envelope(&self.files, &release.hash, release.size) {
            return Ok(bytes);
        }
        let mut errors = Vec::new();
        for location in &release.locations {
            let got = match location {
                Location::Url(url) => self.fetch_url(url, release.size).await,
                Location::Iroh(ticket) => self.fetch_iroh(ticket, release).await,
            };
            match got {
                // The first location that answers with the announced bytes wins; others are
                // tried when it answers with something else.
                Ok(bytes) if blake3::hash(&bytes) == release.hash => return Ok(bytes),
                Ok(bytes) => errors.push(format!(
                    "{location}: {} bytes that hash to {}",
                    bytes.len(),
                    blake3::hash(&bytes).to_hex()
                )),
                Err(e) => errors.push(format!("{location}: {e}")),
            }
        }
        Err(Rejected::FetchFailed { hash: release.hash.to_hex().to_string(), reason: errors.join("; ") })
    }

    async fn fetch_url(&self, url: &str, size: u64) -> Result<Vec<u8>, String> {
        let (url, timeout) = (url.to_owned(), self.timeout);
        tokio::task::spawn_blocking(move || http_get(&url, size, timeout)).await.map_err(|e| e.to_string())?
    }

    async fn endpoint(&self) -> Result<&iroh::Endpoint, String> {
        self.endpoint
            .get_or_init(|| async { client_endpoint(&self.config).await.map_err(|e| format!("{e:#}")) })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn fetch_iroh(&self, ticket: &str, release: &Release) -> Result<Vec<u8>, String> {
        let ticket: iroh_blobs::ticket::BlobTicket =
            ticket.parse().map_err(|e| format!("not an iroh-blobs ticket: {e}"))?;
        if ticket.hash().as_bytes() != release.hash.as_bytes() {
            return Err(format!("the ticket names blob {}, not the announced hash", ticket.hash()));
        }
        let addr = ticket.addr();
        let ip = *addr.ip_addrs().next().ok_or("the ticket names no direct address")?;
        let provider = archy_net::PeerAddr { id: addr.id, addr: ip };
        let endpoint = self.endpoint().await?;
        let tmp = self.files.part_path(release.hash.to_hex().as_str(), "nostr.part").map_err(|e| e.to_string())?;
        let fetched =
            archy_net::fetch_blob(endpoint, &provider, release.hash, release.size, &tmp, self.timeout, |_| {})
                .await
                .map_err(|e| e.to_string());
        let bytes = fetched.and_then(|()| std::fs::read(&tmp).map_err(|e| e.to_string()));
        let _ = std::fs::remove_file(&tmp);
        bytes
    }

    /// Closes the iroh endpoint if one was opened.
    pub(crate) async fn close(&self) {
        if let Some(Ok(endpoint)) = self.endpoint.get() {
            endpoint.close().await;
        }
    }
}

/// `GET url`, at most `size` bytes (one more is read to detect a longer body), no redirects.
fn http_get(url: &str, size: u64, timeout: Duration) -> Result<Vec<u8>, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout_read(timeout)
        .timeout(timeout * 6)
        .redirects(0)
        .build();
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    response.into_reader().take(size.saturating_add(1)).read_to_end(&mut body).map_err(|e| e.to_string())?;
    if body.len() as u64 > size {
        return Err(format!("more than the announced {size} bytes"));
    }
    Ok(body)
}
