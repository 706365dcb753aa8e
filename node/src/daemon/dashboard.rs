//! The operator's dashboard, served by `archy-node run` beside its local API (TCP only: no
//! browser reaches a Unix socket). Server-rendered pages (maud) and one small script
//! (`/assets/dashboard.js`) that calls the same JSON API as `archy-node api`:
//!
//! | page | shows |
//! |---|---|
//! | `/login` | the login form (the API token); `/login/once?code=…` is a one-time link |
//! | `/` | installed apps with live state and health, their actions; catalog freshness, origin reachability, peers, the container engine; equivocation evidence and a split view of the origin's log as red banners |
//! | `/catalog` | the origin's apps and the Nostr apps apart, each with what its install would grant and an install button (asking for the grants the policy needs first) and live progress |
//! | `/apps/{id}` | one installed app: containers, actions, purge (typing the id), logs |
//! | `/trust` | the Nostr install policy and the trust seeds, editable |
//!
//! Every page passes the local API's guard first ([`crate::local_api`]): Host, cross-site,
//! a session cookie (else to `/login`), and for anything that changes the node the session's
//! CSRF token, which each page carries in `<meta name="archy-csrf">` for the script. Pages
//! forbid inline scripts, other origins and framing (CSP, `X-Frame-Options: DENY`), and send
//! no referrer to other sites. Everything that comes from a manifest or a relay is escaped (maud escapes every
//! `(value)`).
//!
//! JSON routes added for the dashboard (bearer token or session, like every `/v1/` route):
//! `POST /v1/dashboard/link` (a one-time login link), `GET`/`PUT /v1/nostr/policy`,
//! `POST /v1/grants/{app}`.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};

use super::{Daemon, Lifecycle};
use crate::catalog::NodeCatalog;
use crate::local_api::{Access, Guard, Peer, SESSION_COOKIE, cookies};
use crate::orchestrator::api::ApiError;
use crate::orchestrator::{AppState, AppStatus, Orchestrator};
use catalog::manifest::Manifest;

const STYLE: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");

/// The dashboard's state: the node, the guard (its sessions and token), the API's own URL.
pub(super) struct Dashboard {
    pub(super) daemon: Arc<Daemon>,
    pub(super) guard: Arc<Guard>,
    pub(super) url: String,
}

type Dash = State<Arc<Dashboard>>;

