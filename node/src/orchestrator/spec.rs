//! From the render plan (the single source of names and labels, `catalog::manifest::render`) to
//! the engine's container-create request, and the spec hash that tells the reconciler whether an
//! existing container still matches what is desired.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointSettings, HealthConfig, HostConfig, HostConfigLogConfig,
    Mount as DockerMount, MountTmpfsOptions, MountType, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use catalog::manifest::{ContainerPlan, DEFAULT_PIDS_LIMIT, Image, Mount, RestartPolicy as Restart};

use super::secrets::SecretValue;
use super::{LABEL_NODE, LABEL_SPEC};

/// Processes one container may run at once unless its manifest raises `pids_limit` with a
/// granted `pids_limit` permission (a fork bomb stops there, not at the host's limit).
pub const PIDS_LIMIT: i64 = DEFAULT_PIDS_LIMIT as i64;

/// Capabilities Docker grants by default that apps do not need and attackers like: raw sockets
/// (spoofing on the app network), device nodes, audit writes, file capabilities, `chroot`. A
/// container keeps one only when its manifest adds it (`cap_add`) and the operator granted it.
pub const DROPPED_CAPABILITIES: &[&str] = &["NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"];

/// What an app's containers are created with besides the plan.
#[derive(Debug, Clone)]
pub struct ApplyContext<'a> {
    /// This node's id (label `archy.node`).
    pub node_id: &'a str,
    /// The app network's engine id (containers join it by id: names may be ambiguous on old
    /// engines, ids never are).
    pub network_id: &'a str,
    /// Host address to publish ports on (`None`: all addresses).
    pub publish_ip: Option<&'a str>,
    /// Generated secrets by name.
    pub secrets: &'a BTreeMap<String, SecretValue>,
}

