//! Umbrel apps: `umbrel-app.yml` (the metadata) and `docker-compose.yml`, whose `app_proxy`
//! service is Umbrel's own reverse proxy in front of the app's web UI.
//!
//! The proxy is dropped: its `APP_HOST` names the service serving the web UI and `APP_PORT` that
//! service's port, and `umbrel-app.yml`'s `port` is the host port it was reached at, so the three
//! together are the app's published web port.

use super::compose::{Compose, env_entries};
use super::{IconSource, ImportError, State, WebPort, category, semver_of, unmapped_meta};

const META: &str = "umbrel-app.yml";
const COMPOSE: &str = "docker-compose.yml";

/// Reads the metadata into the draft and returns the compose services, without `app_proxy`.
pub(crate) fn read(state: &mut State) -> Result<Compose, ImportError> {
    let meta = state.load(META)?;
    state.meta_file = META.to_owned();
    let mut port = None;
    for (key, v) in meta.as_map().unwrap_or(&[]) {
        let text = v.as_str().map(str::to_owned);
        match (key.text.as_str(), text) {
            ("manifestVersion", _) => {}
            ("id", Some(s)) => state.draft.id = s,
            ("name", Some(s)) => state.draft.title = s,
            ("tagline", Some(s)) => state.draft.summary = s,
            ("description", Some(s)) => state.draft.description = s,
            ("version", Some(s)) => match semver_of(&s) {
                Some(v) => {
                    if v != s {
                        let origin = state.origin(META, key.line);
                        state.note(origin, format!("version `{s}` is written `{v}` (semantic version)"));
                    }
                    state.draft.version = v;
                }
                None => {
                    unmapped_meta(
                        state,
                        META,
                        key,
                        &format!("`{s}` is not a semantic version; write `version` as one (1.2.3)"),
                    );
                }
            },
            ("category", Some(s)) => state.draft.categories.extend(category(&s)),
            ("website", Some(s)) => state.links.push(format!("Website: <{s}>")),
            ("support", Some(s)) => state.links.push(format!("Support: <{s}>")),
            ("developer", Some(s)) => state.links.push(format!("Developed by {s}.")),
            ("repo", Some(s)) if s.starts_with("https://") => state.draft.source = Some(s),
            ("icon", Some(s)) => {
                state.icon = Some(if s.contains("://") { IconSource::Url(s) } else { IconSource::File(s) });
            }
            ("port", Some(s)) => match s.parse::<u16>() {
                Ok(p) if p > 0 => port = Some((p, key.line)),
                _ => unmapped_meta(state, META, key, "not a port number"),
            },
            ("gallery", _) => unmapped_meta(state, META, key, "archy has no screenshots"),
            ("releaseNotes", _) => {
                unmapped_meta(state, META, key, "archy has no release notes; put them in the description")
            }
            ("dependencies", _) => unmapped_meta(
                state,
                META,
                key,
                "these are Umbrel app ids; archy `dependencies` name archy app ids with a version requirement",
            ),
            ("path", _) => unmapped_meta(
                state,
                META,
                key,
                "archy has no path for the web UI; the app is opened at its port's root",
            ),
            ("defaultUsername" | "defaultPassword" | "deterministicPassword", _) => unmapped_meta(
                state,
                META,
                key,
                "archy shows no login details; a generated secret is never shown, so an app whose login is a store secret needs a login of its own",
            ),
            _ => unmapped_meta(state, META, key, "Umbrel store data without a counterpart in the manifest"),
        }
    }
    let root = state.load(COMPOSE)?;
    let mut compose = super::top_level(state, COMPOSE, &root)?;
    if let Some(at) = compose.services.iter().position(|s| s.name == "app_proxy") {
        let proxy = compose.services.remove(at);
        state.dropped.insert(proxy.name.clone());
        app_proxy(state, &proxy, port)?;
    }
    if let Some((host, line)) = port
        && let Some(web) = state.web.as_mut()
    {
        web.host = host;
        web.origin = super::Origin { file: META.into(), line };
    }
    Ok(compose)
}