/// The dashboard's routes (pages, static files, and the JSON routes it adds).
pub(super) fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/catalog", get(catalog))
        .route("/apps/{app}", get(app_page))
        .route("/trust", get(trust))
        .route("/login", get(login_page).post(login))
        .route("/login/once", get(login_once))
        .route("/logout", post(logout))
        .route("/assets/dashboard.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }))
        .route(
            "/assets/dashboard.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        )
        .route("/v1/dashboard/link", post(link))
        .route("/v1/nostr/policy", get(policy_get).put(policy_put))
        .route("/v1/grants/{app}", post(grant))
        .with_state(dashboard)
}

impl Dashboard {
    /// The orchestrator, once the container engine answered.
    fn orchestrator(&self) -> Option<Arc<Orchestrator>> {
        match &*self.daemon.lifecycle.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Lifecycle::Ready(_, o) => Some(o.clone()),
            Lifecycle::Waiting(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions.

/// `Set-Cookie` for a new session.
fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200")
}

/// Into the dashboard with a new session, good from `peer` only.
fn enter(dash: &Dashboard, peer: Peer) -> Response {
    match dash.guard.sessions().map(|s| s.open(peer.0)) {
        Some(Ok(id)) => {
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = session_cookie(&id).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Some(Err(e)) => ApiError::Internal(e).into_response(),
        None => (StatusCode::NOT_FOUND, "no dashboard on a Unix socket").into_response(),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login_page() -> Response {
    login_form(StatusCode::OK, None)
}

fn login_form(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        main.login {
            h1 { "archy node" }
            p { "Sign in with the node's API token (" code { "archy-node api-token" } "), or open the one-time link "
                code { "archy-node dashboard" } " prints." }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/login" {
                label for="token" { "API token" }
                input #token name="token" type="password" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    respond(status, layout("Sign in", None, None, body))
}

async fn login(State(dash): Dash, Extension(peer): Extension<Peer>, Form(form): Form<LoginForm>) -> Response {
    if dash.guard.token_matches(&form.token) {
        tracing::info!("dashboard: signed in with the API token");
        return enter(&dash, peer);
    }
    tracing::info!("dashboard: a sign-in with a wrong token was refused");
    // A guess costs a second (the token is 256 random bits; this only keeps logs readable).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    login_form(StatusCode::UNAUTHORIZED, Some("That is not this node's API token."))
}

#[derive(Deserialize)]
struct OnceQuery {
    #[serde(default)]
    code: String,
}

async fn login_once(
    State(dash): Dash,
    Extension(peer): Extension<Peer>,
    method: axum::http::Method,
    Query(q): Query<OnceQuery>,
) -> Response {
    // A HEAD (a link preview) uses nothing up.
    if method == axum::http::Method::HEAD {
        return StatusCode::OK.into_response();
    }
    if dash.guard.sessions().is_some_and(|s| s.redeem(&q.code)) {
        tracing::info!("dashboard: signed in with a one-time link");
        return enter(&dash, peer);
    }
    login_form(
        StatusCode::UNAUTHORIZED,
        Some(
            "This login link is used up or expired (links work once, for 10 minutes): run `archy-node dashboard` again.",
        ),
    )
}

async fn logout(State(dash): Dash, headers: HeaderMap) -> Response {
    if let Some(sessions) = dash.guard.sessions() {
        cookies(&headers, SESSION_COOKIE).for_each(|id| sessions.close(id));
    }
    let mut response = Json(serde_json::json!({ "ok": true })).into_response();
    let gone = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = gone.parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /v1/dashboard/link`: a one-time login link (`archy-node dashboard`).
#[utoipa::path(post, path = "/v1/dashboard/link", tag = "dashboard",
    summary = "A one-time link that signs a browser into the dashboard (single use, 10 minutes)",
    responses((status = 200, description = "`{\"url\": \"http://…/login/once?code=…\", \"valid_secs\": 600}`", body = Object), crate::orchestrator::api::Denied))]
async fn link(State(dash): Dash, Extension(access): Extension<Access>) -> Result<Response, ApiError> {
    // Only the token makes links: a session (perhaps a stolen one) cannot mint itself new ones.
    if !matches!(access, Access::Token) {
        return Err(ApiError::Forbidden("one-time links are made with the API token (`archy-node dashboard`)".into()));
    }
    let sessions = dash.guard.sessions().ok_or_else(|| ApiError::BadRequest("no dashboard on a Unix socket".into()))?;
    let code = sessions.link().map_err(ApiError::Internal)?;
    let mut base = dash.guard.dashboard_url(&dash.url);
    // Listening on every address: the link names this host's LAN address (a browser cannot open
    // 0.0.0.0), as `[host] ip` in config.toml sets it or as detected.
    if let Some(port) = base.strip_prefix("http://0.0.0.0:").or_else(|| base.strip_prefix("http://[::]:")) {
        let overrides = dash.orchestrator().map(|o| o.config().host.clone()).unwrap_or_default();
        let ip = crate::orchestrator::facts::HostFacts::detect(&overrides).host_ip;
        base = format!("http://{ip}:{port}");
    }
    Ok(Json(serde_json::json!({ "url": format!("{base}/login/once?code={code}"), "valid_secs": 600 })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Layout.

/// The headers every dashboard page carries: scripts and styles from here only, no inline
/// script, nothing framed, no referrer to other sites (browsers then still send this origin in
/// `Origin`, which the guard checks), never cached.
fn respond(status: StatusCode, markup: Markup) -> Response {
    let policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                  form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(markup.into_string()),
    )
        .into_response()
}

/// The page around `body`; `csrf` and `nav` for signed-in pages.
fn layout(title: &str, csrf: Option<&str>, nav: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(csrf) = csrf { meta name="archy-csrf" content=(csrf); }
                title { (title) " · archy node" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body {
                @if let Some(current) = nav {
                    header.top {
                        a.brand href="/" { "archy node" }
                        nav aria-label="Dashboard" {
                            @for (href, name) in [("/", "Apps"), ("/catalog", "Catalog"), ("/trust", "Trust")] {
                                @if href == current { a href=(href) aria-current="page" { (name) } }
                                @else { a href=(href) { (name) } }
                            }
                        }
                        button.link #logout type="button" { "Sign out" }
                    }
                }
                (body)
            }
        }
    }
}

/// The CSRF token of a signed-in request (pages are reached only through a session or the token).
fn csrf_of(access: &Access) -> &str {
    match access {
        Access::Session { csrf } => csrf,
        _ => "",
    }
}

/// A page's answer when the app lifecycle is not up yet.
fn engine_waiting(d: &Daemon) -> Option<String> {
    match &*d.lifecycle.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Lifecycle::Waiting(why) => Some(format!("The container engine does not answer ({why}); retrying.")),
        Lifecycle::Ready(..) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Pages.

/// `1 relay`, `2 relays`.
fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `/`: installed apps and the node's state.
async fn overview(State(dash): Dash, Extension(access): Extension<Access>, headers: HeaderMap) -> Response {
    let data = dash.daemon.data.clone();
    let status = tokio::task::spawn_blocking(move || crate::status::Status::gather(&data)).await;
    let Ok(status) = status else { return ApiError::Internal(anyhow::anyhow!("status task failed")).into_response() };
    let engine = dash.daemon.engine.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let orchestrator = dash.orchestrator();
    let (apps, apps_error) = match &orchestrator {
        Some(o) => match o.status().await {
            Ok(apps) => (apps, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        },
        None => (Vec::new(), engine_waiting(&dash.daemon)),
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
    let body = html! {
        @if let Some(view) = &status.log.split_view {
            div.banner.danger role="alert" {
                strong { "The origin's transparency log showed a split view: " (view.why) "." }
                " It signed two histories that can't both be true, so it may be showing other nodes another catalog. New catalogs are refused and nothing is installed until you run "
                code { "archy-node trust-origin-again" } " (it shows both signed checkpoints). Seen " (view.seen_at.format("%Y-%m-%d %H:%M UTC")) " from " (view.from) "."
            }
        }
        @if !status.equivocation.is_empty() {
            div.banner.danger role="alert" {
                strong { "The origin showed this node two different catalogs for the same version." }
                " This is evidence of a compromised or dishonest origin: the node keeps its current catalog. Evidence: "
                @for p in &status.equivocation { code { (p.display()) } " " }
            }
        }
        main {
            h1 { "Installed apps" }
            @if let Some(e) = &apps_error { p.error role="alert" { (e) } }
            section #progress.progress hidden aria-live="polite" { h2 { "Progress" } p #progress-state {} ol #progress-steps {} }
            @if apps.is_empty() && apps_error.is_none() {
                p { "No app is installed yet. " a href="/catalog" { "Browse the catalog" } "." }
            } @else {
                div.scroll { table.apps {
                    thead { tr { th { "App" } th { "Version" } th { "State" } th { "Containers" } th { "Actions" } } }
                    tbody { @for app in &apps { (app_row(&dash, orchestrator.as_deref(), app, &host)) } }
                } }
            }
            h2 { "This node" }
            dl.facts {
                dt { "Catalog" }
                dd {
                    @match &status.catalog {
                        Some(c) => {
                            (c.apps) " apps, timestamp version " (c.timestamp_version) ", from " (c.source)
                            ", verified " (time(&c.synced_at))
                            @if let Some(expires) = &c.expires { "; expires " (time(expires)) }
                            @if c.expired { " " strong.bad { "EXPIRED" } }
                        }
                        None => { "no verified catalog yet" }
                    }
                }
                dt { "Origin" }
                dd {
                    (status.origin_url.as_deref().unwrap_or("none configured"))
                    @if let Some(last) = &status.last_sync {
                        @if last.origin_reachable { " — " span.good { "reachable" } } @else { " — " span.bad { "unreachable" } }
                        @if let Some(at) = &last.at { " at the last round (" (time(at)) ")" }
                    }
                }
                dt { "Last round" }
                dd {
                    @match &status.last_sync {
                        Some(last) => {
                            (last.bytes_downloaded) " bytes downloaded"
                            @if let Some(source) = &last.source { " from " (source) }
                            @for e in &last.errors { br; span.bad { (e) } }
                        }
                        None => { "none yet" }
                    }
                }
                dt { "Peers" }
                dd { (count(status.peers.len(), "peer")) " configured" @for p in &status.peers { br; code { (p) } } }
                dt { "Container engine" }
                dd {
                    @match &engine {
                        Some(e) if e.reachable => { span.good { "answers" } }
                        Some(e) => { span.bad { "does not answer" } " since " (time(&e.since)) }
                        None => { "not checked yet" }
                    }
                }
                dt { "Nostr" }
                dd {
                    (count(status.nostr.relays.len(), "relay")) ", " (count(status.nostr.seeds, "trust seed"))
                    ", minimum score " (status.nostr.min_score)
                }
            }
        }
    };
    respond(StatusCode::OK, layout("Apps", Some(csrf_of(&access)), Some("/"), body))
}

/// One installed app's row: state, containers, an open link, its actions.
fn app_row(dash: &Dashboard, o: Option<&Orchestrator>, app: &AppStatus, host: &str) -> Markup {
    let open = o.and_then(|o| open_url(o, &app.app, host));
    let _ = dash;
    html! {
        tr data-app=(app.app) {
            td { a href={ "/apps/" (app.app) } { (app.app) } }
            td { (app.version) }
            td {
                span.state data-state=(app.state.to_string()) { (app.state.to_string()) }
                @if let Some(p) = &app.pending { br; small { (p) } }
                @if let Some(r) = &app.reason { br; small.bad { (r) } }
            }
            td { @for c in &app.containers {
                code { (c.role) } ": " (c.state) @if let Some(h) = &c.health { " (" (h) ")" } br;
            } }
            td.actions { (actions(&app.app, &app.state, open.as_deref())) }
        }
    }
}

/// The lifecycle buttons of an installed app: start when it is stopped, else open, stop and
/// restart; update and uninstall always.
fn actions(app: &str, state: &AppState, open: Option<&str>) -> Markup {
    let stopped = *state == AppState::Stopped;
    let ops: &[&str] = if stopped { &["start", "update"] } else { &["stop", "restart", "update"] };
    html! {
        @if let (Some(url), false) = (open, stopped) {
            a.button href=(url) target="_blank" rel="noopener noreferrer" { "Open" } " "
        }
        @for op in ops { button type="button" data-op=(op) data-app=(app) { (op) } " " }
        button type="button" data-op="uninstall" data-app=(app) { "uninstall" }
    }
}

/// Where the app answers in a browser: its first TCP port on the address it is published on
/// (the host the dashboard was reached by, when published on every address).
fn open_url(o: &Orchestrator, app: &str, host: &str) -> Option<String> {
    let desired = o.installed(app).ok()?;
    let port = desired
        .manifest
        .manifest()
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .find(|p| p.protocol == catalog::manifest::Protocol::Tcp)?
        .host;
    let ip = match o.config().publish_ip_for(app) {
        Some(ip) if ip != "0.0.0.0" && ip != "::" => ip.to_owned(),
        _ => host.to_owned(),
    };
    let ip = if ip.contains(':') && !ip.starts_with('[') { format!("[{ip}]") } else { ip };
    Some(format!("http://{ip}:{port}/"))
}

/// `/apps/{id}`: one installed app, its actions and logs.
async fn app_page(
    State(dash): Dash,
    Extension(access): Extension<Access>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
    let Some(o) = dash.orchestrator() else {
        let why = engine_waiting(&dash.daemon).unwrap_or_default();
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            layout(&app, Some(csrf_of(&access)), Some(""), html! { main { p.error { (why) } } }),
        );
    };
    let statuses = o.status().await.unwrap_or_default();
    let Some(status) = statuses.into_iter().find(|s| s.app == app) else {
        let body = html! { main { h1 { (app) } p { "This app is not installed. " a href="/catalog" { "Browse the catalog" } "." } } };
        return respond(StatusCode::NOT_FOUND, layout(&app, Some(csrf_of(&access)), Some(""), body));
    };
    let logs = match o.logs(&app, None, Some(200), false).await {
        Ok(stream) => {
            use futures_util::StreamExt as _;
            let lines: Vec<String> = stream.filter_map(|l| async move { l.ok() }).collect().await;
            lines.concat()
        }
        Err(e) => format!("(no logs: {e})"),
    };
    let manifest = o.installed(&app).ok().map(|d| d.manifest.manifest().clone());
    let open = open_url(&o, &app, &host);
    let body = html! {
        main {
            h1 { @if let Some(m) = &manifest { (m.title) " " } small { code { (app) } " " (status.version) } }
            @if let Some(m) = &manifest { p { (m.summary) } }
            section #progress.progress hidden aria-live="polite" { h2 { "Progress" } p #progress-state {} ol #progress-steps {} }
            p { "State: " span.state data-state=(status.state.to_string()) { (status.state.to_string()) }
                @if let Some(r) = &status.reason { " — " span.bad { (r) } } }
            p.actions { (actions(&app, &status.state, open.as_deref())) }
            h2 { "Containers" }
            ul { @for c in &status.containers {
                li { code { (c.name) } ": " (c.state) @if let Some(h) = &c.health { " (" (h) ")" } " — " (c.status) }
            } }
            h2 { "Purge" }
            p { "Uninstalls the app " strong { "and deletes its volumes and secrets for good" } ". Type the app id to confirm." }
            p.purge {
                label for="purge-confirm" { "App id" }
                input #purge-confirm type="text" autocomplete="off" data-app=(app);
                button #purge.danger type="button" data-op="purge" data-app=(app) disabled { "Purge " (app) }
            }
            h2 { "Logs " small { "(last 200 lines) " a href={ "/apps/" (app) } { "refresh" } } }
            @if logs.trim().is_empty() { p { "No output yet." } } @else { pre.logs { (logs) } }
        }
    };
    respond(StatusCode::OK, layout(&app, Some(csrf_of(&access)), Some(""), body))
}

/// One app of the catalog page.
struct Offer {
    id: String,
    version: String,
    title: String,
    summary: String,
    publisher: String,
    /// For Nostr apps: the announcing key, the score, why it is held back.
    npub: Option<String>,
    score: Option<f64>,
    unavailable: Option<String>,
    /// What the install creates and grants.
    permissions: Vec<String>,
    /// Grants the node's policy needs first: (what, the `config.toml` entry).
    needs: Vec<(String, String)>,
    installed: bool,
}

/// `/catalog`: the origin's apps and the Nostr apps, apart.
async fn catalog(State(dash): Dash, Extension(access): Extension<Access>) -> Response {
    let o = dash.orchestrator();
    let installed: Vec<String> = match &o {
        Some(o) => o.status().await.unwrap_or_default().into_iter().map(|s| s.app).collect(),
        None => Vec::new(),
    };
    // The catalog and the Nostr view are opened once, and each app's manifest read from them
    // (the install reads them again, and checks everything again).
    type Listing = (String, String, String, String, Option<(String, f64)>, Result<Manifest, String>);
    let data = dash.daemon.data.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let origin = NodeCatalog::open(&data).map(|catalog| {
            let mut seen = std::collections::BTreeSet::new();
            let mut out: Vec<Listing> = Vec::new();
            // Newest version of each app not revoked (the list is by id, newest first).
            for a in catalog.apps().into_iter().filter(|a| a.revoked.is_none()) {
                if seen.insert(a.id.clone()) {
                    let m = catalog.manifest(&a.id, Some(&a.version)).map(|m| m.manifest().clone());
                    out.push((
                        a.id,
                        a.version.to_string(),
                        a.title,
                        a.publisher,
                        None,
                        m.map_err(|e| format!("{e:#}")),
                    ));
                }
            }
            out
        });
        let nostr = data.config().and_then(|config| crate::nostr::NostrView::load(&data, &config)).map(|view| {
            let mut seen = std::collections::BTreeSet::new();
            let mut out: Vec<Listing> = Vec::new();
            for a in view.apps() {
                if !seen.insert(a.id.clone()) {
                    continue;
                }
                let m = match &a.held_back {
                    Some(why) => Err(why.clone()),
                    None => view.resolve(&a.id, None).map(|m| m.manifest().clone()).map_err(|e| e.to_string()),
                };
                out.push((a.id, a.version.to_string(), a.title, a.publisher, Some((a.npub, a.score)), m));
            }
            out
        });
        (origin, nostr)
    })
    .await;
    let Ok((origin, nostr)) = listed else {
        return ApiError::Internal(anyhow::anyhow!("catalog task failed")).into_response();
    };
    let offer = |(id, version, title, publisher, nostr, manifest): &Listing| {
        let mut offer = Offer {
            id: id.clone(),
            version: version.clone(),
            title: title.clone(),
            summary: String::new(),
            publisher: publisher.clone(),
            npub: nostr.as_ref().map(|(npub, _)| npub.clone()),
            score: nostr.as_ref().map(|(_, score)| *score),
            unavailable: None,
            permissions: Vec::new(),
            needs: Vec::new(),
            installed: installed.iter().any(|a| a == id),
        };
        match manifest {
            Ok(m) => {
                offer.summary.clone_from(&m.summary);
                offer.permissions = catalog::manifest::render(m).permissions.iter().map(ToString::to_string).collect();
                // One checkbox per grant, naming every use it covers.
                for r in o.as_ref().map(|o| o.refusals_of(m)).unwrap_or_default() {
                    let what = format!("{}: {}", r.subject, r.permission);
                    match offer.needs.iter_mut().find(|(_, toml)| *toml == r.grant_toml) {
                        Some((uses, _)) => *uses = format!("{uses}; {what}"),
                        None => offer.needs.push((what, r.grant_toml)),
                    }
                }
            }
            Err(e) => offer.unavailable = Some(e.clone()),
        }
        offer
    };
    let (origin_offers, origin_error): (Vec<Offer>, Option<String>) = match &origin {
        Ok(apps) => (apps.iter().map(offer).collect(), None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    // A Nostr app the origin also has is installed from the origin: not offered twice.
    let (nostr_offers, nostr_error): (Vec<Offer>, Option<String>) = match &nostr {
        Ok(apps) => (apps.iter().filter(|a| !origin_offers.iter().any(|o| o.id == a.0)).map(offer).collect(), None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    let waiting = engine_waiting(&dash.daemon);
    let body = html! {
        main {
            h1 { "Catalog" }
            @if let Some(w) = &waiting { p.error role="alert" { (w) } }
            section #progress.progress hidden aria-live="polite" { h2 { "Progress" } p #progress-state {} ol #progress-steps {} }
            h2 { "From the origin" }
            @if let Some(e) = &origin_error { p.error { (e) } }
            div.cards { @for a in &origin_offers { (offer_card(a)) } }
            h2 { "From Nostr" }
            p.hint { "Third-party apps, verified against their publisher's signature, ranked by your trust seeds ("
                a href="/trust" { "policy" } ")." }
            @if let Some(e) = &nostr_error { p.error { (e) } }
            @if nostr_offers.is_empty() && nostr_error.is_none() { p { "No Nostr app is known to this node." } }
            div.cards { @for a in &nostr_offers { (offer_card(a)) } }
        }
    };
    respond(StatusCode::OK, layout("Catalog", Some(csrf_of(&access)), Some("/catalog"), body))
}

fn offer_card(a: &Offer) -> Markup {
    html! {
        article.card #{ "app-" (a.id) } data-app=(a.id) {
            h3 { (a.title) " " small { code { (a.id) } " " (a.version) } }
            @if !a.summary.is_empty() { p { (a.summary) } }
            p.publisher { "Publisher " code.did { (a.publisher) }
                @if let Some(npub) = &a.npub { br; "announced by " code.did { (npub) } }
                @if let Some(score) = a.score { br; "trust score " strong { (format!("{score:.1}")) } }
            }
            @if !a.permissions.is_empty() {
                details { summary { "The install grants" } ul { @for p in &a.permissions { li { code { (p) } } } } }
            }
            @if a.installed {
                p { "Installed. " a href={ "/apps/" (a.id) } { "Manage" } }
            } @else if let Some(why) = &a.unavailable {
                p.bad { "Not installable: " (why) }
            } @else {
                @if !a.needs.is_empty() {
                    fieldset.grants {
                        legend { "This node's policy needs your permission first" }
                        @for (what, toml) in &a.needs {
                            label { input type="checkbox" data-grant=(toml); " " (what) }
                        }
                    }
                }
                button.primary type="button" data-op="install" data-app=(a.id) disabled[!a.needs.is_empty()] {
                    @if a.needs.is_empty() { "Install" } @else { "Grant and install" }
                }
            }
        }
    }
}

/// `/trust`: the Nostr install policy and the seeds.
async fn trust(State(dash): Dash, Extension(access): Extension<Access>) -> Response {
    let policy = match dash.daemon.data.config() {
        Ok(c) => Policy::from(&c),
        Err(e) => return ApiError::Unavailable(format!("{e:#}")).into_response(),
    };
    let lines = |v: &[String]| v.join("\n");
    let body = html! {
        main {
            h1 { "Trust" }
            p { "Apps found on Nostr install only when their publisher passes this policy, in order: "
                strong { "deny" } ", then " strong { "allow" } " (whatever the score), then the " strong { "minimum score" }
                ". Scores come from your seeds: the Nostr keys you trust, and whom they follow and endorse." }
            form #policy.policy {
                label for="seeds" { "Trust seeds (npub1… or hex, one per line)" }
                textarea #seeds name="seeds" rows="4" { (lines(&policy.seeds)) }
                label for="min_score" { "Minimum score (0–100)" }
                input #min_score name="min_score" type="number" min="0" max="100" step="any" value=(policy.min_score);
                label for="allow" { "Always allow (did:key:… or npub1…, one per line)" }
                textarea #allow name="allow" rows="3" { (lines(&policy.allow)) }
                label for="deny" { "Never allow (did:key:… or npub1…, one per line)" }
                textarea #deny name="deny" rows="3" { (lines(&policy.deny)) }
                button.primary type="submit" { "Save" }
                p #policy-result role="status" {}
            }
        }
    };
    respond(StatusCode::OK, layout("Trust", Some(csrf_of(&access)), Some("/trust"), body))
}

// ---------------------------------------------------------------------------------------------
// JSON routes.

/// The Nostr install policy and the trust seeds (`GET`/`PUT /v1/nostr/policy`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Policy {
    /// `[trust] seeds`.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// `[nostr_policy] min_score`.
    pub min_score: f64,
    /// `[nostr_policy] allow`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// `[nostr_policy] deny`.
    #[serde(default)]
    pub deny: Vec<String>,
}

impl From<&crate::config::Config> for Policy {
    fn from(c: &crate::config::Config) -> Self {
        Self {
            seeds: c.trust.seeds.clone(),
            min_score: c.nostr_policy.min_score,
            allow: c.nostr_policy.allow.clone(),
            deny: c.nostr_policy.deny.clone(),
        }
    }
}

/// Entries of a list at most, and bytes of an entry.
const MAX_ENTRIES: usize = 256;
const MAX_ENTRY_BYTES: usize = 200;

impl Policy {
    /// Refuses what the node could not use, naming the entry.
    fn check(&self) -> Result<(), String> {
        if !(self.min_score.is_finite() && (0.0..=100.0).contains(&self.min_score)) {
            return Err(format!("min_score {} is not between 0 and 100", self.min_score));
        }
        for (name, list) in [("seeds", &self.seeds), ("allow", &self.allow), ("deny", &self.deny)] {
            if list.len() > MAX_ENTRIES {
                return Err(format!("{name}: {} entries, at most {MAX_ENTRIES}", list.len()));
            }
            for (i, entry) in list.iter().enumerate() {
                let short: String = entry.chars().take(80).collect();
                if entry.len() > MAX_ENTRY_BYTES {
                    return Err(format!("{name}[{i}] `{short}…` is too long"));
                }
                let npub = crate::nostr::trust::parse_npub(entry).is_ok();
                let did = entry.parse::<catalog::DidKey>().is_ok();
                let fits = if name == "seeds" { npub } else { npub || did };
                if !fits {
                    let expected = if name == "seeds" { "an npub (or 64 hex digits)" } else { "a did:key or an npub" };
                    return Err(format!("{name}[{i}] `{short}` is not {expected}"));
                }
            }
        }
        Ok(())
    }
}

#[utoipa::path(get, path = "/v1/nostr/policy", tag = "dashboard",
    summary = "The Nostr install policy and the trust seeds",
    responses((status = 200, description = "The policy", body = Policy), crate::orchestrator::api::Denied))]
async fn policy_get(State(dash): Dash) -> Result<Response, ApiError> {
    let config = dash.daemon.data.config().map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    Ok(Json(Policy::from(&config)).into_response())
}

/// `PUT /v1/nostr/policy`: writes `[trust] seeds` and `[nostr_policy]` into `config.toml`
/// (the rest of the file, comments included, is kept); the next sync and the next install use it.
#[utoipa::path(put, path = "/v1/nostr/policy", tag = "dashboard",
    summary = "Change the Nostr install policy and the trust seeds (written into config.toml, keeping the rest of it)",
    request_body = Policy,
    responses((status = 200, description = "The policy as saved", body = Policy), crate::orchestrator::api::Denied))]
async fn policy_put(State(dash): Dash, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let mut policy: Policy =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
    for list in [&mut policy.seeds, &mut policy.allow, &mut policy.deny] {
        list.iter_mut().for_each(|e| *e = e.trim().to_owned());
        list.retain(|e| !e.is_empty());
    }
    policy.check().map_err(ApiError::BadRequest)?;
    let path = dash.daemon.data.config_file();
    let written = policy_into_config(&path, &policy);
    tokio::task::spawn_blocking(move || written)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)?;
    tracing::info!(seeds = policy.seeds.len(), min_score = policy.min_score, "dashboard: the Nostr policy was changed");
    Ok(Json(policy).into_response())
}

/// Edits `config.toml` (see [`crate::config::edit_file`]); the result must also be a valid
/// configuration for the orchestrator.
fn edit_config(
    path: &std::path::Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    crate::config::edit_file(path, edit, |text| {
        toml::from_str::<crate::orchestrator::config::NodeConfig>(text).map(|_| ()).map_err(Into::into)
    })
}

/// The table `name` of `doc` (made when missing, as a `[name]` table).
fn table<'a>(doc: &'a mut toml_edit::DocumentMut, name: &str) -> anyhow::Result<&'a mut dyn toml_edit::TableLike> {
    doc.entry(name)
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .ok_or_else(|| anyhow::anyhow!("config.toml: `{name}` is not a table"))
}

