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
//!    time), or the dashboard's session cookie (below). Else 401 and nothing runs (a page of the
//!    dashboard is redirected to its login page instead). On a Unix socket
//!    (`serve.api = "unix:<path>"`, created 0600) the socket's permissions are the
//!    authentication.
//! 4. **Bodies**: a request with a body must say `Content-Type: application/json` (a form or
//!    `text/plain` body, which browsers send without a preflight, is refused with 415). The
//!    dashboard's login form is the one form accepted, and it changes nothing but the session.
//!
//! **The dashboard's sessions** (TCP only). `POST /login` with the API token, or
//! `GET /login/once?code=…` with a one-time code (`archy-node dashboard`; 32 random bytes,
//! single use, 10 minutes), opens a session: 32 random bytes in a cookie
//! `archy_session=…; HttpOnly; SameSite=Strict; Path=/` (12 hours; at most 32 sessions, the
//! oldest closed first; sessions live in memory, so a restart of the node logs everyone out).
//! A request authenticated by the cookie that changes state must also carry the session's CSRF
//! token in `X-Archy-CSRF` (a synchronizer token that the dashboard's pages embed; OWASP CSRF
//! Prevention Cheat Sheet), on top of `SameSite=Strict` and step 2. Secrets are looked up by their
//! BLAKE3 hash, never compared byte by byte, and never logged.
//!
//! Browsers send a cookie to every port of its host, so an app served on the same host name
//! would receive the session. Two rules keep it there: a session is good only from the address
//! it signed in from, and when the API listens on loopback the dashboard lives on the host name
//! `localhost` (the login pages send any other name there; one-time links name it), while apps
//! open on `127.0.0.1` (or their `publish_ip`), another host to the browser.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The dashboard's sessions (TCP only).
    sessions: Option<Arc<Sessions>>,
    /// On loopback, the dashboard's own origin (`localhost:<port>`): its login pages send any
    /// other host name there.
    canonical: Option<String>,
}

/// The address a request came from (`None` on a Unix socket), for the routes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub Option<std::net::IpAddr>);

/// How a request that passed the guard was authenticated; routes find it in the request's
/// extensions.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// The bearer token, or the Unix socket.
    Token,
    /// A dashboard session, with its CSRF token (for the pages to embed).
    Session { csrf: String },
    /// A page anyone may see: the login page and the dashboard's static files.
    Public,
}

/// Why the guard refused a request.
#[derive(Debug)]
pub(crate) enum Refused {
    /// An answer with this status and message.
    Status(StatusCode, String),
    /// A dashboard page without a session: to the login page.
    Login,
    /// A login page reached by another host name than the dashboard's: there.
    Moved(String),
}

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "archy_session";
/// The header carrying a session's CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-archy-csrf";
/// How long a dashboard session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a one-time login code is valid.
const LINK_TTL: Duration = Duration::from_secs(600);
/// Open sessions at most (the oldest is closed for a new one).
const MAX_SESSIONS: usize = 32;
/// Unused one-time codes at most (the oldest is dropped for a new one).
const MAX_LINKS: usize = 8;

/// The dashboard's sessions and one-time login codes, in memory.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    table: std::sync::Mutex<SessionTable>,
}

#[derive(Debug, Default)]
struct SessionTable {
    /// By the BLAKE3 of the cookie value.
    live: HashMap<blake3::Hash, Session>,
    /// One-time codes by their BLAKE3, with when they expire.
    links: HashMap<blake3::Hash, Instant>,
}

#[derive(Debug)]
struct Session {
    csrf: String,
    expires: Instant,
    /// The address it signed in from: the only one it is good from.
    peer: Option<std::net::IpAddr>,
}

/// 32 random bytes as hex.
fn secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

