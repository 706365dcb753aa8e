//! Who may call the node's local API, and how it listens.
//!
//! The local API (`archy-node run`, `serve.api`) installs, stops, updates and purges apps, so
//! every request is checked before any route sees it, in this order:
//!
//! 1. **Host** (DNS rebinding): on TCP, the `Host` header must name the address the API listens
//!    on, or a loopback name (`localhost`, `127.0.0.1`, `[::1]`) with its port when it listens
//!    on loopback; when it listens on every address, any IP literal with its port. Else 421.
//! 2. **Cross-site requests** (a page in the operator's browser): a state-changing request
//!    (anything but `GET`, `HEAD`, `OPTIONS`) whose `Sec-Fetch-Site` is `cross-site` or
//!    `same-site`, or whose `Origin` is not the API's own origin, is refused with 403.
//! 3. **Credentials**: on TCP, `Authorization: Bearer <token>` with the token of
//!    `<data>/api.token` (32 random bytes, hex, created 0600 on first use; compared in constant
//!    time). Else 401 and nothing runs. On a Unix socket (`serve.api = "unix:<path>"`, created
//!    0600) the socket's permissions are the authentication.
//! 4. **Bodies**: a request with a body must say `Content-Type: application/json` (a form or
//!    `text/plain` body, which browsers send without a preflight, is refused with 415).
//!
//! A browser dashboard can use the same API later with a session cookie (`SameSite=Strict`)
//! checked at step 3; steps 1, 2 and 4 already hold for it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::data_dir::{create_private, read_private};

/// The bearer token of a node's local API.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never printed: it is a credential.
        f.write_str("ApiToken(…)")
    }
}

impl ApiToken {
    /// The token in `path` (`<data>/api.token`), created (32 random bytes as hex, 0600,
    /// written whole or not at all) if the file does not exist. A token file readable by other
    /// users is refused.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the API token: {e}"))?;
            let token = hex::encode(bytes);
            // Another process (the CLI, the daemon) may have made it first: then read that one.
            if create_private(path, format!("{token}\n").as_bytes())? {
                return Ok(Self(token));
            }
        }
        let text = read_private(path)?;
        let token = text.trim();
        // The error must not quote the file's contents.
        anyhow::ensure!(
            token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "{} does not hold an API token (64 hex digits); delete it and a new one is made",
            path.display()
        );
        Ok(Self(token.to_owned()))
    }

    /// The token, for the operator (`archy-node api-token`) and the node's own client.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Whether `offered` is the token, compared in constant time.
    fn matches(&self, offered: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), offered.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// What a request must show before a route sees it.
#[derive(Debug)]
pub(crate) struct Guard {
    /// `None` on a Unix socket: its permissions are the authentication.
    token: Option<ApiToken>,
    /// `Host` values accepted (lower case); empty on a Unix socket (no browser reaches it).
    hosts: Vec<String>,
    /// When listening on every address: any IP literal with this port is accepted too.
    any_ip_port: Option<u16>,
}

impl Guard {
    /// The guard of an API listening on TCP at `bound` (the real port, after binding).
    pub(crate) fn tcp(bound: SocketAddr, token: ApiToken) -> Self {
        let port = bound.port();
        let mut hosts = vec![bound.to_string()];
        if bound.ip().is_loopback() || bound.ip().is_unspecified() {
            hosts.extend([format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
        }
        Self { token: Some(token), hosts, any_ip_port: bound.ip().is_unspecified().then_some(port) }
    }

    /// The guard of an API on a Unix socket.
    pub(crate) fn unix() -> Self {
        Self { token: None, hosts: Vec::new(), any_ip_port: None }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.hosts.contains(&host) {
            return true;
        }
        // An IP literal with the port (`10.0.0.5:7780`, `[fe80::1]:7780`), never a DNS name.
        self.any_ip_port.is_some_and(|port| host.parse::<SocketAddr>().is_ok_and(|a| a.port() == port))
    }

    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        // 1. Host (TCP only: DNS rebinding needs a browser, and no browser reaches a socket).
        if self.token.is_some() {
            match text(header::HOST) {
                Some(host) if self.host_allowed(host) => {}
                Some(host) => {
                    return Err((StatusCode::MISDIRECTED_REQUEST, format!("Host `{}` is not this API", shorten(host))));
                }
                None => return Err((StatusCode::BAD_REQUEST, "a Host header is required".into())),
            }
        }
        // 2. Cross-site, for anything that changes state.
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            if let Some(site @ ("cross-site" | "same-site")) = text(header::HeaderName::from_static("sec-fetch-site")) {
                return Err((StatusCode::FORBIDDEN, format!("refused: a {site} request may not change the node")));
            }
            if let Some(origin) = text(header::ORIGIN) {
                let own = origin
                    .strip_prefix("http://")
                    .is_some_and(|host| self.hosts.iter().any(|h| h == host) || self.host_allowed(host));
                if !own {
                    return Err((
                        StatusCode::FORBIDDEN,
                        format!("refused: a request from origin `{}` may not change the node", shorten(origin)),
                    ));
                }
            }
        }
        // 3. Credentials.
        if let Some(token) = &self.token {
            let offered = text(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
            if !offered.is_some_and(|t| token.matches(t.trim())) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "send `Authorization: Bearer <token>` with the token of <data>/api.token (`archy-node api-token`)"
                        .into(),
                ));
            }
        }
        // 4. Bodies are JSON.
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || text(header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0");
        if has_body {
            let json = text(header::CONTENT_TYPE)
                .and_then(|t| t.split(';').next())
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "request bodies must be application/json".into()));
            }
        }
        Ok(())
    }
}

