//! The manifest `archy app new <id>` scaffolds.

use crate::did::DidKey;

/// A complete, valid single-container manifest for app `id` published by `publisher`: the
/// `archy.toml` that `archy app new <id>` writes, with comments pointing at what to change.
///
/// It serves a static site with nginx from a named volume, pinned by digest, with a healthcheck
/// and resource limits. `id` must be a valid [`AppId`](super::AppId) for the result to validate.
///
/// ```
/// use catalog::manifest::{example_toml, Limits, Manifest};
/// let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp".parse().unwrap();
/// let m = Manifest::from_toml_str(&example_toml("my-site", &did), &Limits::default()).unwrap();
/// assert_eq!(m.title, "My Site");
/// ```
pub fn example_toml(id: &str, publisher: &DidKey) -> String {
    let title: Vec<String> = id
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
        })
        .collect();
    let quoted_id = quote(id);
    let title = quote(&title.join(" "));
    let source = quote(&format!("https://example.org/{id}"));
    format!(
        r#"# archy app manifest, schema v1. Field reference: docs/manifest.md
# Check it with `archy app validate` and see what a node would run with `archy app render`.
schema = 1
id = {quoted_id}
version = "0.1.0"
publisher = "{publisher}"
title = {title}
summary = "A small static website served from your home server."
description = """
Describe what the app does, who it is for and how to use it.
Markdown is allowed.
"""
# icon = "icon.svg"  # a file in this folder, or an https:// URL
categories = ["web"]
license = "MIT"
source = {source}
min_node_version = "0.1.0"

# Named volumes survive updates and uninstall; only a purge deletes them.
[[volumes]]
name = "site"

[[containers]]
name = "web"
# Images are pinned by digest; `docker buildx imagetools inspect <image>` prints it.
image = "docker.io/library/nginx:1.27-alpine@sha256:4ff102c5d78d254a6f0da062b3cf39eaf07f01eec0927fd21e219d0af8bc0591"
restart = "unless-stopped"
memory_mib = 64
cpus_milli = 500
ports = [{{ host = 8080, container = 80, protocol = "tcp" }}]
volumes = [{{ volume = "site", target = "/usr/share/nginx/html", read_only = true }}]
tmpfs = [{{ target = "/var/cache/nginx", size_mib = 16 }}]

[containers.env]
NGINX_ENTRYPOINT_QUIET_LOGS = "1"

# Filled in by the node from facts about the host.
[containers.derived_env]
TZ = "timezone"

[containers.healthcheck]
command = ["wget", "-q", "--spider", "http://127.0.0.1/"]
interval_secs = 30
timeout_secs = 5
retries = 3
"#
    )
}

/// A TOML basic string holding `s`.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
