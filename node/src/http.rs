//! Fetching TUF metadata and targets over HTTP, every read bounded.

use std::io::Read as _;
use std::time::Duration;

use catalog::client::{FetchError, Remote};

/// A [`Remote`] that reads `<metadata base>/<name>` and `<target base>/<path>` over HTTP.
pub(crate) struct HttpRemote {
    agent: ureq::Agent,
    metadata_base: String,
    target_base: Option<String>,
}

fn with_slash(base: &str) -> String {
    if base.ends_with('/') { base.to_owned() } else { format!("{base}/") }
}

impl HttpRemote {
    /// A remote for a repository's metadata URL and, optionally, its targets URL.
    pub(crate) fn new(metadata_base: &str, target_base: Option<&str>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(30))
            // A deadline for the whole transfer, so a peer trickling bytes can't hold us forever.
            .timeout(Duration::from_secs(600))
            .redirects(0)
            .build();
        Self { agent, metadata_base: with_slash(metadata_base), target_base: target_base.map(with_slash) }
    }

    fn get(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        tracing::debug!(%url, max_length, "GET");
        let response = match self.agent.get(url).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(403 | 404, _)) => return Err(FetchError::NotFound),
            Err(ureq::Error::Status(code, _)) => return Err(FetchError::Other(format!("HTTP {code} from {url}"))),
            // ureq's message names the URL already.
            Err(e) => return Err(FetchError::Other(e.to_string())),
        };
        // Read one byte past the bound so an oversized body is detected, never buffered whole.
        let mut body = Vec::new();
        response
            .into_reader()
            .take(max_length.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| FetchError::Other(format!("{url}: {e}")))?;
        if body.len() as u64 > max_length {
            return Err(FetchError::TooLarge { limit: max_length });
        }
        Ok(body)
    }
}

impl Remote for HttpRemote {
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}{name}", self.metadata_base);
        self.get(&url, max_length)
    }

    fn fetch_target(&mut self, path: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let base = self.target_base.as_ref().ok_or_else(|| FetchError::Other("no target base URL given".into()))?;
        let url = format!("{base}{path}");
        self.get(&url, max_length)
    }
}
