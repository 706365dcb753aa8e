//! Back from a validated [`Manifest`] to the raw document: the JSON form that is signed.

use crate::manifest::raw::{
    RawArchive, RawBind, RawContainer, RawHealthcheck, RawImage, RawManifest, RawMount, RawPermission, RawPort,
    RawSecret, RawTmpfs, RawVolume,
};
use crate::manifest::{Container, Image, Manifest, Name, Permission};

/// The raw (JSON) form of a validated manifest; validating it again gives the same manifest.
pub(crate) fn to_raw(m: &Manifest) -> RawManifest {
    RawManifest {
        schema: Some(m.schema),
        id: Some(m.id.to_string()),
        version: Some(m.version.to_string()),
        publisher: Some(m.publisher.to_string()),
        title: Some(m.title.clone()),
        summary: Some(m.summary.clone()),
        description: Some(m.description.clone()),
        icon: m.icon.as_ref().map(|i| i.as_str().to_owned()),
        categories: m.categories.clone(),
        license: Some(m.license.clone()),
        source: Some(m.source.clone()),
        min_node_version: Some(m.min_node_version.to_string()),
        containers: m.containers.iter().map(container_to_raw).collect(),
        volumes: m
            .volumes
            .iter()
            .map(|v| RawVolume { name: Some(v.name.to_string()), shared: v.shared.as_ref().map(Name::to_string) })
            .collect(),
        secrets: m
            .secrets
            .iter()
            .map(|s| RawSecret {
                name: Some(s.name.to_string()),
                length: Some(s.length),
                charset: Some(s.charset.as_str().to_owned()),
            })
            .collect(),
        dependencies: m.dependencies.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        permissions: m.permissions.iter().map(permission_to_raw).collect(),
    }
}

fn container_to_raw(c: &Container) -> RawContainer {
    RawContainer {
        name: Some(c.name.to_string()),
        image: Some(match &c.image {
            Image::Pinned(p) => RawImage::Reference(p.to_string()),
            Image::Archive { target, image_id } => {
                RawImage::Archive(RawArchive { target: Some(target.clone()), image_id: Some(image_id.to_string()) })
            }
        }),
        command: c.command.clone(),
        entrypoint: c.entrypoint.clone(),
        env: c.env.clone(),
        derived_env: c.derived_env.iter().map(|(k, v)| (k.clone(), v.as_str().to_owned())).collect(),
        secret_env: c.secret_env.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        ports: c
            .ports
            .iter()
            .map(|p| RawPort {
                host: Some(u32::from(p.host)),
                container: Some(u32::from(p.container)),
                protocol: Some(p.protocol.as_str().to_owned()),
            })
            .collect(),
        volumes: c
            .volumes
            .iter()
            .map(|v| RawMount {
                volume: Some(v.volume.to_string()),
                target: Some(v.target.clone()),
                read_only: v.read_only,
            })
            .collect(),
        tmpfs: c.tmpfs.iter().map(|t| RawTmpfs { target: Some(t.target.clone()), size_mib: t.size_mib }).collect(),
        binds: c
            .binds
            .iter()
            .map(|b| RawBind { host: Some(b.host.clone()), target: Some(b.target.clone()), read_only: b.read_only })
            .collect(),
        devices: c.devices.clone(),
        user: c.user.map(|u| u.to_string()),
        data_uid: c.data_uid,
        healthcheck: c.healthcheck.as_ref().map(|h| RawHealthcheck {
            command: Some(h.command.clone()),
            interval_secs: Some(h.interval_secs),
            timeout_secs: Some(h.timeout_secs),
            start_period_secs: Some(h.start_period_secs),
            retries: Some(h.retries),
        }),
        restart: Some(c.restart.as_str().to_owned()),
        memory_mib: c.memory_mib,
        cpus_milli: c.cpus_milli,
        depends_on: c.depends_on.iter().map(Name::to_string).collect(),
        privileged: c.privileged,
        host_network: c.host_network,
        cap_add: c.cap_add.iter().map(|cap| cap.as_str().to_owned()).collect(),
        pids_limit: c.pids_limit,
        // Only the relaxation is written; the default stays out of the signed form.
        no_new_privileges: (!c.no_new_privileges).then_some(false),
    }
}

fn permission_to_raw(p: &Permission) -> RawPermission {
    let mut raw = RawPermission { kind: Some(p.kind().to_owned()), ..RawPermission::default() };
    match p {
        Permission::HostPath { host, target, read_only } => {
            raw.host = Some(host.clone());
            raw.target = Some(target.clone());
            raw.read_only = Some(*read_only);
        }
        Permission::Device { path } => raw.path = Some(path.clone()),
        Permission::SharedVolume { name } => raw.name = Some(name.to_string()),
        Permission::Capability { name } => raw.name = Some(name.as_str().to_owned()),
        Permission::PidsLimit { max } => raw.max = Some(*max),
        Permission::Privileged | Permission::HostNetwork | Permission::DockerSocket | Permission::NewPrivileges => {}
    }
    raw
}
