//! `archy-node service install|print`: the systemd unit that starts `archy-node run` at boot.
//!
//! The unit (`node/systemd/archy-node.service`) is compiled in; the binary's own path and the
//! data folder are filled in. It orders the node after the engine's socket and hardens the
//! service (no capabilities, no new privileges, a read-only system except the data folder).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

const UNIT: &str = include_str!("../../systemd/archy-node.service");

/// The unit's file name.
const NAME: &str = "archy-node.service";

/// `archy-node service`.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write the unit into systemd's folder (then `systemctl daemon-reload && systemctl
    /// enable --now archy-node`).
    Install {
        #[command(flatten)]
        unit: UnitArgs,
        /// Where systemd reads units from.
        #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
        unit_dir: PathBuf,
        /// Replace a unit file that is already there.
        #[arg(long)]
        force: bool,
    },
    /// Print the unit to standard output.
    Print {
        #[command(flatten)]
        unit: UnitArgs,
    },
}

#[derive(clap::Args)]
struct UnitArgs {
    /// The data folder the service runs on (an absolute path; under /var/lib/ systemd creates
    /// it 0700 as the service's state directory).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/archy-node")]
    data: PathBuf,
    /// The archy-node binary the service runs [default: this one].
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
}

/// The unit for `binary` running on `data`, both absolute paths.
fn unit(binary: &Path, data: &Path) -> anyhow::Result<String> {
    for (what, path) in [("--binary", binary), ("--data", data)] {
        anyhow::ensure!(path.is_absolute(), "{what} {}: give an absolute path", path.display());
        // A unit's ExecStart splits on spaces and expands `%` and `$`: refuse what would change it.
        let text = path.to_str().with_context(|| format!("{what} {}: not UTF-8", path.display()))?;
        anyhow::ensure!(
            !text.chars().any(|c| c.is_whitespace() || matches!(c, '%' | '$' | '"' | '\'' | '\\')),
            "{what} {text}: a path without spaces, quotes, `%`, `$` or `\\` is needed in a unit file"
        );
    }
    let state = match data.strip_prefix("/var/lib") {
        Ok(rest) if rest.components().count() >= 1 => {
            format!("StateDirectory={}\nStateDirectoryMode=0700\n", rest.display())
        }
        _ => String::new(),
    };
    Ok(UNIT
        .replace("@BINARY@", &binary.display().to_string())
        .replace("@DATA@", &data.display().to_string())
        .replace("@STATE@", &state))
}

impl UnitArgs {
    fn render(&self) -> anyhow::Result<String> {
        let binary = match &self.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().context("the path of this archy-node binary")?,
        };
        unit(&binary, &self.data)
    }
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Print { unit } => print!("{}", unit.render()?),
        Action::Install { unit, unit_dir, force } => {
            let text = unit.render()?;
            let path = unit_dir.join(NAME);
            if path.exists() && !force {
                anyhow::bail!("{} already exists: give --force to replace it", path.display());
            }
            std::fs::create_dir_all(&unit_dir).with_context(|| format!("creating {}", unit_dir.display()))?;
            catalog::repo::write_atomic(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                    .with_context(|| format!("setting the mode of {}", path.display()))?;
            }
            println!("wrote {}", path.display());
            if !unit.data.join("config.toml").exists() {
                println!(
                    "first: archy-node init --data {} --root ROOT.json --origin URL   (pin the root)",
                    unit.data.display()
                );
            }
            println!("then:  systemctl daemon-reload && systemctl enable --now archy-node");
            println!("check: systemctl status archy-node; archy-node status --data {}", unit.data.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_names_the_binary_and_data_and_a_state_directory_under_var_lib() {
        let text = unit(Path::new("/usr/local/bin/archy-node"), Path::new("/var/lib/archy-node")).expect("unit");
        assert!(text.contains("ExecStart=/usr/local/bin/archy-node run --data /var/lib/archy-node\n"), "{text}");
        assert!(text.contains("StateDirectory=archy-node\nStateDirectoryMode=0700\n"), "{text}");
        assert!(text.contains("ReadWritePaths=/var/lib/archy-node\n"), "{text}");
        assert!(!text.contains('@'), "every placeholder is filled: {text}");
        let elsewhere = unit(Path::new("/opt/archy-node"), Path::new("/srv/archy")).expect("unit");
        assert!(!elsewhere.contains("StateDirectory"), "{elsewhere}");
    }

    #[test]
    fn paths_that_would_change_the_command_line_are_refused() {
        for data in ["relative", "/var/lib/a b", "/var/lib/%h", "/var/lib/$HOME"] {
            let err = unit(Path::new("/usr/bin/archy-node"), Path::new(data)).expect_err(data);
            assert!(err.to_string().contains("--data"), "{err}");
        }
    }
}
