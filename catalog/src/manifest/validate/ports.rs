//! Published ports, per container and across the app.

use std::collections::HashMap;

use super::Validator;
use crate::manifest::raw::{RawContainer, RawPort};
use crate::manifest::{Port, Protocol};

impl Validator<'_> {
    pub(super) fn ports(&mut self, base: &str, raw: &[RawPort], host_network: bool) -> Option<Vec<Port>> {
        if host_network && !raw.is_empty() {
            self.p.push(
                format!("{base}.ports"),
                "ports are not published for a container on the host network",
                "remove ports (the container listens on the host directly) or host_network",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (j, r) in raw.iter().enumerate() {
            let field = format!("{base}.ports[{j}]");
            let host = self.port_number(&format!("{field}.host"), r.host);
            let container = self.port_number(&format!("{field}.container"), r.container);
            let protocol = match r.protocol.as_deref().map(|p| (p, p.parse::<Protocol>())) {
                None => Some(Protocol::Tcp),
                Some((_, Ok(p))) => Some(p),
                Some((p, Err(_))) => {
                    self.p.push(format!("{field}.protocol"), format!("unknown protocol `{p}`"), "use tcp or udp");
                    None
                }
            };
            match (host, container, protocol) {
                (Some(host), Some(container), Some(protocol)) => out.push(Port { host, container, protocol }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn port_number(&mut self, field: &str, v: Option<u32>) -> Option<u16> {
        match v {
            None => {
                self.missing(field, "add the port number (1-65535)");
                None
            }
            Some(n) => match u16::try_from(n) {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    self.p.push(field, format!("{n} is not a port number"), "use a port between 1 and 65535");
                    None
                }
            },
        }
    }

    /// Rule: a host port is published once per protocol across the whole app.
    pub(super) fn duplicate_ports(&mut self, containers: &[RawContainer]) {
        let mut seen: HashMap<(u32, String), String> = HashMap::new();
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in c.ports.iter().enumerate() {
                let Some(host) = port.host else { continue };
                let protocol = port.protocol.clone().unwrap_or_else(|| "tcp".to_owned());
                let field = format!("containers[{i}].ports[{j}].host");
                if let Some(first) = seen.get(&(host, protocol.clone())) {
                    self.p.push(
                        &field,
                        format!("host port {host}/{protocol} is already published by {first}"),
                        "publish each host port once; pick another host port",
                    );
                } else {
                    seen.insert((host, protocol), field);
                }
            }
        }
    }
}