/// Stranger-supplied header text in an answer: short, printable.
fn shorten(s: &str) -> String {
    s.chars().take(100).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The middleware: refuses a request that fails the [`Guard`] before any route runs.
pub(crate) async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err((status, message)) => {
            tracing::info!(%status, method = %request.method(), path = %request.uri().path(), "local API request refused: {message}");
            let mut response = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn guard() -> (Guard, String) {
        let dir = tempfile::tempdir().unwrap();
        let token = ApiToken::load_or_create(&dir.path().join("api.token")).unwrap();
        let t = token.reveal().to_owned();
        (Guard::tcp("127.0.0.1:7780".parse().unwrap(), token), t)
    }

    #[test]
    fn the_token_file_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.token");
        let token = ApiToken::load_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(ApiToken::load_or_create(&path).unwrap().reveal(), token.reveal());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(ApiToken::load_or_create(&path).unwrap_err().to_string().contains("chmod 600"));
        assert!(!format!("{token:?}").contains(token.reveal()));
    }

    #[test]
    fn each_rule_refuses_with_its_status() {
        let (g, t) = guard();
        let auth = format!("Bearer {t}");
        let ok = headers(&[("host", "127.0.0.1:7780"), ("authorization", &auth)]);
        assert!(g.check(&Method::GET, &ok).is_ok());
        let no_token = headers(&[("host", "localhost:7780")]);
        assert_eq!(g.check(&Method::GET, &no_token).unwrap_err().0, StatusCode::UNAUTHORIZED);
        let wrong = headers(&[("host", "localhost:7780"), ("authorization", "Bearer 00")]);
        assert_eq!(g.check(&Method::GET, &wrong).unwrap_err().0, StatusCode::UNAUTHORIZED);
        let rebound = headers(&[("host", "evil.example:7780"), ("authorization", &auth)]);
        assert_eq!(g.check(&Method::GET, &rebound).unwrap_err().0, StatusCode::MISDIRECTED_REQUEST);
        let cross = headers(&[("host", "localhost:7780"), ("authorization", &auth), ("sec-fetch-site", "cross-site")]);
        assert_eq!(g.check(&Method::POST, &cross).unwrap_err().0, StatusCode::FORBIDDEN);
        assert!(g.check(&Method::GET, &cross).is_ok(), "reading is not changing");
        let origin =
            headers(&[("host", "localhost:7780"), ("authorization", &auth), ("origin", "http://localhost:3000")]);
        assert_eq!(g.check(&Method::DELETE, &origin).unwrap_err().0, StatusCode::FORBIDDEN);
        let own = headers(&[("host", "localhost:7780"), ("authorization", &auth), ("origin", "http://localhost:7780")]);
        assert!(g.check(&Method::POST, &own).is_ok());
        let text = headers(&[
            ("host", "localhost:7780"),
            ("authorization", &auth),
            ("content-type", "text/plain"),
            ("content-length", "2"),
        ]);
        assert_eq!(g.check(&Method::POST, &text).unwrap_err().0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let json = headers(&[
            ("host", "localhost:7780"),
            ("authorization", &auth),
            ("content-type", "application/json; charset=utf-8"),
            ("content-length", "2"),
        ]);
        assert!(g.check(&Method::POST, &json).is_ok());
    }

    #[test]
    fn every_address_accepts_ip_literals_with_the_port_only() {
        let dir = tempfile::tempdir().unwrap();
        let token = ApiToken::load_or_create(&dir.path().join("api.token")).unwrap();
        let g = Guard::tcp("0.0.0.0:7780".parse().unwrap(), token);
        assert!(g.host_allowed("192.0.2.7:7780"));
        assert!(g.host_allowed("[2001:db8::1]:7780"));
        assert!(!g.host_allowed("192.0.2.7:7781"));
        assert!(!g.host_allowed("rebind.example:7780"));
    }
}
