//! The `archy` command-line tool for publishers and registry operators.
//!
//! The binary is a thin shell: `main` parses arguments with [`cli::Cli`] and calls [`run`], which
//! dispatches to one module per subcommand under [`commands`]. Errors carry their cause chain and
//! map to exit codes by class ([`exit_code`]): 0 ok, 1 the user's input or a failed verification,
//! 2 anything unexpected.

pub mod cli;
pub mod commands;
pub mod import;
pub mod nostr_key;
pub mod output;
pub mod paths;
pub mod relays;
pub mod templates;

use std::process::ExitCode;

pub use output::UserError;

/// Runs a parsed command line.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let out = output::Output { json: cli.json };
    match cli.command {
        cli::Command::Key(args) => commands::key::run(args, &out),
        cli::Command::Sign(args) => commands::sign::run(args, &out),
        cli::Command::App(args) => commands::app::run(args, &out),
        cli::Command::Repo(args) => commands::repo::run(args, &out),
        cli::Command::Identity(args) => commands::identity::run(args, &out),
        cli::Command::Publish(args) => commands::publish::run(args, &out),
        cli::Command::Trust(args) => commands::trust::run(args, &out),
    }
}

/// The exit code for an error: 1 when any cause is bad input or a failed verification, 2 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let user = err.chain().any(|cause| {
        cause.is::<UserError>()
            || cause.is::<catalog::manifest::ManifestErrors>()
            || cause.is::<catalog::metadata::MetadataError>()
            || cause.is::<catalog::client::UpdateError>()
            || cause.is::<catalog::repo::RepoError>()
            || cause.is::<catalog::envelope::EnvelopeError>()
            || cause.is::<catalog::keyfile::KeyFileError>()
            || cause.is::<catalog::minisign::MinisignError>()
            || cause.is::<catalog::did::DidError>()
            || cause.is::<nostr_key::NostrKeyError>()
            || cause
                .downcast_ref::<import::ImportError>()
                .is_some_and(|e| !matches!(e, import::ImportError::Write { .. }))
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::AlreadyExists))
    });
    if user { 1 } else { 2 }
}
