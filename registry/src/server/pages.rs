//! The marketplace's pages, server-rendered HTML (no JavaScript needed): `/` lists the origin's
//! apps with search (`q`) and category filters (`category`) as query parameters, 48 to a page
//! (`page`); `/apps/<id>` shows one app: its versions, what a node would create for it (the
//! `archy app render` plan), its permissions and dependencies, and the signature facts this server
//! verified. Everything from a manifest is escaped (maud escapes every `(value)`), links go only
//! to a manifest's `https://` source, and no image is loaded from anywhere.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Registry;
use super::market::{Market, MarketApp};
use super::market_nostr::{NostrApp, NostrMarket};

/// Where a visitor's own node serves its dashboard by default (`serve.api`).
const DASHBOARD: &str = "http://127.0.0.1:7780";

/// Apps on one page of the list.
pub(crate) const PAGE_SIZE: usize = 48;

const STYLE: &str = include_str!("market.css");

/// Longest search text used (longer text is cut; it is repeated in the page's links).
const MAX_QUERY_BYTES: usize = 200;

/// `?q=&category=&page=` of the list (anything unreadable counts as absent).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    page: String,
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An HTML page with the headers every page carries: no script may run, nothing is loaded from
/// elsewhere, forms post only here, and no other site may frame it.
fn html_page(status: StatusCode, markup: Markup) -> Response {
    let policy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    (
        status,
        [(header::CONTENT_SECURITY_POLICY, policy), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        Html(markup.into_string()),
    )
        .into_response()
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · archy" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a.brand href="/" { "archy" }
                    span.tag { "signed apps for your own server" }
                }
                main #main { (body) }
                footer {
                    "Every app here is signed by its publisher and listed in this origin's TUF catalog; "
                    "your node verifies all of it again before it installs anything."
                }
            }
        }
    }
}

/// The letter avatar of an app (no image is fetched from anywhere).
fn avatar(m: &catalog::manifest::Manifest) -> Markup {
    let letter = m.title.chars().next().unwrap_or('?').to_uppercase().collect::<String>();
    html! { span.avatar aria-hidden="true" { (letter) } }
}

/// The app's icon from the catalog (served by this origin, checked against its signed hashes),
/// or its letter avatar.
fn icon(v: &super::market::MarketVersion) -> Markup {
    match &v.icon {
        Some(_) => html! {
            img.icon src={ "/icons/" (v.manifest.id) "/" (v.manifest.version) } alt="" width="48" height="48" loading="lazy";
        },
        None => avatar(&v.manifest),
    }
}

/// `GET /icons/<id>/<version>`: the icon a version lists in the catalog, served only when the
/// stored bytes match the length and hashes its publisher signed. Sent as an image that can run
/// nothing even when opened on its own (an SVG is a document: `sandbox` and no script).
pub(crate) async fn icon_file(
    State(registry): State<Arc<Registry>>,
    UrlPath((id, version)): UrlPath<(String, String)>,
) -> Response {
    let market = match current(&registry).await {
        Ok(m) => m,
        Err(e) => return unavailable(&e),
    };
    let found =
        market.apps.get(&id).and_then(|a| a.versions.iter().find(|v| v.manifest.version.to_string() == version));
    let Some((path, file)) = found.and_then(|v| v.icon.clone()) else {
        return (StatusCode::NOT_FOUND, "no such icon").into_response();
    };
    let stored = registry.repo_dir.join("targets").join(catalog::repo::consistent_target_path(&path, &file));
    let bytes = match tokio::fs::read(&stored).await {
        Ok(b) if file.verify_bytes(&b).is_ok() => b,
        _ => {
            tracing::warn!(%path, "the marketplace does not serve an icon whose stored bytes do not match the catalog");
            return (StatusCode::NOT_FOUND, "no such icon").into_response();
        }
    };
    let media = catalog::repo::icon_media_type(&path).unwrap_or("application/octet-stream");
    (
        [
            (header::CONTENT_TYPE, media),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "max-age=86400, immutable"),
        ],
        bytes,
    )
        .into_response()
}

