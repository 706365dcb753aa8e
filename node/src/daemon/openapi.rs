//! The local API described as OpenAPI 3.1, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they take and give: served at `GET /v1/openapi.json`, and rendered
//! as the API reference in `docs/api.md` ([`markdown`]; a test keeps the file in step).

use utoipa::OpenApi as _;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::orchestrator::api as lifecycle;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "archy-node local API",
        description = "The API of `archy-node run` (`serve.api`, loopback by default). Every request passes the guard first: `Host` must name the API, a request that changes state may not come from another site, and it must carry `Authorization: Bearer <token of <data>/api.token>` or the dashboard's session cookie with the page's `X-Archy-CSRF` token; request bodies are JSON. On a Unix socket the socket's permissions are the authentication."
    ),
    paths(
        super::api_status,
        super::api_sync,
        super::api_fetch,
        super::api_apps,
        lifecycle::list,
        lifecycle::install,
        lifecycle::start,
        lifecycle::stop,
        lifecycle::restart,
        lifecycle::update,
        lifecycle::uninstall,
        lifecycle::logs,
        lifecycle::reconcile,
        lifecycle::events,
        super::dashboard::link,
        super::dashboard::policy_get,
        super::dashboard::policy_put,
        super::dashboard::grant,
        document,
    ),
    modifiers(&Security),
    security(("token" = []), ("session" = [])),
    tags(
        (name = "node", description = "Sync and status"),
        (name = "apps", description = "The app lifecycle (once the container engine answers; until then 503 saying why)"),
        (name = "dashboard", description = "What the dashboard adds: sign-in links, the Nostr policy, grants"),
    )
)]
struct Document;

/// The two ways to authenticate.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token of <data>/api.token (`archy-node api-token`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::local_api::SESSION_COOKIE,
                "The dashboard's session (POST /login or a one-time link); requests that change state also send the page's token in X-Archy-CSRF",
            ))),
        );
    }
}

/// The document, as served.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = Document::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node", summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub(super) async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi())
}

/// The API reference in Markdown (`docs/api.md`), from the document.
#[cfg(test)]
fn markdown() -> String {
    use std::fmt::Write as _;
    let doc = serde_json::to_value(openapi()).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut out = String::new();
    let _ = writeln!(out, "# The node's local API\n");
    let _ = writeln!(
        out,
        "Generated from the code (`node/src/daemon/openapi.rs`); the running node serves the same document as \
         OpenAPI 3.1 at `GET /v1/openapi.json` (`archy-node api GET /v1/openapi.json`). Regenerate this file with \
         `ARCHY_WRITE_API_DOC=1 cargo test -p archy-node --lib api_reference`.\n"
    );
    let _ = writeln!(out, "{}\n", text(&doc["info"]["description"]));
    let _ = writeln!(out, "## Authentication\n");
    if let Some(schemes) = doc["components"]["securitySchemes"].as_object() {
        for (name, scheme) in schemes {
            let _ = writeln!(out, "- `{name}`: {}", text(&scheme["description"]));
        }
    }
    let tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| (text(&t["name"]), text(&t["description"]))).collect())
        .unwrap_or_default();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (tag, about) in &tags {
        let _ = writeln!(out, "\n## {tag}: {about}\n");
        for (path, item) in &paths {
            let Some(item) = item.as_object() else { continue };
            for (method, op) in item {
                if !op["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == tag.as_str())) {
                    continue;
                }
                let _ = writeln!(out, "### `{} {path}`\n", method.to_ascii_uppercase());
                let _ = writeln!(out, "{}\n", text(&op["summary"]));
                if op["description"].is_string() {
                    let _ = writeln!(out, "{}\n", text(&op["description"]));
                }
                if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                    let _ = writeln!(out, "| parameter | in | required | description |\n|---|---|---|---|");
                    for p in params {
                        let _ = writeln!(
                            out,
                            "| `{}` | {} | {} | {} |",
                            text(&p["name"]),
                            text(&p["in"]),
                            if p["required"].as_bool() == Some(true) { "yes" } else { "no" },
                            text(&p["description"])
                        );
                    }
                    out.push('\n');
                }
                if let Some(body) = op["requestBody"]["content"].as_object() {
                    for (kind, content) in body {
                        let _ = writeln!(out, "Request body ({kind}): {}\n", schema_name(&content["schema"]));
                    }
                }
                let _ = writeln!(out, "| status | answer |\n|---|---|");
                if let Some(responses) = op["responses"].as_object() {
                    for (status, r) in responses {
                        let body = r["content"]
                            .as_object()
                            .and_then(|c| c.iter().next())
                            .map(|(kind, c)| format!(" — {kind}: {}", schema_name(&c["schema"])))
                            .unwrap_or_default();
                        let _ = writeln!(out, "| {status} | {}{body} |", text(&r["description"]).replace('\n', " "));
                    }
                }
                out.push('\n');
            }
        }
    }
    let _ = writeln!(out, "## Schemas\n");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = writeln!(out, "### `{name}`\n");
            if schema["description"].is_string() {
                let _ = writeln!(out, "{}\n", text(&schema["description"]).replace('\n', " "));
            }
            if let Some(props) = schema["properties"].as_object() {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                let _ = writeln!(out, "| field | type | required | description |\n|---|---|---|---|");
                for (field, p) in props {
                    let _ = writeln!(
                        out,
                        "| `{field}` | {} | {} | {} |",
                        schema_name(p),
                        if required.contains(&field.as_str()) { "yes" } else { "no" },
                        text(&p["description"]).replace('\n', " ")
                    );
                }
                out.push('\n');
            } else if let Some(values) = schema["enum"].as_array() {
                let values: Vec<String> = values.iter().map(|v| format!("`{}`", text(v))).collect();
                let _ = writeln!(out, "One of {}.\n", values.join(", "));
            }
        }
    }
    out
}