/// Umbrel's proxy: its `APP_HOST`/`APP_PORT` are the web port; it is not run.
fn app_proxy(
    state: &mut State,
    proxy: &super::compose::Service,
    port: Option<(u16, usize)>,
) -> Result<(), ImportError> {
    let origin = state.origin(COMPOSE, proxy.line);
    state.note(
        origin,
        "`app_proxy` is Umbrel's own proxy and is not run: its APP_HOST and APP_PORT give the web port".to_owned(),
    );
    let mut host = None;
    let mut app_port = None;
    for (key, v) in proxy.node.as_map().unwrap_or(&[]) {
        let before = state.unmapped_len();
        if key.text == "environment" {
            let mut auth = None;
            for (name, value, line) in env_entries(v) {
                let origin = state.origin(COMPOSE, line);
                match (name.as_str(), value) {
                    ("APP_HOST", Some(h)) => host = Some((h, line)),
                    ("APP_PORT", Some(p)) => app_port = Some((p, line)),
                    ("PROXY_AUTH_ADD", value) => auth = Some((value, line)),
                    (other, _) => state.unmapped(
                        origin,
                        format!("app_proxy.environment.{other}"),
                        "a setting of Umbrel's proxy, which archy does not run",
                    ),
                }
            }
            match auth {
                Some((Some(v), _)) if v == "false" => {}
                Some((_, line)) => {
                    let origin = state.origin(COMPOSE, line);
                    state.unmapped(origin, "app_proxy.environment.PROXY_AUTH_ADD", PROXY_AUTH);
                }
                None => {
                    let origin = state.origin(COMPOSE, key.line);
                    state.unmapped(origin, "app_proxy.environment", PROXY_AUTH);
                }
            }
        } else {
            let origin = state.origin(COMPOSE, key.line);
            state.unmapped(
                origin,
                format!("app_proxy.{}", key.text),
                "part of Umbrel's proxy, which archy does not run",
            );
        }
        let mapped = state.unmapped_len() == before;
        state.count(mapped);
    }
    let (Some((host, host_line)), Some((app_port, _))) = (host, app_port) else {
        let origin = state.origin(COMPOSE, proxy.line);
        state.unmapped(
            origin,
            "app_proxy",
            "it has no APP_HOST and APP_PORT, so the web port is unknown; publish it in the service's `ports`",
        );
        return Ok(());
    };
    let container: u16 = app_port.parse().map_err(|_| ImportError::Shape {
        file: COMPOSE.into(),
        line: host_line,
        what: "app_proxy.environment.APP_PORT".into(),
        problem: format!("`{app_port}` is not a port"),
        fix: "write the web UI's port inside its container".into(),
    })?;
    // APP_HOST is `<app id>_<service>_1` (Compose's container name) or the service's name.
    let id = state.draft.id.clone();
    let service = host
        .strip_prefix(&format!("{id}_"))
        .or_else(|| host.strip_prefix(&format!("{id}-")))
        .map(|s| s.trim_end_matches("_1").trim_end_matches("-1"))
        .unwrap_or(&host)
        .to_owned();
    let Some((host_port, _)) = port else {
        let origin = state.origin(META, 1);
        state.unmapped(
            origin,
            "port",
            "umbrel-app.yml has no `port`, so the web port's host side is unknown; publish it in the service's `ports`",
        );
        return Ok(());
    };
    state.web = Some(WebPort {
        service,
        host: host_port,
        container,
        origin: state.origin(COMPOSE, host_line),
        how: "app_proxy's APP_HOST and APP_PORT, umbrel-app.yml's port".into(),
    });
    Ok(())
}

const PROXY_AUTH: &str = "Umbrel puts its own login in front of the app (PROXY_AUTH_ADD is true unless set to false); a node publishes the app's port directly, so the app needs a login of its own";
