//! `archy app new|validate|render|sign|test|import`: the app manifest folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use catalog::manifest::{Limits, Manifest};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::KeyPath;
use crate::output::{Output, user_error};

/// `archy app`.
#[derive(Args, Debug)]
pub struct AppArgs {
    #[command(subcommand)]
    action: AppAction,
}

#[derive(Subcommand, Debug)]
enum AppAction {
    /// Scaffold the folder `<dir>/<id>/` for a new app, published under your key's DID: a
    /// manifest that validates, and for the templates that build their image, the files and
    /// `build.sh` that make it pass `archy app test`.
    New {
        /// The app id (lowercase letters, digits, hyphens).
        id: String,
        /// Parent directory [default: current directory].
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The app's shape.
        #[arg(long, value_enum, default_value = "web")]
        template: crate::templates::Template,
        #[command(flatten)]
        key: KeyPath,
    },
    /// Check a manifest folder; lists every problem with its field and a fix.
    Validate {
        /// The app folder holding archy.toml.
        dir: PathBuf,
    },
    /// Show exactly which containers, volumes, networks and labels a node would create.
    Render {
        /// The app folder holding archy.toml.
        dir: PathBuf,
    },
    /// Run the app on the local container engine the way a node does and walk it through
    /// install, health, ports, restart, stop/start, update (data kept), uninstall and purge.
    Test {
        /// The app folder holding archy.toml.
        dir: PathBuf,
        /// An image archive the manifest names (default: `<dir>/dist/<file>` when present).
        #[arg(long = "image", value_name = "FILE")]
        images: Vec<PathBuf>,
        /// Leave the app running after the update step (prints how to remove it).
        #[arg(long)]
        keep: bool,
        /// Seconds each step may wait for the app to become healthy.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Sign the manifest into an envelope file (the publisher's DID signature).
    Sign {
        /// The app folder holding archy.toml.
        dir: PathBuf,
        /// Output file [default: <id>-<version>.archy.json in the current directory, the name
        /// `archy-node install --from DIR` reads].
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        key: KeyPath,
    },
    /// Convert an app of the Umbrel, Runtipi or CasaOS stores, or a compose file, into an app
    /// folder; lists everything it could not map with its file and line.
    Import {
        /// The store's app folder, a compose file, or a folder holding one.
        src: PathBuf,
        /// The app folder to write (created; it must not hold an archy.toml yet).
        #[arg(long)]
        out: PathBuf,
        /// The source's format [default: detected].
        #[arg(long, value_enum)]
        format: Option<crate::import::Format>,
        /// The app id [default: the store's id, the compose project's name, or the folder's name].
        #[arg(long)]
        id: Option<String>,
        /// The app's SPDX license expression (the stores do not carry one).
        #[arg(long)]
        license: Option<String>,
        /// The app's source code URL (`https://`), when the source does not give one.
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        key: KeyPath,
    },
}

/// Loads and validates the manifest in `dir`.
pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
    if !dir.join("archy.toml").is_file() {
        return Err(user_error(format!("{}: no archy.toml in this folder", dir.display())));
    }
    Manifest::from_dir(dir, &Limits::default()).with_context(|| format!("{}/archy.toml", dir.display()))
}

/// Runs `archy app`.
pub fn run(args: AppArgs, out: &Output) -> anyhow::Result<ExitCode> {
    match args.action {
        AppAction::New { id, dir, template, key } => {
            let key = key.load()?;
            let id: catalog::manifest::AppId = id.parse().map_err(|e| user_error(format!("app id: {e}")))?;
            let folder = dir.join(id.as_str());
            if folder.exists() {
                return Err(user_error(format!("{} already exists", folder.display())));
            }
            let files = template
                .write(&folder, &id, &key.did())
                .with_context(|| format!("writing the app folder {}", folder.display()))?;
            let shown = folder.display();
            let next = if template.builds_its_image() {
                format!(
                    "next: `{shown}/build.sh` (builds the image into {shown}/dist/), then `archy app test {shown}`;\n      \
                     edit {shown}/archy.toml and {shown}/image/ to make it yours"
                )
            } else {
                format!(
                    "next: edit {shown}/archy.toml, then `archy app validate {shown}`; `archy app test {shown}` needs \
                     the pinned image on the engine (docker pull it)"
                )
            };
            let list: Vec<String> = files.iter().map(|f| format!("created {}", f.display())).collect();
            out.print(
                format!("{}\n{next}", list.join("\n")),
                &json!({"manifest": files[0], "files": files, "builds_image": template.builds_its_image()}),
            );
        }
        AppAction::Validate { dir } => {
            let m = load(&dir)?;
            out.print(
                format!("ok: {} {} by {} ({} container(s))", m.id, m.version, m.publisher, m.containers.len()),
                &json!({"valid": true, "id": m.id.as_str(), "version": m.version.to_string(), "publisher": m.publisher.to_string()}),
            );
        }
        AppAction::Render { dir } => {
            let m = load(&dir)?;
            let plan = catalog::manifest::render(&m);
            out.print(&plan, &serde_json::to_value(&plan)?);
        }
        AppAction::Test { dir, images, keep, timeout_secs } => {
            let args = super::app_test::TestArgs {
                dir,
                images,
                keep,
                timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
            };
            return super::app_test::run(args, out);
        }
        AppAction::Sign { dir, output, key } => {
            let key = key.load()?;
            let m = load(&dir)?;
            let envelope = catalog::envelope::SignedEnvelope::sign(&m, &key)?;
            let bytes = envelope.to_bytes();
            let verified = envelope.verify(&Limits::default())?;
            let path = output.unwrap_or_else(|| PathBuf::from(catalog::envelope::file_name(&m.id, &m.version)));
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            let hash = verified.manifest_hash().to_hex().to_string();
            out.print(
                format!("wrote {}\nmanifest blake3: {hash}", path.display()),
                &json!({"envelope": path, "manifest_blake3": hash, "envelope_blake3": blake3::hash(&bytes).to_hex().to_string()}),
            );
        }
        AppAction::Import { src, out: dir, format, id, license, source, key } => {
            let key = key.load()?;
            let opts = crate::import::Options { src, format, id, license, source, publisher: key.did().to_string() };
            import(&opts, &dir, out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports, writes the folder, and validates it with the code `archy app validate` runs. A folder
/// that does not validate is still written (so the developer edits it), and the command fails
/// with every problem, each naming its field and the fix.
fn import(opts: &crate::import::Options, dir: &Path, out: &Output) -> anyhow::Result<()> {
    let imported = crate::import::import(opts)?;
    let manifest = crate::import::write(&imported, dir)?;
    let validated = Manifest::from_dir(dir, &Limits::default());
    let report = &imported.report;
    let mut value = serde_json::to_value(report)?;
    value["figure"] = json!(report.figure());
    value["percent"] = json!(report.percent());
    value["manifest"] = json!(manifest);
    value["valid"] = json!(validated.is_ok());
    value["problems"] = match &validated {
        Ok(_) => json!([]),
        Err(errors) => serde_json::to_value(&errors.problems)?,
    };
    let verdict = match &validated {
        Ok(_) => format!("valid: `archy app validate {}` passes", dir.display()),
        Err(_) => format!("not valid yet: edit {} (the problems follow)", manifest.display()),
    };
    out.print(format!("{report}\nwrote {}\n{verdict}", manifest.display()), &value);
    validated
        .map(|_| ())
        .with_context(|| format!("{} was written but does not validate; edit these fields", manifest.display()))
}