fn short_did(did: &str) -> String {
    match did.get(..20) {
        Some(head) if did.len() > 28 => format!("{head}…{}", &did[did.len() - 6..]),
        _ => did.to_owned(),
    }
}

/// A link to the list with these filters.
fn list_url(q: &str, category: &str, page: usize) -> String {
    let mut params = Vec::new();
    if !q.is_empty() {
        params.push(format!("q={}", encode(q)));
    }
    if !category.is_empty() {
        params.push(format!("category={}", encode(category)));
    }
    if page > 0 {
        params.push(format!("page={page}"));
    }
    if params.is_empty() { "/".to_owned() } else { format!("/?{}", params.join("&")) }
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The version and category links of an app.
fn meta(m: &catalog::manifest::Manifest) -> Markup {
    html! {
        p.meta {
            span.version { "v" (m.version) }
            @for c in &m.categories { " " a.category href=(list_url("", c, 0)) { (c) } }
        }
    }
}

/// A card of the list: the picture, the title linking to `page`, the summary, the version and
/// categories, the publisher (and `npub` for a Nostr app), then `more`.
fn card_of(m: &catalog::manifest::Manifest, picture: Markup, page: &str, npub: Option<&str>, more: Markup) -> Markup {
    html! {
        (picture)
        div.body {
            h2 { a href=(page) { (m.title) } }
            p.summary { (m.summary) }
            (meta(m))
            p.publisher title=(m.publisher.to_string()) {
                "by " code aria-label=(m.publisher.to_string()) { (short_did(&m.publisher.to_string())) }
                @if let Some(npub) = npub { " · " code aria-label=(npub) { (short_did(npub)) } }
            }
            (more)
        }
    }
}

/// The head of an app's page: its picture, title, summary, version and categories.
fn app_head(m: &catalog::manifest::Manifest, picture: Markup) -> Markup {
    html! {
        div.app-head {
            (picture)
            div {
                h1 { (m.title) }
                p.summary { (m.summary) }
                (meta(m))
            }
        }
    }
}

/// An app of the origin's catalog; `nostr` names the Nostr key bound to its publisher, if known.
fn card(app: &MarketApp, nostr: Option<&NostrMarket>) -> Markup {
    let v = app.newest();
    let m = &v.manifest;
    let npub = nostr.and_then(|n| n.bound.get(&m.publisher.to_string())).map(String::as_str);
    let more = html! { @if let Some(why) = &v.revoked { p.revoked { "Publisher key revoked: " (why) } } };
    html! { li.card { (card_of(m, icon(v), &format!("/apps/{}", m.id), npub, more)) } }
}

/// The Nostr apps as last read, if the relays were read.
fn nostr_market(registry: &Registry) -> Option<Arc<NostrMarket>> {
    registry.nostr_market.read().ok().and_then(|m| m.clone())
}

fn nostr_card(app: &NostrApp) -> Markup {
    let m = &app.manifest;
    let more = html! { p.trust { "Trust score " strong { (format!("{:.1}", app.score)) } ": " (app.why) } };
    html! { li.card.nostr { (card_of(m, avatar(m), &format!("/nostr/{}", m.id), Some(&app.npub), more)) } }
}

/// `GET /nostr/<id>`: one Nostr app.
pub(crate) async fn nostr_app(State(registry): State<Arc<Registry>>, UrlPath(id): UrlPath<String>) -> Response {
    // An id the origin's catalog has is shown by the origin's page.
    if current(&registry).await.is_ok_and(|m| m.apps.contains_key(&id)) {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/apps/{id}"))]).into_response();
    }
    let Some(app) = nostr_market(&registry).and_then(|n| n.apps.get(&id).cloned()) else {
        let body = html! { h1 { "No Nostr app " code { (id) } } p { a href="/" { "All apps" } } };
        return html_page(StatusCode::NOT_FOUND, page("Not found", body));
    };
    let m = &app.manifest;
    let body = html! {
        (app_head(m, avatar(m)))
        p.trust { "Announced on Nostr. Trust score " strong { (format!("{:.1}", app.score)) } ": " (app.why) "." }
        section.install {
            h2 { "Install" }
            p { "A node installs a Nostr app when its own install policy admits the publisher (its trust seeds, "
                code { "nostr_policy" } "):" }
            pre { code { "archy-node install " (m.id) } }
        }
        (about(m))
        section.signature {
            h2 { "Signature" }
            dl {
                dt { "Publisher" } dd { code { (m.publisher) } }
                dt { "Nostr key" } dd { code { (app.npub) } }
                dt { "Envelope BLAKE3" } dd { code { (app.envelope_blake3) } }
                dt { "Release event" } dd { code { (app.event) } }
            }
        }
    };
    html_page(StatusCode::OK, page(&m.title, body))
}

/// `GET /`: the list.
pub(crate) async fn list(State(registry): State<Arc<Registry>>, Query(query): Query<ListQuery>) -> Response {
    let market = match current(&registry).await {
        Ok(m) => m,
        Err(e) => return unavailable(&e),
    };
    let shown_q = cut(query.q.trim(), MAX_QUERY_BYTES).to_owned();
    let q = shown_q.to_lowercase();
    let category = cut(query.category.trim(), MAX_QUERY_BYTES).to_owned();
    let found: Vec<&MarketApp> = market.apps.values().filter(|a| a.in_category(&category) && a.matches(&q)).collect();
    let nostr = nostr_market(&registry);
    // An id the origin's catalog has is the origin's: a Nostr app never stands beside it.
    let nostr_found: Vec<&NostrApp> = nostr
        .as_ref()
        .map(|n| {
            n.matching(&q, &category)
                .filter(|a| !market.apps.contains_key(a.manifest.id.as_str()))
                .take(PAGE_SIZE)
                .collect()
        })
        .unwrap_or_default();
    let pages = found.len().div_ceil(PAGE_SIZE).max(1);
    let current = query.page.trim().parse::<usize>().unwrap_or(0).min(pages - 1);
    let shown = found.iter().skip(current * PAGE_SIZE).take(PAGE_SIZE);
    let categories = &market.categories;
    let heading = match (q.is_empty(), category.is_empty()) {
        (true, true) => format!("{} apps", found.len()),
        _ => format!("{} of {} apps", found.len(), market.apps.len()),
    };
    let body = html! {
        form.search role="search" method="get" action="/" {
            label for="q" { "Search apps" }
            input #q type="search" name="q" value=(shown_q) placeholder="title, summary or id";
            @if !category.is_empty() { input type="hidden" name="category" value=(category); }
            button type="submit" { "Search" }
        }
        nav.categories aria-label="Categories" {
            a href="/" aria-current=[category.is_empty().then_some("page")] { "All" }
            @for (c, n) in categories {
                " "
                a href=(list_url("", c, 0)) aria-current=[(category == *c).then_some("page")] { (c) " (" (n) ")" }
            }
        }
        h1 { (heading) }
        @if found.is_empty() {
            p.empty { "No app matches." }
        } @else {
            ul.apps { @for app in shown { (card(app, nostr.as_deref())) } }
        }
        @if pages > 1 {
            nav.pages aria-label="Pages" {
                @if current > 0 { a rel="prev" href=(list_url(&shown_q, &category, current - 1)) { "← previous" } }
                " page " (current + 1) " of " (pages) " "
                @if current + 1 < pages { a rel="next" href=(list_url(&shown_q, &category, current + 1)) { "next →" } }
            }
        }
        @if !nostr_found.is_empty() {
            section.nostr aria-labelledby="nostr-apps" {
                h1 #nostr-apps { "From Nostr" }
                p.hint {
                    "Apps third-party publishers announced on Nostr, not in this origin's catalog. Each release is "
                    "signed by its publisher's did:key, bound to the Nostr key that announced it, and its manifest "
                    "is hosted and verified here. The score is this marketplace operator's web of trust; your node "
                    "ranks them by your own."
                }
                ul.apps { @for app in &nostr_found { (nostr_card(app)) } }
            }
        }
    };
    html_page(StatusCode::OK, page("Apps", body))
}

/// What the app is (its description, licence and source) and what a node would create for it.
fn about(m: &catalog::manifest::Manifest) -> Markup {
    html! {
        section {
            h2 { "About" }
            @for para in m.description.split("\n\n").filter(|p| !p.trim().is_empty()) { p.description { (para.trim()) } }
            p {
                "Licence " code { (m.license) } " · "
                a href=(m.source) rel="noopener noreferrer nofollow" { "source code" }
            }
        }
        section { (plan(m)) }
    }
}

fn plan(m: &catalog::manifest::Manifest) -> Markup {
    let plan = catalog::manifest::render(m);
    html! {
        h2 { "What a node creates" }
        table {
            thead { tr { th scope="col" { "Container" } th scope="col" { "Image" } th scope="col" { "Ports" } th scope="col" { "Mounts" } } }
            tbody {
                @for c in &plan.containers {
                    tr {
                        td { code { (c.name) } }
                        td { code { (image_text(&c.image)) } }
                        td { @for p in &c.ports { code { (p) } " " } }
                        td { @for m in &c.mounts { code { (mount_text(m)) } br; } }
                    }
                }
            }
        }
        @if !plan.volumes.is_empty() {
            p { "Volumes: " @for vol in &plan.volumes { code { (vol.name) } " " } }
        }
        p { "Network: " code { (plan.network.name) } }
        @if !plan.secrets.is_empty() {
            p { "Secrets generated on the node: " @for s in &plan.secrets { code { (s.name) } " " } }
        }
        h2 { "Permissions" }
        @if plan.permissions.is_empty() {
            p { "None: the app runs with archy's defaults (no host paths, devices or extra capabilities)." }
        } @else {
            p { "The node's operator must grant these before it runs:" }
            ul.permissions { @for p in &plan.permissions { li { code { (p) } } } }
        }
    }
}

fn image_text(image: &catalog::manifest::Image) -> String {
    image.to_string()
}

fn mount_text(mount: &catalog::manifest::Mount) -> String {
    serde_json::to_value(mount)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `GET /apps/<id>`: one app.
pub(crate) async fn app(State(registry): State<Arc<Registry>>, UrlPath(id): UrlPath<String>) -> Response {
    let market = match current(&registry).await {
        Ok(m) => m,
        Err(e) => return unavailable(&e),
    };
    let Some(app) = market.apps.get(&id) else {
        let body = html! { h1 { "No app " code { (id) } } p { a href="/" { "All apps" } } };
        return html_page(StatusCode::NOT_FOUND, page("Not found", body));
    };
    let v = app.newest();
    let m = &v.manifest;
    let npub = nostr_market(&registry).and_then(|n| n.bound.get(&m.publisher.to_string()).cloned());
    let verified_at = market.verified_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let body = html! {
        (app_head(m, icon(v)))
        @if let Some(why) = &v.revoked { p.revoked { "Publisher key revoked: " (why) ". Nodes will not install this version." } }
        section.install {
            h2 { "Install" }
            pre { code { "archy-node install " (m.id) } }
            p {
                "Or in your node's dashboard: "
                a.button href={ (DASHBOARD) "/catalog#app-" (m.id) } rel="noopener noreferrer" { "Open in my node" }
                " (a node on this computer, at its default address " code { (DASHBOARD) } ")."
            }
        }
        (about(m))
        @if !m.dependencies.is_empty() {
            section {
                h2 { "Dependencies" }
                ul { @for (dep, req) in &m.dependencies { li { a href={ "/apps/" (dep) } { (dep) } " " code { (req) } } } }
            }
        }
        section.signature {
            h2 { "Signature" }
            dl {
                dt { "Publisher" } dd { code { (m.publisher) } }
                @if let Some(npub) = &npub { dt { "Nostr key" } dd { code { (npub) } } }
                dt { "Key id (TUF)" } dd { code { (v.keyid) } }
                dt { "Manifest BLAKE3" } dd { code { (v.manifest_hash) } }
                dt { "TUF role" } dd { code { (v.role) } " version " (v.role_version) }
                dt { "Catalog" } dd { "timestamp version " (market.timestamp_version) }
                @if let Some(at) = &verified_at { dt { "Verified" } dd { "by this server at " (at) } }
            }
        }
        section {
            h2 { "Versions" }
            table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Added" } th scope="col" { "Role" } th scope="col" { "Manifest BLAKE3" } } }
                tbody {
                    @for ver in &app.versions {
                        tr {
                            td { (ver.manifest.version) @if ver.revoked.is_some() { " (revoked)" } }
                            td { @if let Some(at) = &ver.added { time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (at.format("%Y-%m-%d")) } } }
                            td { code { (ver.role) } " v" (ver.role_version) }
                            td { code { (ver.manifest_hash.get(..16).unwrap_or_default()) "…" } }
                        }
                    }
                }
            }
        }
    };
    html_page(StatusCode::OK, page(&m.title, body))
}