fn policy_into_config(path: &std::path::Path, policy: &Policy) -> anyhow::Result<()> {
    let array = |list: &[String]| {
        let mut a = toml_edit::Array::new();
        list.iter().for_each(|e| a.push(e.as_str()));
        toml_edit::value(a)
    };
    edit_config(path, |doc| {
        table(doc, "trust")?.insert("seeds", array(&policy.seeds));
        let nostr = table(doc, "nostr_policy")?;
        nostr.insert("min_score", toml_edit::value(policy.min_score));
        nostr.insert("allow", array(&policy.allow));
        nostr.insert("deny", array(&policy.deny));
        Ok(())
    })
}

/// Body of `POST /v1/grants/{app}`.
/// Adds `grants` (`config.toml` entries such as `{ kind = "lan_ports" }`) to
/// `[apps.<app>] permissions` in the config file at `path`, keeping the rest of the file.
fn grants_into_config(path: &std::path::Path, app: &str, grants: &[String]) -> anyhow::Result<()> {
    edit_config(path, |doc| {
        let apps = doc.entry("apps").or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        });
        let entry = apps
            .as_table_like_mut()
            .ok_or_else(|| anyhow::anyhow!("config.toml: `apps` is not a table"))?
            .entry(app)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        let permissions = entry
            .as_table_like_mut()
            .ok_or_else(|| anyhow::anyhow!("config.toml: `apps.{app}` is not a table"))?
            .entry("permissions")
            .or_insert_with(|| toml_edit::value(toml_edit::Array::new()));
        let array = permissions
            .as_array_mut()
            .ok_or_else(|| anyhow::anyhow!("config.toml: `apps.{app}.permissions` is not an array"))?;
        for g in grants {
            let doc: toml_edit::DocumentMut = format!("grant = {g}").parse()?;
            let value = doc["grant"].as_value().cloned().ok_or_else(|| anyhow::anyhow!("grant `{g}`"))?;
            // A grant already there (or asked twice) is not written again.
            let same = |v: &toml_edit::Value| v.to_string().trim() == value.to_string().trim();
            if !array.iter().any(same) {
                array.push_formatted(value);
            }
        }
        Ok(())
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantBody {
    /// `config.toml` entries, exactly as the catalog offered them (`grant_toml` of a refusal).
    grants: Vec<String>,
}

/// `POST /v1/grants/{app}`: grants `app` what its newest manifest needs and the policy refuses.
/// Only entries the policy asked for are taken (anything else is refused, naming it); they are
/// added to `[apps.<app>] permissions` in `config.toml`, which the next lifecycle operation reads.
#[utoipa::path(post, path = "/v1/grants/{app}", tag = "dashboard",
    summary = "Grant an app what its newest manifest needs and the node's policy refuses",
    description = "Only entries the policy gate asked for are taken (the `grant_toml` of a refusal, e.g. `{ kind = \"lan_ports\" }`); they are added to `[apps.<app>] permissions` in config.toml.",
    params(("app" = String, Path, description = "The app id")),
    request_body = GrantBody,
    responses((status = 200, description = "`{\"granted\": […], \"still_needed\": […]}`", body = Object), crate::orchestrator::api::Denied))]
