//! `archy sign FILE`: writes `FILE.minisig` in minisign's format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use crate::cli::KeyPath;
use crate::output::Output;

/// `archy sign`.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The file to sign.
    file: PathBuf,
    /// Trusted comment (signed too) [default: file name and time].
    #[arg(long)]
    trusted_comment: Option<String>,
    #[command(flatten)]
    key: KeyPath,
}

/// Signs `file` with `key` and writes `file.minisig` (0644: a signature is public).
pub fn sign_file(
    key: &catalog::keys::SigningKey,
    file: &std::path::Path,
    comment: Option<String>,
) -> anyhow::Result<PathBuf> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let comment = comment.unwrap_or_else(|| format!("timestamp:{}\tfile:{name}", chrono::Utc::now().timestamp()));
    let sig = catalog::minisign::sign(key, &data, &comment)?;
    let mut out = file.as_os_str().to_owned();
    out.push(".minisig");
    let out = PathBuf::from(out);
    std::fs::write(&out, sig).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Runs `archy sign`.
pub fn run(args: SignArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let key = args.key.load()?;
    let written = sign_file(&key, &args.file, args.trusted_comment)?;
    let public = catalog::minisign::public_key_base64(&key);
    out.print(
        format!("wrote {}\nverify with: minisign -V -P {public} -m {}", written.display(), args.file.display()),
        &json!({"signature": written, "minisign_public_key": public}),
    );
    Ok(ExitCode::SUCCESS)
}
