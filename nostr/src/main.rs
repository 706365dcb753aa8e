//! `archy-relay`: the embedded Nostr relay as a program of its own ([`archy_nostr::cli`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    archy_nostr::cli::main()
}
