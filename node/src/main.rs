//! `archy-node`: the node daemon's command line (the commands live in [`node::cli`]).

use std::process::ExitCode;

// JSON-heavy verification is allocation-bound; mimalloc makes it markedly faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    node::cli::main()
}