/// A schema in a few words: a `$ref`'s name, a type, an array of something.
#[cfg(test)]
fn schema_name(schema: &serde_json::Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[`{name}`](#{})", name.to_ascii_lowercase());
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let names: Vec<String> = one.iter().filter(|s| s["type"] != "null").map(schema_name).collect();
        return format!("{} (or null)", names.join(" or "));
    }
    match &schema["type"] {
        serde_json::Value::String(t) if t == "array" => format!("array of {}", schema_name(&schema["items"])),
        serde_json::Value::String(t) => t.clone(),
        serde_json::Value::Array(types) => {
            let types: Vec<&str> = types.iter().filter_map(|t| t.as_str()).filter(|t| *t != "null").collect();
            format!("{} (or null)", types.join(" or "))
        }
        _ => "any".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_api_reference_in_docs_is_generated_from_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
        let generated = markdown();
        if std::env::var("ARCHY_WRITE_API_DOC").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/api.md is not what the code describes: regenerate it with \
             `ARCHY_WRITE_API_DOC=1 cargo test -p archy-node --lib api_reference`"
        );
    }

    #[test]
    fn every_route_of_the_api_is_described() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in [
            ("get", "/v1/status"),
            ("post", "/v1/sync"),
            ("get", "/v1/apps"),
            ("get", "/v1/installed"),
            ("post", "/v1/installed/{app}"),
            ("delete", "/v1/installed/{app}"),
            ("post", "/v1/installed/{app}/start"),
            ("post", "/v1/installed/{app}/stop"),
            ("post", "/v1/installed/{app}/restart"),
            ("post", "/v1/installed/{app}/update"),
            ("get", "/v1/installed/{app}/logs"),
            ("post", "/v1/reconcile"),
            ("get", "/v1/events"),
            ("post", "/v1/dashboard/link"),
            ("get", "/v1/nostr/policy"),
            ("put", "/v1/nostr/policy"),
            ("post", "/v1/grants/{app}"),
            ("get", "/v1/openapi.json"),
        ] {
            assert!(paths.get(path).is_some_and(|p| p.get(method).is_some()), "{method} {path} is not described");
        }
        let install = &paths["/v1/installed/{app}"]["post"];
        assert!(install["responses"]["403"].is_object() && install["responses"]["200"].is_object(), "{install}");
        assert_eq!(doc["components"]["securitySchemes"]["session"]["name"], "archy_session");
    }
}
