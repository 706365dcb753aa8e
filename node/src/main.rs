//! `archy-node`: the node daemon's command line.

use std::path::PathBuf;
use std::process::ExitCode;

// JSON-heavy verification is allocation-bound; mimalloc makes it markedly faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "archy-node", version, about = "The archy node: a verified catalog and the apps installed from it")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--data DIR`, the node's data directory.
#[derive(clap::Args, Clone)]
struct DataDir {
    /// The node's data directory [default: $ARCHY_NODE_DATA, else $XDG_DATA_HOME/archy-node, else ~/.local/share/archy-node].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

impl DataDir {
    fn path(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(node::config::default_data_dir)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Pin the trust root and name the origin (and peers) in <data>/config.toml.
    Init {
        #[command(flatten)]
        data: DataDir,
        /// The origin's root.json (version 1, or any version you trust).
        #[arg(long)]
        root: PathBuf,
        /// Its minisign signature (root.json.minisig); checked before anything is written.
        #[arg(long, requires = "minisign_key")]
        minisig: Option<PathBuf>,
        /// The minisign public key: the base64 line (RW…) or a minisign .pub file.
        #[arg(long)]
        minisign_key: Option<String>,
        /// The origin's HTTP URL.
        #[arg(long)]
        origin: Option<String>,
        /// The origin's iroh address, <endpoint id>@<ip:port>.
        #[arg(long)]
        origin_iroh: Option<String>,
        /// Another node to mirror from when the origin is unreachable (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Replace an existing trust root.
        #[arg(long)]
        force: bool,
        /// A Nostr relay to read apps, bindings, follows and labels from (repeatable).
        #[arg(long = "relay", value_name = "ws://…")]
        relays: Vec<String>,
        /// A Nostr key you trust, seeding the trust scores (repeatable).
        #[arg(long = "trust", value_name = "npub1…")]
        trust: Vec<String>,
        /// Lowest trust score (0–100) a Nostr publisher needs to be installable [default: 1.0].
        #[arg(long)]
        min_score: Option<f64>,
        /// A publisher (did:key or npub) installable from Nostr whatever its score (repeatable).
        #[arg(long = "allow", value_name = "DID|NPUB")]
        allow: Vec<String>,
        /// A publisher (did:key or npub) never installable from Nostr (repeatable).
        #[arg(long = "deny", value_name = "DID|NPUB")]
        deny: Vec<String>,
        /// `archy-node run` also runs the embedded Nostr relay on this address (its events kept
        /// under <data>/relay/).
        #[arg(long, value_name = "IP:PORT")]
        serve_relay: Option<std::net::SocketAddr>,
    },
    /// One sync round: origin first, peers when it is unreachable.
    Sync {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keep the catalog fresh and serve it to other nodes (until SIGINT/SIGTERM).
    Run {
        #[command(flatten)]
        data: DataDir,
    },
    /// Installable apps: the origin's verified catalog and verified Nostr announcements.
    Apps {
        #[command(flatten)]
        data: DataDir,
        /// Which apps: the origin's catalog, Nostr announcements, or both (shown apart).
        #[arg(long, value_enum, default_value_t)]
        source: node::nostr::Source,
        /// Print JSON (one list; each entry's `source` says where it comes from).
        #[arg(long)]
        json: bool,
    },
    /// A publisher's trust score and why (strongest paths from your seeds, endorsers,
    /// reporters); or, with --publish, post the node's scores as NIP-85 assertions.
    Trust {
        #[command(flatten)]
        data: DataDir,
        /// A publisher's did:key or a Nostr key (npub1… or hex).
        #[arg(required_unless_present = "publish")]
        subject: Option<String>,
        /// How many paths to show.
        #[arg(long, default_value_t = 3)]
        paths: usize,
        /// Sign the scores of the publishers' keys with the node's Nostr key (<data>/nostr.key)
        /// and post them to the configured relays.
        #[arg(long, conflicts_with = "subject")]
        publish: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Catalog version and expiry, origin reachability, peers, equivocation evidence.
    Status {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a target file (e.g. an image archive) into the node, verified.
    Fetch {
        #[command(flatten)]
        data: DataDir,
        /// The target path, e.g. images/hello-web/hello-web-0.1.0.tar.
        target: String,
    },
    /// TUF client following the tuf-conformance client protocol (init, refresh, download).
    TufClient(TufClientArgs),
    /// App lifecycle: install, start, stop, restart, update, uninstall, ps, logs, reconcile.
    #[command(flatten)]
    Lifecycle(node::orchestrator::cli::AppCommand),
}

#[derive(clap::Args)]
struct TufClientArgs {
    /// Directory holding the trusted metadata (root.json, timestamp.json, …).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Target path to download; repeat to download several in order.
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// Directory to store verified targets in.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Print debug logs.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    action: TufAction,
}

#[derive(Subcommand)]
enum TufAction {
    /// Trust this root.json (copied to the metadata directory).
    Init {
        /// The bootstrap root.json.
        trusted_root: PathBuf,
    },
    /// Update the top-level metadata.
    Refresh,
    /// Update, then download each --target-name.
    Download,
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCHY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Runtime::new()?)
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Lifecycle(command) => {
            let filter = std::env::var("ARCHY_LOG").unwrap_or_else(|_| "warn".to_owned());
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
            return node::orchestrator::cli::run(command);
        }
        Command::Init {
            data,
            root,
            minisig,
            minisign_key,
            origin,
            origin_iroh,
            peers,
            force,
            relays,
            trust,
            min_score,
            allow,
            deny,
            serve_relay,
        } => {
            init_logs("warn");
            let data = data.path();
            let summary = node::init::init(&node::init::InitArgs {
                data: &data,
                root: &root,
                minisig: minisig.as_deref(),
                minisign_key: minisign_key.as_deref(),
                origin,
                origin_iroh,
                peers,
                force,
                nostr: node::init::NostrArgs { relays, trust, min_score, allow, deny, serve_relay },
            })?;
            println!("{summary}");
        }
        Command::Sync { data, json } => {
            init_logs("warn,archy=info");
            let data = data.path();
            let report = runtime()?.block_on(async {
                let mut report = node::sync::sync_once(&data, None).await?;
                report.nostr = node::nostr::read::sync_relays(&data).await?;
                anyhow::Ok(report)
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                match &report.source {
                    Some(source) => println!(
                        "{}: timestamp v{}, snapshot v{}, {} app versions, {} bytes downloaded (from {source}{})",
                        if report.changed { "catalog updated" } else { "catalog up to date" },
                        report.timestamp_version,
                        report.snapshot_version,
                        report.apps,
                        report.bytes_downloaded,
                        if report.origin_reachable { "" } else { "; origin unreachable" },
                    ),
                    None => println!("catalog kept: nothing verified this round"),
                }
                for e in &report.errors {
                    eprintln!("  - {e}");
                }
                for p in &report.equivocation {
                    eprintln!("EQUIVOCATION evidence kept: {}", p.display());
                }
                if let Some(nostr) = &report.nostr {
                    for line in node::nostr::cli::sync_lines(nostr) {
                        println!("{line}");
                    }
                }
            }
            if !report.ok() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Run { data } => {
            init_logs("info,iroh=warn,iroh_blobs=warn");
            let data = data.path();
            runtime()?.block_on(node::daemon::run(&data, shutdown_signal()))?;
        }
        Command::Apps { data, source, json } => {
            init_logs("warn");
            return node::nostr::cli::apps(&data.path(), source, json);
        }
        Command::Trust { data, subject, paths, publish, json } => {
            init_logs("warn");
            let data = data.path();
            return match subject {
                Some(subject) if !publish => node::nostr::cli::explain(&data, &subject, paths, json),
                _ => runtime()?.block_on(node::nostr::cli::publish(&data, json)),
            };
        }
        Command::Status { data, json } => {
            let status = node::status::Status::gather(&data.path());
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
        }
        Command::Fetch { data, target } => {
            init_logs("warn,archy=info");
            let catalog = node::catalog::NodeCatalog::open(&data.path())?;
            let path = runtime()?.block_on(catalog.fetch_target(&target))?;
            println!("{}", path.display());
        }
        Command::TufClient(args) => {
            let level = if args.verbose > 0 { "debug" } else { "warn" };
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(level).init();
            let need = |v: Option<String>, flag: &str| v.ok_or_else(|| anyhow::anyhow!("{flag} is required"));
            match args.action {
                TufAction::Init { trusted_root } => node::tuf_client::init(&args.metadata_dir, &trusted_root)?,
                TufAction::Refresh => {
                    node::tuf_client::refresh(&args.metadata_dir, &need(args.metadata_url, "--metadata-url")?)?
                }
                TufAction::Download => node::tuf_client::download(
                    &args.metadata_dir,
                    &need(args.metadata_url, "--metadata-url")?,
                    &args.target_names,
                    &need(args.target_base_url, "--target-base-url")?,
                    &args.target_dir.ok_or_else(|| anyhow::anyhow!("--target-dir is required"))?,
                )?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
