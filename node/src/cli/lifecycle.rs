//! `archy-node` lifecycle subcommands: `install`, `start`, `stop`, `restart`, `update`,
//! `uninstall [--purge [--yes]]`, `ps`, `logs`, `reconcile`, and the app's data: `snapshots`,
//! `snapshot`, `restore`, `backup`.
//!
//! They run in this process, holding the orchestrator's lock, so they work with or without a
//! running daemon; with one, the daemon's reconciler waits for the lock and then sees the new
//! desired state.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::data_dir::DataDir;
use crate::orchestrator::source::SourceError;
use crate::orchestrator::{AppSource, DirSource, Error, Orchestrator};
use crate::sources::{NodeSource, Source};

/// Options every lifecycle command takes.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct Common {
    /// The node's data dir [default: $ARCHY_NODE_DATA, else $XDG_DATA_HOME/archy-node, else ~/.local/share/archy-node].
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// Take manifests and image archives from this folder of signed envelopes (`*.archy.json`)
    /// instead of the node's synced catalog.
    #[arg(long, global = true)]
    pub from: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where to look for the app: the origin's catalog first and Nostr for apps it does not
    /// have (`all`), or only one of them. Nostr apps pass `[nostr_policy]` first.
    #[arg(long, global = true, value_enum, default_value_t)]
    pub source: Source,
}

