//! `archy-node api-token` and `archy-node api`: the operator's way into a running node's local
//! API, with the token (or the Unix socket) used transparently.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use super::DataArg;
use crate::local_api::ApiToken;
use crate::node_info::read_node_info;

/// `archy-node api-token`: prints the local API's bearer token (creating it if needed).
#[derive(clap::Args)]
pub(super) struct TokenArgs {
    #[command(flatten)]
    data: DataArg,
}

pub(super) fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    println!("{}", ApiToken::load_or_create(&args.data.dir().api_token())?.reveal());
    Ok(ExitCode::SUCCESS)
}

/// `archy-node dashboard`: a one-time login link to the running node's dashboard.
#[derive(clap::Args)]
pub(super) struct DashboardArgs {
    #[command(flatten)]
    data: DataArg,
}

pub(super) fn dashboard(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let data = args.data.dir();
    let info = read_node_info(&data)
        .ok_or_else(|| anyhow::anyhow!("{data}: no running node (no node.json); start `archy-node run`"))?;
    anyhow::ensure!(
        !info.api.starts_with("unix:"),
        "the local API listens on a Unix socket ({}), which no browser reaches: set serve.api to a TCP address \
         (the default is 127.0.0.1:7780) for the dashboard",
        info.api
    );
    let token = ApiToken::load_or_create(&data.api_token())?;
    let (status, body) = over_tcp(&info.api, &token, "POST", "/v1/dashboard/link", None)?;
    anyhow::ensure!(status == 200, "{}: {status}: {}", info.api, body.trim());
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    let url = answer["url"].as_str().ok_or_else(|| anyhow::anyhow!("{}: no link in the answer", info.api))?;
    println!("{url}");
    eprintln!(
        "open it in a browser on this machine within 10 minutes; it signs in once (or sign in with `archy-node api-token`)"
    );
    Ok(ExitCode::SUCCESS)
}

/// `archy-node api METHOD PATH [BODY]`: one request to the running node's local API.
#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    data: DataArg,
    /// GET, POST, PUT or DELETE.
    method: String,
    /// The path, e.g. /v1/installed or /v1/installed/hello-web/restart.
    path: String,
    /// A JSON body, e.g. '{"version": "1.2.0"}'.
    body: Option<String>,
}

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = args.data.dir();
    let info = read_node_info(&data)
        .ok_or_else(|| anyhow::anyhow!("{data}: no running node (no node.json); start `archy-node run`"))?;
    let method = args.method.to_ascii_uppercase();
    anyhow::ensure!(
        matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE"),
        "method `{method}`: GET, POST, PUT or DELETE"
    );
    anyhow::ensure!(args.path.starts_with('/'), "the path starts with `/`, e.g. /v1/status");
    let (status, body) = call(&data, &info, &method, &args.path, args.body)?;
    let ok = (200..300).contains(&status);
    if ok {
        print!("{body}");
    } else {
        eprint!("{status}: {body}");
    }
    if !body.ends_with('\n') {
        if ok { println!() } else { eprintln!() }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One request to the running node `info` of `data`: the status and the body.
pub(super) fn call(
    data: &crate::data_dir::DataDir,
    info: &crate::node_info::NodeInfo,
    method: &str,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(u16, String)> {
    match info.api.strip_prefix("unix:") {
        Some(socket) => over_socket(socket, method, path, body.as_deref()),
        None => over_tcp(&info.api, &ApiToken::load_or_create(&data.api_token())?, method, path, body),
    }
}

fn over_tcp(
    base: &str,
    token: &ApiToken,
    method: &str,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(u16, String)> {
    let request = ureq::request(method, &format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {}", token.reveal()))
        .timeout(std::time::Duration::from_secs(600));
    let result = match body {
        Some(body) => request.set("Content-Type", "application/json").send_string(&body),
        None => request.call(),
    };
    match result {
        Ok(r) => Ok((r.status(), r.into_string()?)),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string().unwrap_or_default())),
        Err(e) => Err(anyhow::anyhow!("{base}: {e}")),
    }
}

/// HTTP/1.0 over the socket: the answer ends when the node closes the connection.
fn over_socket(socket: &str, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| anyhow::anyhow!("connecting to {socket}: {e}"))?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
    if let Some(body) = body {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{socket}: not an HTTP answer"))?;
    Ok((status, body.to_owned()))
}