/// `GET /a/<naddr>`: where a Nostr client's link to an archy release lands (the NIP-89 handler's
/// `web` template is `<marketplace>/a/<bech32>`): the release's address names the app in its `d`
/// tag (`archy:app:<id>`), and the visitor is sent to `/apps/<id>`.
pub(crate) async fn naddr(State(registry): State<Arc<Registry>>, UrlPath(naddr): UrlPath<String>) -> Response {
    use archy_nostr::nostr_sdk::FromBech32 as _;
    use archy_nostr::nostr_sdk::nips::nip19::Nip19Coordinate;
    let app = Nip19Coordinate::from_bech32(&naddr)
        .ok()
        .filter(|c| c.kind.as_u16() == archy_nostr::event::KIND_APP_DATA)
        .and_then(|c| c.identifier.strip_prefix("archy:app:").map(str::to_owned))
        .filter(|id| id.parse::<catalog::manifest::AppId>().is_ok());
    match app {
        Some(id) => {
            // The origin's app when its catalog has one by that id, else the Nostr app's page.
            let in_origin = current(&registry).await.is_ok_and(|m| m.apps.contains_key(&id));
            let on_nostr = nostr_market(&registry).is_some_and(|n| n.apps.contains_key(&id));
            let to = if !in_origin && on_nostr { format!("/nostr/{id}") } else { format!("/apps/{id}") };
            (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
        }
        None => {
            let body = html! { h1 { "Not an archy app release" } p { "The link does not name an archy app. " a href="/" { "All apps" } } };
            html_page(StatusCode::NOT_FOUND, page("Not found", body))
        }
    }
}

/// `GET /style.css`.
pub(crate) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")], STYLE).into_response()
}

