//! `archy-registry`: the origin registry service. The command line is [`registry::cli`].

use std::process::ExitCode;

use clap::Parser as _;

// JSON-heavy signing and verification is allocation-bound; mimalloc makes it markedly faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            registry::cli::exit_code(&err)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = registry::cli::Cli::parse();
    registry::cli::init_logging();
    registry::cli::run(cli)
}
