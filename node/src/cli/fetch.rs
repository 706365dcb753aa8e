//! `archy-node fetch`: a target file into the node, verified, with a progress bar on a terminal.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use super::{DataArg, init_logs, runtime};
use crate::catalog::NodeCatalog;
use crate::sync::FetchProgress;

/// `archy-node fetch`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// The target path, e.g. images/hello-web/hello-web-0.1.0.tar.
    target: String,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs("warn,archy=info");
    let data = args.data.dir();
    // A running node fetches it: with its swarm, into its blob store, serving the ranges it has
    // to other nodes while the file arrives.
    if let Some(info) = crate::node_info::read_node_info(&data) {
        let body = serde_json::json!({ "target": args.target }).to_string();
        match super::api::call(&data, &info, "POST", "/v1/fetch", Some(body)) {
            Ok((200, answer)) => {
                let fetched: crate::sync::swarm::FetchAnswer = serde_json::from_str(&answer)?;
                eprintln!(
                    "{}: {} bytes from the origin, {} from peers (through the running node)",
                    args.target, fetched.received.from_origin, fetched.received.from_peers
                );
                println!("{}", fetched.path.display());
                return Ok(ExitCode::SUCCESS);
            }
            Ok((status, answer)) => anyhow::bail!("the running node ({}): {status}: {}", info.api, answer.trim()),
            // node.json left by a node that did not stop cleanly: fetch here.
            Err(e) => tracing::info!("no running node answers ({e:#}); fetching here"),
        }
    }
    let config = data.config()?;
    let catalog = NodeCatalog::open(&data)?;
    let progress = Arc::new(Bar::default());
    let fetched = runtime()?.block_on(crate::sync::fetch_target(&data, &config, &catalog, &args.target, progress))?;
    eprintln!(
        "{}: {} bytes from the origin, {} from peers",
        args.target, fetched.received.from_origin, fetched.received.from_peers
    );
    println!("{}", fetched.path.display());
    Ok(ExitCode::SUCCESS)
}

/// A bar on stderr when it is a terminal and the file is large; a log line otherwise.
#[derive(Default)]
struct Bar {
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl FetchProgress for Bar {
    fn start(&self, name: &str, length: u64) {
        use std::io::IsTerminal as _;
        let mut bar = self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = bar.as_ref() {
            b.set_position(0);
            return;
        }
        // Small files finish before a bar is worth drawing.
        if length < 4 << 20 {
            return;
        }
        if !std::io::stderr().is_terminal() {
            tracing::info!(file = name, bytes = length, "downloading");
            return;
        }
        let b = indicatif::ProgressBar::new(length);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(name.to_owned());
        *bar = Some(b);
    }

    fn set(&self, n: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            b.set_position(n);
        }
    }

    fn finish(&self, ok: bool) {
        if let Some(b) = self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            if ok { b.finish() } else { b.abandon() }
        }
    }
}