fn unavailable(e: &anyhow::Error) -> Response {
    tracing::error!("the marketplace could not read the catalog: {e:#}");
    let body = html! { h1 { "The catalog cannot be read right now" } p { "Try again in a moment." } };
    html_page(StatusCode::SERVICE_UNAVAILABLE, page("Unavailable", body))
}

/// The market for the catalog this server serves now. One build at a time: a request that finds
/// the index out of date waits for the build under way rather than starting its own, and an
/// older build never replaces a newer index.
pub(crate) async fn current(registry: &Arc<Registry>) -> anyhow::Result<Arc<Market>> {
    let cached = |version: u64| -> anyhow::Result<Option<Arc<Market>>> {
        let market = registry.market.lock().map_err(|_| anyhow::anyhow!("market lock poisoned"))?;
        Ok(market.as_ref().filter(|m| m.timestamp_version >= version).cloned())
    };
    let served = || -> anyhow::Result<u64> {
        Ok(registry.cache.0.read().map_err(|_| anyhow::anyhow!("cache lock poisoned"))?.timestamp_version)
    };
    if let Some(m) = cached(served()?)? {
        return Ok(m);
    }
    let _building = registry.market_build.lock().await;
    let version = served()?;
    if let Some(m) = cached(version)? {
        return Ok(m);
    }
    let dir = registry.repo_dir.clone();
    let built = Arc::new(tokio::task::spawn_blocking(move || Market::build(&dir, version, chrono::Utc::now())).await??);
    let mut market = registry.market.lock().map_err(|_| anyhow::anyhow!("market lock poisoned"))?;
    if market.as_ref().is_none_or(|m| m.timestamp_version < built.timestamp_version) {
        *market = Some(built.clone());
    }
    Ok(built)
}
