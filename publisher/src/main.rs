//! `archy`: keys, app manifests, signatures and the origin's repository.

use std::process::ExitCode;

// JSON-heavy verification is allocation-bound; mimalloc makes it markedly faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = publisher::cli::Cli::parse();
    match publisher::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(publisher::exit_code(&err))
        }
    }
}
