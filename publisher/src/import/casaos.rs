//! CasaOS apps: one compose file whose top-level `x-casaos` block holds the metadata (texts by
//! language, the category, an icon URL, the web UI's port in `port_map`, the main service).
//! Data lives under `/DATA/AppData/$AppID/`, which becomes app volumes.

use super::compose::Compose;
use super::{IconSource, ImportError, State, category, localized};

/// Reads `x-casaos` into the draft and returns the services.
pub(crate) fn read(state: &mut State, file: &str) -> Result<Compose, ImportError> {
    let root = state.load(file)?;
    if let Some(n) = root.get_str("name") {
        state.draft.id = n.to_owned();
    }
    let mut port_map = None;
    if let Some((block_key, x)) = root.entry("x-casaos") {
        let before = state.unmapped_len();
        for (key, v) in x.as_map().unwrap_or(&[]) {
            match key.text.as_str() {
                "title" => state.draft.title = localized(v),
                "tagline" => state.draft.summary = localized(v),
                "description" => state.draft.description = localized(v),
                "category" => state.draft.categories.extend(category(&localized(v))),
                "icon" => {
                    let s = localized(v);
                    state.icon = Some(if s.contains("://") { IconSource::Url(s) } else { IconSource::File(s) });
                }
                "port_map" => port_map = v.as_str().and_then(|p| p.parse::<u16>().ok()).map(|p| (p, key.line)),
                "author" | "developer" => {
                    let who = localized(v);
                    if !who.is_empty() {
                        state.links.push(format!(
                            "{}: {who}.",
                            if key.text == "author" { "Packaged by" } else { "Developed by" }
                        ));
                    }
                }
                "main" | "store_app_id" => {}
                "architectures" => unmapped(
                    state,
                    file,
                    key.line,
                    "x-casaos.architectures",
                    "a node runs the image for its own architecture; pin a digest of a multi-architecture image",
                ),
                "index" | "scheme" | "hostname" => unmapped(
                    state,
                    file,
                    key.line,
                    &format!("x-casaos.{}", key.text),
                    "archy has no web UI address but the published port",
                ),
                "screenshot_link" | "thumbnail" => {
                    unmapped(state, file, key.line, &format!("x-casaos.{}", key.text), "archy has no screenshots")
                }
                "tips" => unmapped(
                    state,
                    file,
                    key.line,
                    "x-casaos.tips",
                    "archy shows no install tips; put them in the description",
                ),
                other => unmapped(
                    state,
                    file,
                    key.line,
                    &format!("x-casaos.{other}"),
                    "CasaOS store data without a counterpart in the manifest",
                ),
            }
        }
        let _ = block_key;
        state.count(state.unmapped_len() == before);
    }
    let compose = super::top_level(state, file, &root)?;
    if let Some((port, line)) = port_map {
        // The web UI's port is one of the published ports; check that it is.
        let published = compose.services.iter().any(|s| {
            s.node.get("ports").and_then(|p| p.as_seq()).unwrap_or(&[]).iter().any(|p| {
                p.as_str().is_some_and(|t| t.split(':').rev().nth(1) == Some(&port.to_string()))
                    || p.get_str("published") == Some(&port.to_string())
            })
        });
        if !published {
            unmapped(
                state,
                file,
                line,
                "x-casaos.port_map",
                &format!("no service publishes host port {port}; publish the web UI's port in its service's `ports`"),
            );
        }
        state.vars.web_port = Some(port);
    }
    Ok(compose)
}

fn unmapped(state: &mut State, file: &str, line: usize, what: &str, reason: &str) {
    let origin = state.origin(file, line);
    state.unmapped(origin, what, reason);
}