impl Sessions {
    fn table(&self) -> std::sync::MutexGuard<'_, SessionTable> {
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        table.live.retain(|_, s| s.expires > now);
        table.links.retain(|_, expires| *expires > now);
        table
    }

    /// Opens a session for requests from `peer`: the cookie's value.
    pub(crate) fn open(&self, peer: Option<std::net::IpAddr>) -> anyhow::Result<String> {
        let (id, csrf) = (secret()?, secret()?);
        let mut table = self.table();
        while table.live.len() >= MAX_SESSIONS {
            let oldest = table.live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k);
            oldest.map(|k| table.live.remove(&k));
        }
        table.live.insert(blake3::hash(id.as_bytes()), Session { csrf, expires: Instant::now() + SESSION_TTL, peer });
        Ok(id)
    }

    /// The CSRF token of the session `id`, if it is open and `peer` is where it signed in from.
    fn csrf_of(&self, id: &str, peer: Option<std::net::IpAddr>) -> Option<String> {
        self.table().live.get(&blake3::hash(id.as_bytes())).filter(|s| s.peer == peer).map(|s| s.csrf.clone())
    }

    /// Closes the session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.table().live.remove(&blake3::hash(id.as_bytes()));
    }

    /// A new one-time login code.
    pub(crate) fn link(&self) -> anyhow::Result<String> {
        let code = secret()?;
        let mut table = self.table();
        while table.links.len() >= MAX_LINKS {
            let oldest = table.links.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k);
            oldest.map(|k| table.links.remove(&k));
        }
        table.links.insert(blake3::hash(code.as_bytes()), Instant::now() + LINK_TTL);
        Ok(code)
    }

    /// Uses up the one-time code `code`: whether it was valid.
    pub(crate) fn redeem(&self, code: &str) -> bool {
        self.table().links.remove(&blake3::hash(code.as_bytes())).is_some()
    }
}

/// Every value of cookie `name` in the request's `Cookie` headers (another page on this host
/// may have set one of the same name for a narrower path: each is tried).
pub(crate) fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter_map(move |(k, v)| (k == name).then_some(v))
}

/// Whether `path` is a page anyone may request: the login page, a one-time login, the
/// dashboard's static files.
fn public(path: &str) -> bool {
    matches!(path, "/login" | "/login/once") || path.starts_with("/assets/")
}