/// The lifecycle subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub(super) enum AppCommand {
    /// Install an app (and the apps it depends on).
    Install {
        /// App id.
        app: String,
        /// Version to install (default: the newest).
        #[arg(long)]
        version: Option<semver::Version>,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Start a stopped app.
    Start {
        /// App id.
        app: String,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Stop an app; it stays stopped until `start`.
    Stop {
        /// App id.
        app: String,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Restart an app's containers in dependency order.
    Restart {
        /// App id.
        app: String,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Update an app; rolls back by itself if the new version is not healthy.
    Update {
        /// App id.
        app: String,
        /// Version to update to (default: the newest).
        #[arg(long)]
        to: Option<semver::Version>,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Uninstall an app; keeps its volumes and generated secrets unless --purge.
    Uninstall {
        /// App id.
        app: String,
        /// Also delete the app's volumes and generated secrets (asks for confirmation).
        #[arg(long)]
        purge: bool,
        /// Do not ask for confirmation.
        #[arg(long, requires = "purge")]
        yes: bool,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Installed apps with their state (running, healthy, unhealthy, stopped, failed).
    Ps {
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// An app's container logs.
    Logs {
        /// App id.
        app: String,
        /// Only this container (its name in the manifest).
        #[arg(long)]
        container: Option<String>,
        /// Last N lines of each container.
        #[arg(long)]
        tail: Option<u64>,
        /// Keep following.
        #[arg(short, long)]
        follow: bool,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// An app's volume snapshots, newest first (one is taken before every update).
    Snapshots {
        /// App id.
        app: String,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Copy an app's volumes into a new snapshot now (a running app stops for the copy).
    Snapshot {
        /// App id.
        app: String,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Put a snapshot back into a stopped app's volumes (`restore APP SNAPSHOT`), or restore
    /// an app from a backup file made on any node (`restore --backup FILE`).
    Restore {
        /// App id.
        #[arg(required_unless_present = "backup")]
        app: Option<String>,
        /// Snapshot id (`archy-node snapshots APP` lists them).
        #[arg(required_unless_present = "backup")]
        snapshot: Option<String>,
        /// A file `archy-node backup` wrote: the app is installed here with its data and secrets.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["app", "snapshot"])]
        backup: Option<PathBuf>,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Write an app's data, generated secrets and signed manifest to FILE (0600), to restore
    /// it here or on another node; a running app stops for the copy.
    Backup {
        /// App id.
        app: String,
        /// The file to write (never replaced).
        file: PathBuf,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
    /// Converge the engine to the desired state once (or keep doing it with --watch).
    Reconcile {
        /// Keep running: on engine events and every --interval seconds.
        #[arg(long)]
        watch: bool,
        /// Seconds between passes with --watch.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Options every command takes.
        #[command(flatten)]
        common: Common,
    },
}

impl AppCommand {
    fn common(&self) -> &Common {
        match self {
            Self::Install { common, .. }
            | Self::Start { common, .. }
            | Self::Stop { common, .. }
            | Self::Restart { common, .. }
            | Self::Update { common, .. }
            | Self::Uninstall { common, .. }
            | Self::Ps { common }
            | Self::Logs { common, .. }
            | Self::Snapshots { common, .. }
            | Self::Snapshot { common, .. }
            | Self::Restore { common, .. }
            | Self::Backup { common, .. }
            | Self::Reconcile { common, .. } => common,
        }
    }
}

/// Where manifests come from: `--from DIR`, else the node's synced catalog and, for apps it
/// does not have, verified Nostr announcements (`--source`).
fn source(data: &DataDir, from: Option<&Path>, which: Source) -> Arc<dyn AppSource> {
    match from {
        Some(dir) => Arc::new(DirSource::new(dir)),
        None => Arc::new(NodeSource::new(data, which)),
    }
}

/// What `install` (and `update`) would install is resolved before the container engine is
/// contacted: an app no source offers, or one the Nostr install policy refuses, touches nothing.
/// (`update` of an app that is not installed says so first, so there only refusals count.)
fn unavailable(source: &dyn AppSource, command: &AppCommand) -> Option<Error> {
    let (app, version, install) = match command {
        AppCommand::Install { app, version, .. } => (app, version.as_ref(), true),
        AppCommand::Update { app, to, .. } => (app, to.as_ref(), false),
        _ => return None,
    };
    // A malformed id is left to the orchestrator, which names it as such.
    app.parse::<catalog::manifest::AppId>().ok()?;
    match source.manifest(app, version).err()? {
        SourceError::Refused(rule) => Some(Error::NostrPolicy(rule)),
        SourceError::Expired(why) => Some(Error::CatalogExpired(why)),
        other if install => Some(Error::NotAvailable(other.to_string())),
        _ => None,
    }
}

/// Runs a lifecycle command; exit code 0 on success, 1 for the user's errors (refused, not
/// installed, failed health, rolled back…), 2 for unexpected ones.
pub(super) fn run(command: AppCommand) -> anyhow::Result<ExitCode> {
    super::init_logs("warn");
    super::runtime()?.block_on(run_async(command))
}

async fn run_async(command: AppCommand) -> anyhow::Result<ExitCode> {
    let common = command.common().clone();
    let data = DataDir::from_arg_or_env(common.data.clone());
    let source = source(&data, common.from.as_deref(), common.source);
    if let Some(refused) = unavailable(source.as_ref(), &command) {
        return Ok(fail(&refused));
    }
    let orch = match Orchestrator::open(&data, source).await {
        Ok(o) => Arc::new(o),
        Err(e) => return Ok(fail(&e)),
    };
    let json = common.json;
    let result: Result<(), Error> = async {
        match command {
            AppCommand::Install { app, version, .. } => {
                let report = orch.install(&app, version.as_ref()).await?;
                if json {
                    print_json(&report);
                } else if report.already_installed {
                    println!("{app} is already installed; its containers are up to date");
                } else {
                    for (id, v) in &report.installed {
                        println!("installed {id} {v}");
                    }
                }
            }
            AppCommand::Start { app, .. } => {
                orch.start(&app).await?;
                say(json, &format!("started {app}"));
            }
            AppCommand::Stop { app, .. } => {
                orch.stop(&app).await?;
                say(json, &format!("stopped {app}"));
            }
            AppCommand::Restart { app, .. } => {
                orch.restart(&app).await?;
                say(json, &format!("restarted {app}"));
            }
            AppCommand::Update { app, to, .. } => {
                let report = orch.update(&app, to.as_ref()).await?;
                if json {
                    print_json(&report);
                } else if report.unchanged {
                    println!("{app} is already at {}", report.to);
                } else {
                    println!("updated {app} {} -> {}", report.from, report.to);
                }
            }
            AppCommand::Uninstall { app, purge, yes, .. } => {
                if purge && !yes && !confirm_purge(&app)? {
                    return Err(Error::NotAvailable("purge cancelled; nothing was deleted".into()));
                }
                orch.uninstall(&app, purge).await?;
                let what = if purge {
                    format!("purged {app}: its containers, volumes and secrets are deleted")
                } else {
                    format!("uninstalled {app}; its volumes and secrets are kept (`uninstall --purge` deletes them)")
                };
                say(json, &what);
            }
            AppCommand::Ps { .. } => {
                let apps = orch.status().await?;
                if json {
                    print_json(&apps);
                } else if apps.is_empty() {
                    println!("no apps installed");
                } else {
                    for a in &apps {
                        let mut line = format!("{:<24} {:<12} {}", a.app, a.version, a.state);
                        if let Some(p) = &a.pending {
                            line.push_str(&format!(" ({p})"));
                        }
                        if let Some(r) = &a.reason {
                            line.push_str(&format!(": {r}"));
                        }
                        println!("{line}");
                        if let Some(u) = &a.last_update
                            && let Some(why) = &u.rolled_back
                        {
                            println!("  update to {} was rolled back: {why}", u.to);
                        }
                        for c in &a.containers {
                            println!("  {:<16} {:<32} {}", c.role, c.name, c.status);
                        }
                    }
                }
            }
            AppCommand::Logs { app, container, tail, follow, .. } => {
                let mut lines = orch.logs(&app, container.as_deref(), tail, follow).await?;
                let mut out = std::io::stdout().lock();
                while let Some(line) = lines.next().await {
                    let _ = write!(out, "{}", line?);
                }
            }
            AppCommand::Snapshots { app, .. } => {
                let snapshots = orch.snapshots(&app)?;
                if json {
                    print_json(&snapshots);
                } else if snapshots.is_empty() {
                    println!("no snapshots of {app}");
                } else {
                    for s in &snapshots {
                        println!(
                            "{:<32} {:<10} {:>12}  {}",
                            s.id,
                            s.version.to_string(),
                            human_bytes(s.bytes()),
                            s.reason
                        );
                    }
                }
            }
            AppCommand::Snapshot { app, .. } => {
                let s = orch.snapshot(&app).await?;
                if json {
                    print_json(&s);
                } else {
                    println!(
                        "snapshot {} of {app} {}: {} in {}",
                        s.id,
                        s.version,
                        human_bytes(s.bytes()),
                        s.volumes.len()
                    );
                }
            }
            AppCommand::Restore { app: Some(app), snapshot: Some(id), backup: None, .. } => {
                let replaced = orch.restore(&app, &id).await?;
                let mut text = format!("restored {app} from snapshot {id}; it is stopped (`archy-node start {app}`)");
                if let Some(r) = &replaced {
                    text.push_str(&format!("\nthe data it replaced is kept as snapshot {}", r.id));
                }
                say(json, &text);
            }
            AppCommand::Restore { backup: Some(file), .. } => {
                let (info, _) = orch.restore_backup(&file).await?;
                say(
                    json,
                    &format!(
                        "restored {} {} from {} ({} in {} volumes, {} secrets) and started it",
                        info.app,
                        info.version,
                        file.display(),
                        human_bytes(info.bytes()),
                        info.volumes.len(),
                        info.secrets.len()
                    ),
                );
            }
            AppCommand::Restore { .. } => {
                return Err(Error::NotAvailable("give APP SNAPSHOT, or --backup FILE".into()));
            }
            AppCommand::Backup { app, file, .. } => {
                let info = orch.backup(&app, &file).await?;
                say(
                    json,
                    &format!(
                        "wrote {} (0600): {app} {}, {} in {} volumes, {} secrets",
                        file.display(),
                        info.version,
                        human_bytes(info.bytes()),
                        info.volumes.len(),
                        info.secrets.len()
                    ),
                );
            }
            AppCommand::Reconcile { watch, interval, .. } => {
                if watch {
                    let every = Duration::from_secs(interval.max(1));
                    crate::orchestrator::run_reconciler(orch.clone(), every, super::shutdown_signal()).await?;
                } else {
                    let report = orch.reconcile_once(true).await?;
                    if json {
                        print_json(&report);
                    } else {
                        println!(
                            "{} apps: {} containers created, {} started, {} objects removed",
                            report.apps, report.created, report.started, report.removed
                        );
                        for (app, why) in &report.failed {
                            println!("  {app}: {why}");
                        }
                    }
                    if !report.failed.is_empty() {
                        return Err(Error::NotAvailable(format!("{} apps did not converge", report.failed.len())));
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    })
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(if e.is_user_error() { 1 } else { 2 })
}

/// `1.2 MB`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn say(json: bool, text: &str) {
    if json {
        print_json(&serde_json::json!({ "ok": true, "message": text }));
    } else {
        println!("{text}");
    }
}

fn print_json<T: serde::Serialize>(value: &T) {
    if let Err(e) = super::print_json(value) {
        eprintln!("error: {e:#}");
    }
}

/// Asks on the terminal; without one, purging needs `--yes`.
fn confirm_purge(app: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::NotAvailable(format!(
            "`uninstall --purge` deletes the volumes and secrets of `{app}` for good; run it in a terminal to confirm, or pass --yes"
        )));
    }
    eprint!("This deletes every volume and generated secret of `{app}` for good. Type the app id to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|source| Error::Io { path: PathBuf::from("<stdin>"), source })?;
    Ok(answer.trim() == app)
}
