//! `archy-registry serve`: runs the origin ([`crate::server::serve`]) until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::UserError;
use crate::server::{BlobQuota, Config};

/// Serve a repository folder made by `archy repo init` over HTTP and iroh.
// The field docs are the `--help` text, written for a terminal (`<data>`, bare URLs).
#[allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The repository folder (holds repository/ and keys/ with timestamp.key and snapshot.key).
    #[arg(long)]
    pub data: PathBuf,
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub http: SocketAddr,
    /// iroh listen address (direct connections only; relays are never used).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub iroh: SocketAddr,
    /// Do not start the iroh endpoint.
    #[arg(long)]
    pub no_iroh: bool,
    /// Lifetime of each signed timestamp, in seconds (re-signed when half of it is left).
    #[arg(long, default_value_t = 86_400)]
    pub timestamp_lifetime: i64,
    /// How often to check whether the timestamp needs re-signing, in seconds.
    #[arg(long, default_value_t = 60)]
    pub resign_check: u64,
    /// Largest accepted submission, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub max_submission_mib: u64,
    /// Most submissions read at once; one more is answered 429.
    #[arg(long, default_value_t = 4)]
    pub max_concurrent_submissions: usize,
    /// Most MiB the files of submissions in progress may take under <data>/registry/incoming/
    /// (reserved at each file's signed length once its metadata verified); beyond, 507.
    #[arg(long, default_value_t = 2048)]
    pub max_incoming_mib: u64,
    /// Most envelopes /v1/blobs keeps per publisher DID; one more evicts that DID's oldest.
    #[arg(long, default_value_t = 32)]
    pub blobs_per_did: usize,
    /// Most MiB of envelopes /v1/blobs keeps in all; a post beyond is refused with 507.
    #[arg(long, default_value_t = 256)]
    pub blobs_max_mib: u64,
    /// Days a hosted envelope is kept after it was last posted.
    #[arg(long, default_value_t = 90)]
    pub blobs_expire_days: u64,
    /// Also run the embedded Nostr relay on this address (e.g. 127.0.0.1:7447; port 0 picks
    /// one), persisted under <data>/relay/; its ws:// URL is printed and written to
    /// <data>/registry/endpoint.json.
    #[arg(long, value_name = "ADDR")]
    pub relay: Option<SocketAddr>,
    /// Base URL that hosted envelopes are announced under (default: http:// and the Host
    /// the publisher used), e.g. https://origin.example.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// A Nostr key (npub1… or hex) whose web of trust ranks the marketplace's Nostr apps
    /// (repeatable); the keys bound to the origin's own publishers count as seeds too.
    #[arg(long = "market-seed", value_name = "NPUB")]
    pub market_seeds: Vec<String>,
    /// Another relay (ws://…) whose archy apps the marketplace lists (repeatable); the embedded
    /// relay is always read when it runs.
    #[arg(long = "market-relay", value_name = "URL")]
    pub market_relays: Vec<String>,
}

impl Args {
    /// The origin's configuration these flags describe.
    pub fn config(self) -> Result<Config, UserError> {
        if self.timestamp_lifetime < 2 {
            return Err(UserError("--timestamp-lifetime must be at least 2 seconds".into()));
        }
        if self.max_concurrent_submissions == 0 || self.blobs_per_did == 0 {
            return Err(UserError("--max-concurrent-submissions and --blobs-per-did must be at least 1".into()));
        }
        Ok(Config {
            data: self.data,
            http: self.http,
            iroh: (!self.no_iroh).then_some(self.iroh),
            timestamp_lifetime: chrono::TimeDelta::seconds(self.timestamp_lifetime),
            resign_check: Duration::from_secs(self.resign_check.max(1)),
            max_submission: self.max_submission_mib.saturating_mul(1 << 20),
            max_concurrent_submissions: self.max_concurrent_submissions,
            max_incoming: self.max_incoming_mib.saturating_mul(1 << 20),
            blobs: BlobQuota {
                per_did: self.blobs_per_did,
                max_bytes: self.blobs_max_mib.saturating_mul(1 << 20),
                expire_after: Duration::from_secs(self.blobs_expire_days.saturating_mul(86_400)),
            },
            relay: self.relay,
            public_url: self.public_url,
            market: crate::server::NostrMarketConfig {
                relays: self.market_relays,
                seeds: self.market_seeds,
                ..Default::default()
            },
        })
    }
}

/// Serves until SIGINT or SIGTERM, then finishes what is in flight and returns.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::server::serve(args.config()?, super::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