impl Guard {
    /// The guard of an API listening on TCP at `bound` (the real port, after binding).
    pub(crate) fn tcp(bound: SocketAddr, token: ApiToken) -> Self {
        let port = bound.port();
        let mut hosts = vec![bound.to_string()];
        if bound.ip().is_loopback() || bound.ip().is_unspecified() {
            hosts.extend([format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
        }
        Self {
            token: Some(token),
            hosts,
            any_ip_port: bound.ip().is_unspecified().then_some(port),
            sessions: Some(Arc::new(Sessions::default())),
            canonical: bound.ip().is_loopback().then(|| format!("localhost:{port}")),
        }
    }

    /// The guard of an API on a Unix socket.
    pub(crate) fn unix() -> Self {
        Self { token: None, hosts: Vec::new(), any_ip_port: None, sessions: None, canonical: None }
    }

    /// The dashboard's base URL for links: `http://localhost:<port>` on loopback, else `api`.
    pub(crate) fn dashboard_url(&self, api: &str) -> String {
        self.canonical.as_ref().map_or_else(|| api.to_owned(), |host| format!("http://{host}"))
    }

    /// The dashboard's sessions (`None` on a Unix socket, which no browser reaches).
    pub(crate) fn sessions(&self) -> Option<&Arc<Sessions>> {
        self.sessions.as_ref()
    }

    /// Whether `offered` is the API token (the login form).
    pub(crate) fn token_matches(&self, offered: &str) -> bool {
        self.token.as_ref().is_some_and(|t| t.matches(offered.trim()))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.hosts.contains(&host) {
            return true;
        }
        // An IP literal with the port (`10.0.0.5:7780`, `[fe80::1]:7780`), never a DNS name.
        self.any_ip_port.is_some_and(|port| host.parse::<SocketAddr>().is_ok_and(|a| a.port() == port))
    }

    fn check(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Access, Refused> {
        let status = |code: StatusCode, message: String| Err(Refused::Status(code, message));
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        // 1. Host (TCP only: DNS rebinding needs a browser, and no browser reaches a socket).
        if self.token.is_some() {
            match text(header::HOST) {
                Some(host) if self.host_allowed(host) => {}
                Some(host) => {
                    return status(
                        StatusCode::MISDIRECTED_REQUEST,
                        format!("Host `{}` is not this API", shorten(host)),
                    );
                }
                None => return status(StatusCode::BAD_REQUEST, "a Host header is required".into()),
            }
        }
        // 2. Cross-site, for anything that changes state.
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            if let Some(site @ ("cross-site" | "same-site")) = text(header::HeaderName::from_static("sec-fetch-site")) {
                return status(StatusCode::FORBIDDEN, format!("refused: a {site} request may not change the node"));
            }
            if let Some(origin) = text(header::ORIGIN) {
                let own = origin
                    .strip_prefix("http://")
                    .is_some_and(|host| self.hosts.iter().any(|h| h == host) || self.host_allowed(host));
                if !own {
                    return status(
                        StatusCode::FORBIDDEN,
                        format!("refused: a request from origin `{}` may not change the node", shorten(origin)),
                    );
                }
            }
        }
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || text(header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0");
        let content_type = text(header::CONTENT_TYPE).and_then(|t| t.split(';').next()).map(str::trim);
        // The dashboard's public pages (TCP only): the login form is the one form body taken.
        if self.sessions.is_some() && public(path) {
            // The login pages live on the dashboard's own host name (a cookie set there is not
            // sent to apps on 127.0.0.1).
            if let (Some(canonical), false) = (&self.canonical, path.starts_with("/assets/")) {
                let host = text(header::HOST).unwrap_or_default().to_ascii_lowercase();
                if host != *canonical {
                    let query = if *method == Method::GET {
                        query.map(|q| format!("?{q}")).unwrap_or_default()
                    } else {
                        String::new()
                    };
                    let path = if *method == Method::GET { path } else { "/login" };
                    return Err(Refused::Moved(format!("http://{canonical}{path}{query}")));
                }
            }
            let form = content_type.is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
            if has_body && !(path == "/login" && form) {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the login form is application/x-www-form-urlencoded".into(),
                );
            }
            return Ok(Access::Public);
        }
        // 3. Credentials: the token, or a dashboard session (with its CSRF token to change state).
        let mut access = Access::Token;
        if let Some(token) = &self.token {
            let offered = text(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
            let session = || {
                let sessions = self.sessions.as_ref()?;
                cookies(headers, SESSION_COOKIE).find_map(|id| sessions.csrf_of(id, peer))
            };
            if offered.is_some_and(|t| token.matches(t.trim())) {
            } else if let Some(csrf) = session() {
                let sent = text(header::HeaderName::from_static(CSRF_HEADER));
                if !safe && sent.is_none_or(|sent| blake3::hash(sent.as_bytes()) != blake3::hash(csrf.as_bytes())) {
                    return status(
                        StatusCode::FORBIDDEN,
                        "refused: a dashboard request that changes the node must carry its page's CSRF token".into(),
                    );
                }
                access = Access::Session { csrf };
            } else if !path.starts_with("/v1/") && safe {
                return Err(Refused::Login);
            } else {
                return status(
                    StatusCode::UNAUTHORIZED,
                    "send `Authorization: Bearer <token>` with the token of <data>/api.token (`archy-node api-token`)"
                        .into(),
                );
            }
        }
        // 4. Bodies are JSON.
        if has_body && !content_type.is_some_and(|t| t.eq_ignore_ascii_case("application/json")) {
            return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "request bodies must be application/json".into());
        }
        Ok(access)
    }
}

/// Stranger-supplied header text in an answer: short, printable.
fn shorten(s: &str) -> String {
    s.chars().take(100).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The middleware: refuses a request that fails the [`Guard`] before any route runs, and tells
/// the routes how the request was authenticated ([`Access`]).
pub(crate) async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    match guard.check(request.method(), request.uri().path(), request.uri().query(), request.headers(), peer) {
        Ok(access) => {
            request.extensions_mut().insert(access);
            request.extensions_mut().insert(Peer(peer));
            next.run(request).await
        }
        Err(Refused::Login) => axum::response::Redirect::to("/login").into_response(),
        Err(Refused::Moved(to)) => axum::response::Redirect::to(&to).into_response(),
        Err(Refused::Status(status, message)) => {
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

    const API: &str = "/v1/installed";
    const LOCAL: Option<std::net::IpAddr> = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    fn code(r: Result<Access, Refused>) -> StatusCode {
        match r {
            Err(Refused::Status(status, _)) => status,
            Err(Refused::Login | Refused::Moved(_)) => StatusCode::SEE_OTHER,
            Ok(_) => StatusCode::OK,
        }
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
        assert!(g.check(&Method::GET, API, None, &ok, LOCAL).is_ok());
        let no_token = headers(&[("host", "localhost:7780")]);
        assert_eq!(code(g.check(&Method::GET, API, None, &no_token, LOCAL)), StatusCode::UNAUTHORIZED);
        let wrong = headers(&[("host", "localhost:7780"), ("authorization", "Bearer 00")]);
        assert_eq!(code(g.check(&Method::GET, API, None, &wrong, LOCAL)), StatusCode::UNAUTHORIZED);
        let rebound = headers(&[("host", "evil.example:7780"), ("authorization", &auth)]);
        assert_eq!(code(g.check(&Method::GET, API, None, &rebound, LOCAL)), StatusCode::MISDIRECTED_REQUEST);
        let cross = headers(&[("host", "localhost:7780"), ("authorization", &auth), ("sec-fetch-site", "cross-site")]);
        assert_eq!(code(g.check(&Method::POST, API, None, &cross, LOCAL)), StatusCode::FORBIDDEN);
        assert!(g.check(&Method::GET, API, None, &cross, LOCAL).is_ok(), "reading is not changing");
        let origin =
            headers(&[("host", "localhost:7780"), ("authorization", &auth), ("origin", "http://localhost:3000")]);
        assert_eq!(code(g.check(&Method::DELETE, API, None, &origin, LOCAL)), StatusCode::FORBIDDEN);
        let own = headers(&[("host", "localhost:7780"), ("authorization", &auth), ("origin", "http://localhost:7780")]);
        assert!(g.check(&Method::POST, API, None, &own, LOCAL).is_ok());
        let text = headers(&[
            ("host", "localhost:7780"),
            ("authorization", &auth),
            ("content-type", "text/plain"),
            ("content-length", "2"),
        ]);
        assert_eq!(code(g.check(&Method::POST, API, None, &text, LOCAL)), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let json = headers(&[
            ("host", "localhost:7780"),
            ("authorization", &auth),
            ("content-type", "application/json; charset=utf-8"),
            ("content-length", "2"),
        ]);
        assert!(g.check(&Method::POST, API, None, &json, LOCAL).is_ok());
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

    #[test]
    fn a_session_reads_but_changes_state_only_with_its_csrf_token() {
        let (g, _) = guard();
        let sessions = g.sessions().unwrap().clone();
        let id = sessions.open(LOCAL).unwrap();
        let cookie = format!("theme=dark; {SESSION_COOKIE}={id}");
        let read = headers(&[("host", "localhost:7780"), ("cookie", &cookie)]);
        let csrf = match g.check(&Method::GET, "/", None, &read, LOCAL) {
            Ok(Access::Session { csrf }) => csrf,
            other => panic!("a session reads: {other:?}"),
        };
        assert_eq!(code(g.check(&Method::POST, API, None, &read, LOCAL)), StatusCode::FORBIDDEN, "no CSRF token");
        let wrong = headers(&[("host", "localhost:7780"), ("cookie", &cookie), (CSRF_HEADER, "00")]);
        assert_eq!(code(g.check(&Method::POST, API, None, &wrong, LOCAL)), StatusCode::FORBIDDEN, "a wrong CSRF token");
        let right = headers(&[("host", "localhost:7780"), ("cookie", &cookie), (CSRF_HEADER, &csrf)]);
        assert!(g.check(&Method::POST, API, None, &right, LOCAL).is_ok());
        // The cookie is good only from the address that signed in (an app on this host that
        // got it replays it from elsewhere).
        let elsewhere = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(172, 17, 0, 2)));
        assert_eq!(code(g.check(&Method::GET, "/", None, &read, elsewhere)), StatusCode::SEE_OTHER);
        assert_eq!(code(g.check(&Method::POST, API, None, &right, elsewhere)), StatusCode::UNAUTHORIZED);
        // A second cookie of the same name (set by a page for a narrower path) hides nothing.
        let shadowed = format!("{SESSION_COOKIE}=junk; {SESSION_COOKIE}={id}");
        let both = headers(&[("host", "localhost:7780"), ("cookie", &shadowed)]);
        assert!(matches!(g.check(&Method::GET, "/", None, &both, LOCAL), Ok(Access::Session { .. })));
        // The token of one session is not another's.
        let other = sessions.open(LOCAL).unwrap();
        let theirs = headers(&[
            ("host", "localhost:7780"),
            ("cookie", &format!("{SESSION_COOKIE}={other}")),
            (CSRF_HEADER, &csrf),
        ]);
        assert_eq!(code(g.check(&Method::POST, API, None, &theirs, LOCAL)), StatusCode::FORBIDDEN);
        // A forged or closed session is no session: pages go to the login page, the API says 401.
        sessions.close(&id);
        assert_eq!(code(g.check(&Method::GET, "/", None, &read, LOCAL)), StatusCode::SEE_OTHER);
        assert_eq!(code(g.check(&Method::GET, API, None, &read, LOCAL)), StatusCode::UNAUTHORIZED);
        assert_eq!(code(g.check(&Method::POST, API, None, &right, LOCAL)), StatusCode::UNAUTHORIZED);
        // Cross-site requests stay refused whatever the cookie.
        let id = sessions.open(LOCAL).unwrap();
        let csrf = sessions.csrf_of(&id, LOCAL).unwrap();
        let cross = headers(&[
            ("host", "localhost:7780"),
            ("cookie", &format!("{SESSION_COOKIE}={id}")),
            (CSRF_HEADER, &csrf),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(code(g.check(&Method::POST, API, None, &cross, LOCAL)), StatusCode::FORBIDDEN);
    }

    #[test]
    fn the_login_page_takes_a_form_and_nothing_else_is_public() {
        let (g, t) = guard();
        let form = headers(&[
            ("host", "localhost:7780"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "70"),
        ]);
        assert!(matches!(g.check(&Method::POST, "/login", None, &form, LOCAL), Ok(Access::Public)));
        assert_eq!(code(g.check(&Method::POST, "/logout", None, &form, LOCAL)), StatusCode::UNAUTHORIZED);
        assert_eq!(code(g.check(&Method::POST, API, None, &form, LOCAL)), StatusCode::UNAUTHORIZED);
        let evil = headers(&[
            ("host", "localhost:7780"),
            ("origin", "http://evil.example"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "70"),
        ]);
        assert_eq!(code(g.check(&Method::POST, "/login", None, &evil, LOCAL)), StatusCode::FORBIDDEN, "login CSRF");
        let rebound = headers(&[("host", "evil.example:7780")]);
        assert_eq!(code(g.check(&Method::GET, "/login", None, &rebound, LOCAL)), StatusCode::MISDIRECTED_REQUEST);
        // On loopback the login pages live on `localhost`, another host than the apps' 127.0.0.1.
        let by_ip = headers(&[("host", "127.0.0.1:7780")]);
        match g.check(&Method::GET, "/login/once", Some("code=abc"), &by_ip, LOCAL) {
            Err(Refused::Moved(to)) => assert_eq!(to, "http://localhost:7780/login/once?code=abc"),
            other => panic!("{other:?}"),
        }
        assert_eq!(g.dashboard_url("http://127.0.0.1:7780"), "http://localhost:7780");
        assert!(g.token_matches(&t) && !g.token_matches("00") && !g.token_matches(""));
        // On a Unix socket there is no dashboard: nothing is public.
        let unix = Guard::unix();
        assert!(unix.sessions().is_none());
        assert!(matches!(unix.check(&Method::GET, "/v1/status", None, &HeaderMap::new(), None), Ok(Access::Token)));
    }

    #[test]
    fn a_one_time_code_works_once() {
        let sessions = Sessions::default();
        let code = sessions.link().unwrap();
        assert!(!sessions.redeem("not a code"));
        assert!(sessions.redeem(&code));
        assert!(!sessions.redeem(&code), "used up");
        let codes: Vec<String> = (0..MAX_LINKS + 2).map(|_| sessions.link().unwrap()).collect();
        assert!(!sessions.redeem(&codes[0]), "the oldest is dropped past the limit");
        assert!(sessions.redeem(codes.last().unwrap()));
        for _ in 0..MAX_SESSIONS + 3 {
            sessions.open(LOCAL).unwrap();
        }
        assert_eq!(sessions.table().live.len(), MAX_SESSIONS);
    }
}