/// The engine request for `plan`, with `derived` the resolved `derived_env` values; its labels
/// include the spec hash.
pub fn container_body(
    plan: &ContainerPlan,
    derived: &BTreeMap<String, String>,
    cx: &ApplyContext<'_>,
) -> ContainerCreateBody {
    let image = match &plan.image {
        Image::Pinned(p) => p.to_string(),
        // Archive images run by id, never by a tag inside the archive (docs/manifest.md).
        Image::Archive { image_id, .. } => image_id.to_string(),
    };
    let mut env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend(derived.iter().map(|(k, v)| format!("{k}={v}")));
    env.extend(plan.secret_env.iter().map(|(k, secret)| {
        let value = cx.secrets.get(secret.as_str()).map_or("", |v| v.expose());
        format!("{k}={value}")
    }));
    env.sort();

    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &plan.ports {
        let key = format!("{}/{}", p.container, p.protocol);
        exposed.push(key.clone());
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding { host_ip: cx.publish_ip.map(str::to_owned), host_port: Some(p.host.to_string()) });
    }

    let mounts = plan
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Volume { source, target, read_only } => DockerMount {
                typ: Some(MountType::VOLUME),
                source: Some(source.clone()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            },
            Mount::Bind { source, target, read_only } => DockerMount {
                typ: Some(MountType::BIND),
                source: Some(source.clone()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            },
            Mount::Tmpfs { target, size_bytes } => DockerMount {
                typ: Some(MountType::TMPFS),
                target: Some(target.clone()),
                tmpfs_options: size_bytes.map(|s| MountTmpfsOptions {
                    size_bytes: Some(i64::try_from(s).unwrap_or(i64::MAX)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        })
        .collect();

    let secs = |s: u32| i64::from(s) * 1_000_000_000;
    let healthcheck = plan.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(secs(h.interval_secs)),
        timeout: Some(secs(h.timeout_secs)),
        start_period: Some(secs(h.start_period_secs)),
        retries: Some(i64::from(h.retries)),
        ..Default::default()
    });

    let host_network = plan.network == "host";
    let host_config = HostConfig {
        mounts: Some(mounts),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        devices: (!plan.devices.is_empty()).then(|| {
            plan.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.clone()),
                    path_in_container: Some(d.clone()),
                    cgroup_permissions: Some("rwm".into()),
                })
                .collect()
        }),
        restart_policy: Some(RestartPolicy {
            name: Some(match plan.restart {
                Restart::No => RestartPolicyNameEnum::NO,
                Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
                Restart::Always => RestartPolicyNameEnum::ALWAYS,
                Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
            }),
            maximum_retry_count: None,
        }),
        memory: plan.memory_bytes.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        nano_cpus: plan.nano_cpus.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        privileged: Some(plan.privileged),
        // Safe defaults every container gets. `privileged` (declared by the manifest and granted
        // by the operator) lifts them all; otherwise each is lifted on its own: a capability in
        // `cap_add` is taken off the drop list and added, `no_new_privileges = false` leaves out
        // the security option, and `pids_limit` replaces the default limit. The policy gate has
        // refused whatever of these the operator did not grant before this request is built.
        security_opt: (!plan.privileged && plan.no_new_privileges).then(|| vec!["no-new-privileges:true".to_owned()]),
        cap_drop: (!plan.privileged).then(|| {
            DROPPED_CAPABILITIES
                .iter()
                .filter(|d| !plan.cap_add.iter().any(|a| a.as_str() == **d))
                .map(|d| (*d).to_owned())
                .collect()
        }),
        cap_add: (!plan.cap_add.is_empty()).then(|| plan.cap_add.iter().map(|c| c.as_str().to_owned()).collect()),
        pids_limit: match plan.pids_limit {
            Some(n) => Some(i64::from(n)),
            None => (!plan.privileged).then_some(PIDS_LIMIT),
        },
        network_mode: Some(if host_network { "host".to_owned() } else { cx.network_id.to_owned() }),
        // Bounded logs: a chatty app must not fill the disk of a home server.
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([("max-size".into(), "10m".into()), ("max-file".into(), "3".into())])),
        }),
        ..Default::default()
    };
    let networking_config = (!host_network).then(|| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            cx.network_id.to_owned(),
            EndpointSettings { aliases: Some(vec![plan.role.to_string()]), ..Default::default() },
        )])),
    });

    let mut labels: HashMap<String, String> = plan.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(LABEL_NODE.into(), cx.node_id.to_owned());
    let mut body = ContainerCreateBody {
        image: Some(image),
        entrypoint: plan.entrypoint.clone(),
        cmd: plan.command.clone(),
        env: Some(env),
        user: plan.user.map(|u| u.to_string()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        labels: Some(labels),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    };
    let hash = spec_hash(&body);
    if let Some(l) = body.labels.as_mut() {
        l.insert(LABEL_SPEC.into(), hash);
    }
    body
}

