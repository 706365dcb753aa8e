//! Host facts for `derived_env`, resolved each time containers are applied (so a new LAN address
//! or time zone reaches the apps on their next apply). Detection reads local state only — the
//! interface list, `/proc`, the time zone database — and sends no traffic.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use catalog::manifest::{HostFact, Manifest, Protocol};

use super::config::HostOverrides;

/// The facts that do not depend on the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// LAN IPv4 address.
    pub host_ip: String,
    /// Host name.
    pub hostname: String,
    /// IANA time zone.
    pub timezone: String,
}

impl HostFacts {
    /// Detects the facts, preferring the operator's overrides.
    pub fn detect(overrides: &HostOverrides) -> Self {
        Self {
            host_ip: overrides.ip.clone().unwrap_or_else(detect_ip),
            hostname: overrides.hostname.clone().unwrap_or_else(detect_hostname),
            timezone: overrides
                .timezone
                .clone()
                .or_else(|| iana_time_zone::get_timezone().ok())
                .unwrap_or_else(|| "UTC".to_owned()),
        }
    }

    /// The values of `container`'s `derived_env` for `manifest`; `data_dir` is the host folder
    /// holding the app's data.
    pub fn resolve(
        &self,
        manifest: &Manifest,
        wanted: &BTreeMap<String, HostFact>,
        data_dir: &Path,
    ) -> BTreeMap<String, String> {
        wanted
            .iter()
            .map(|(var, fact)| {
                let value = match fact {
                    HostFact::HostIp => self.host_ip.clone(),
                    HostFact::Hostname => self.hostname.clone(),
                    HostFact::AppId => manifest.id.to_string(),
                    HostFact::AppVersion => manifest.version.to_string(),
                    HostFact::AppUrl => app_url(&self.host_ip, manifest),
                    HostFact::DataDir => data_dir.display().to_string(),
                    HostFact::Timezone => self.timezone.clone(),
                    HostFact::NodeVersion => env!("CARGO_PKG_VERSION").to_owned(),
                    // A fact added to the catalog later: an empty value rather than a refusal
                    // here, since validation already refused unknown facts.
                    #[allow(unreachable_patterns)]
                    _ => String::new(),
                };
                (var.clone(), value)
            })
            .collect()
    }
}

/// `http://<host ip>:<first published TCP port>`, or `http://<host ip>` without one.
fn app_url(host_ip: &str, manifest: &Manifest) -> String {
    let port = manifest.containers.iter().flat_map(|c| &c.ports).find(|p| p.protocol == Protocol::Tcp);
    match port {
        Some(p) => format!("http://{host_ip}:{}", p.host),
        None => format!("http://{host_ip}"),
    }
}

/// The first IPv4 address of an interface that is up and is neither loopback nor a container
/// bridge; `127.0.0.1` when there is none.
fn detect_ip() -> String {
    const VIRTUAL: [&str; 8] = ["docker", "br-", "veth", "virbr", "cni", "podman", "flannel", "lo"];
    netdev::get_interfaces()
        .into_iter()
        .filter(|i| i.is_up() && !i.is_loopback() && !VIRTUAL.iter().any(|p| i.name.starts_with(p)))
        .flat_map(|i| i.ipv4.into_iter().map(|n| n.addr()))
        .find(|a| !a.is_loopback() && !a.is_link_local())
        .unwrap_or(Ipv4Addr::LOCALHOST)
        .to_string()
}

fn detect_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