async fn grant(State(dash): Dash, Path(app): Path<String>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let body: GrantBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
    let o = dash.orchestrator().ok_or_else(|| {
        ApiError::Unavailable(engine_waiting(&dash.daemon).unwrap_or_else(|| "the app lifecycle is not up".into()))
    })?;
    let manifest = o.manifest_of(&app)?;
    // Compared as grants, not as text: an entry means what it parses to, and only a grant the
    // policy refused for this app's newest manifest is taken.
    let asked: Vec<crate::orchestrator::config::Grant> =
        o.refusals_of(manifest.manifest()).into_iter().map(|r| r.grant).collect();
    let needed = || asked.iter().map(|g| g.to_toml()).collect::<Vec<_>>().join(", ");
    let mut granted = Vec::new();
    for entry in &body.grants {
        let short: String = entry.chars().take(120).collect();
        let grant = crate::orchestrator::config::Grant::from_toml(entry)
            .map_err(|e| ApiError::BadRequest(format!("`{short}` is not a grant: {e}")))?;
        if !asked.contains(&grant) {
            return Err(ApiError::BadRequest(format!("`{short}` is not a grant {app} needs; needed: {}", needed())));
        }
        if !granted.contains(&grant) {
            granted.push(grant);
        }
    }
    let path = dash.daemon.data.config_file();
    // Written as the grants serialize (every string escaped), never as the text posted.
    let entries: Vec<String> = granted.iter().map(|g| g.to_toml()).collect();
    let app_id = app.clone();
    let written = entries.clone();
    tokio::task::spawn_blocking(move || grants_into_config(&path, &app_id, &written))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)?;
    tracing::info!(%app, grants = ?entries, "dashboard: permissions granted");
    let still: Vec<String> = asked.iter().filter(|g| !granted.contains(g)).map(|g| g.to_toml()).collect();
    Ok(Json(serde_json::json!({ "granted": entries, "still_needed": still })).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::orchestrator::config::{Grant, NodeConfig};

    #[test]
    fn grants_and_the_policy_are_written_into_the_config_keeping_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let before = "# the operator's own notes\npublish_ip = \"127.0.0.1\"  # loopback only\n\n[origin]\nurl = \"http://o.example\"\n";
        std::fs::write(&path, before).unwrap();
        grants_into_config(&path, "media", &[r#"{ kind = "lan_ports" }"#.to_owned()]).unwrap();
        let dri = r#"{ kind = "device", path = "/dev/dri" }"#.to_owned();
        grants_into_config(&path, "media", &[dri.clone(), dri]).unwrap();
        grants_into_config(&path, "media", &[r#"{ kind = "lan_ports" }"#.to_owned()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(before), "{text}");
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.grants("media"), [Grant::LanPorts, Grant::Device { path: "/dev/dri".into() }]);

        // A grant the orchestrator does not know leaves the file as it was.
        let err = grants_into_config(&path, "media", &[r#"{ kind = "root_please" }"#.to_owned()]).unwrap_err();
        assert!(format!("{err:#}").contains("as edited"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        // The file keeps its permissions; a symlinked one is left to the operator.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let policy = Policy { seeds: vec![], min_score: 12.5, allow: vec![], deny: vec![] };
        policy_into_config(&path, &policy).unwrap();
        let config = crate::config::Config::load(&path).unwrap();
        assert!((config.nostr_policy.min_score - 12.5).abs() < f64::EPSILON);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(before), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        let link = dir.path().join("linked.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = policy_into_config(&link, &policy).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_manifest_s_markup_is_shown_as_text_on_the_catalog() {
        let offer = Offer {
            id: "x".into(),
            version: "1.0.0".into(),
            title: "<script>alert(1)</script>".into(),
            summary: "<b>bold</b>".into(),
            publisher: "did:key:z6Mk\"><script>".into(),
            npub: None,
            score: None,
            unavailable: None,
            permissions: vec!["<i>".into()],
            needs: vec![("<u>".into(), "{ kind = \"x\" }".into())],
            installed: false,
        };
        let html = offer_card(&offer).into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<b>") && !html.contains("<i>") && !html.contains("<u>"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    }
}