/// BLAKE3 over the canonical JSON of the request (sorted keys, so map order does not matter),
/// first 16 bytes in hex. Secret values are part of the request, but only their hash mixed with
/// everything else leaves the node's files, which reveals nothing about them.
pub fn spec_hash(body: &ContainerCreateBody) -> String {
    let value = serde_json::to_value(body).unwrap_or_default();
    let bytes = catalog::canonical::to_canonical(&value).unwrap_or_default();
    hex::encode(&blake3::hash(&bytes).as_bytes()[..16])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use catalog::manifest::{Limits, Manifest, render};

    const HEX: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    fn plan() -> ContainerPlan {
        plan_with("", "")
    }

    /// The test plan, with `permissions` before the containers and `extra` in the container.
    fn plan_with(permissions: &str, extra: &str) -> ContainerPlan {
        let toml = format!(
            r#"
schema = 1
id = "notes"
version = "1.0.0"
publisher = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
title = "Notes"
summary = "s"
description = "d"
license = "MIT"
source = "https://example.org/x"
min_node_version = "0.1.0"
{permissions}
[[volumes]]
name = "data"
[[secrets]]
name = "pw"
[[containers]]
name = "web"
image = {{ target = "notes/notes.tar", image_id = "sha256:{HEX}" }}
ports = [{{ host = 8080, container = 80 }}, {{ host = 8443, container = 443 }}]
volumes = [{{ volume = "data", target = "/data" }}]
tmpfs = [{{ target = "/tmp", size_mib = 8 }}]
memory_mib = 64
cpus_milli = 500
user = "1000:1000"
env = {{ A = "1" }}
secret_env = {{ PW = "pw" }}
{extra}
[containers.healthcheck]
command = ["/bin/true"]
"#
        );
        let m = Manifest::from_toml_str(&toml, &Limits::default()).unwrap();
        render(&m).containers.remove(0)
    }

    #[test]
    fn request_carries_the_plan_and_a_stable_hash() {
        let secrets = BTreeMap::from([("pw".to_owned(), SecretValue::for_tests("s3cret"))]);
        let cx = ApplyContext { node_id: "n1", network_id: "net1", publish_ip: None, secrets: &secrets };
        let a = container_body(&plan(), &BTreeMap::new(), &cx);
        let b = container_body(&plan(), &BTreeMap::new(), &cx);
        assert_eq!(a.labels.as_ref().unwrap()[LABEL_SPEC], b.labels.as_ref().unwrap()[LABEL_SPEC]);
        assert_eq!(a.image.as_deref(), Some(format!("sha256:{HEX}").as_str()));
        assert_eq!(a.env.as_ref().unwrap(), &["A=1".to_owned(), "PW=s3cret".to_owned()]);
        let hc = a.host_config.as_ref().unwrap();
        assert_eq!(hc.memory, Some(64 * 1024 * 1024));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.mounts.as_ref().unwrap().len(), 2);
        assert_eq!(a.labels.as_ref().unwrap()["archy.role"], "web");
        // Anything that changes the container changes the hash.
        let other = BTreeMap::from([("pw".to_owned(), SecretValue::for_tests("other"))]);
        let c = container_body(&plan(), &BTreeMap::new(), &ApplyContext { secrets: &other, ..cx });
        assert_ne!(a.labels.as_ref().unwrap()[LABEL_SPEC], c.labels.as_ref().unwrap()[LABEL_SPEC]);
    }

    #[test]
    fn defaults_hold_unless_a_relaxation_is_planned() {
        let secrets = BTreeMap::new();
        let cx = ApplyContext { node_id: "n1", network_id: "net1", publish_ip: None, secrets: &secrets };
        let plain = container_body(&plan(), &BTreeMap::new(), &cx).host_config.unwrap();
        assert_eq!(plain.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
        assert_eq!(
            plain.cap_drop.as_deref(),
            Some(["NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"].map(String::from).as_slice())
        );
        assert_eq!(plain.cap_add, None);
        assert_eq!(plain.pids_limit, Some(1024));

        let relaxed = plan_with(
            r#"permissions = [{ kind = "capability", name = "NET_RAW" }, { kind = "capability", name = "NET_ADMIN" }, { kind = "pids_limit", max = 4096 }]"#,
            "cap_add = [\"NET_RAW\", \"NET_ADMIN\"]\npids_limit = 4096",
        );
        let hc = container_body(&relaxed, &BTreeMap::new(), &cx).host_config.unwrap();
        assert_eq!(hc.cap_add, Some(vec!["NET_RAW".to_owned(), "NET_ADMIN".to_owned()]));
        assert_eq!(
            hc.cap_drop.as_deref(),
            Some(["MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"].map(String::from).as_slice())
        );
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges:true".to_owned()]), "still set");
        assert_eq!(hc.pids_limit, Some(4096));

        let setuid = plan_with(r#"permissions = [{ kind = "new_privileges" }]"#, "no_new_privileges = false");
        let hc = container_body(&setuid, &BTreeMap::new(), &cx).host_config.unwrap();
        assert_eq!(hc.security_opt, None);
        assert_eq!(hc.cap_drop, plain.cap_drop, "still dropped");
        assert_eq!(hc.pids_limit, Some(1024), "still limited");
    }
}
