//! Linux capabilities a container may add (`cap_add`) on top of the node's defaults.
//!
//! Names are the kernel's (`capabilities(7)`) without the `CAP_` prefix, in capitals:
//! `NET_ADMIN`, never `CAP_NET_ADMIN` or `net_admin`. One spelling per capability keeps the
//! signed JSON form of two manifests that mean the same thing the same, and lets a node match a
//! manifest's request against the operator's grant by equality. `ALL` and the capabilities that
//! amount to control of the host are refused: a container that needs them is `privileged`, and
//! says so (decision D24 in `docs/decisions.md`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every Linux capability, in the kernel's numbering (`include/uapi/linux/capability.h`, 0–40).
const KNOWN: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Capabilities a container can leave its confinement with, or reach into the host's kernel
/// with; each is refused in `cap_add` with the reason (decision D24).
const HOST_LEVEL: [(&str, &str); 8] = [
    ("SYS_ADMIN", "mounts file systems and enters namespaces, the usual way out of a container"),
    ("SYS_MODULE", "loads code into the host's kernel"),
    ("SYS_RAWIO", "reaches I/O ports and memory of the host directly"),
    ("SYS_BOOT", "loads a new kernel for the host to boot"),
    ("DAC_READ_SEARCH", "opens files of the host by handle, outside the container's file system"),
    ("MAC_ADMIN", "changes the security policy (AppArmor, SELinux) that confines the container"),
    ("MAC_OVERRIDE", "overrides the security policy (AppArmor, SELinux) that confines the container"),
    ("BPF", "loads programs into the host's kernel"),
];

/// A Linux capability a manifest may add to a container, e.g. `NET_ADMIN`.
///
/// Only [`FromStr`] (and `Deserialize`, which goes through it) makes one, so a value is always
/// a known capability in its one spelling, never `ALL` nor one that amounts to control of the
/// host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(&'static str);

impl Capability {
    /// The capability's name without the `CAP_` prefix, e.g. `NET_ADMIN`.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Why a word is not a [`Capability`] a manifest may add.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityError {
    /// Not a Linux capability.
    #[error("`{0}` is not a Linux capability")]
    Unknown(String),
    /// A capability written with the `CAP_` prefix or in lower case.
    #[error("`{given}` is written `{canonical}`")]
    NotCanonical {
        /// As written.
        given: String,
        /// The one spelling manifests use.
        canonical: &'static str,
    },
    /// `ALL`: every capability at once.
    #[error("`ALL` would add every capability")]
    All,
    /// A capability that amounts to control of the host.
    #[error("`{name}` {reason}: it gives a container control of the host")]
    HostLevel {
        /// The capability.
        name: &'static str,
        /// What it lets a container do.
        reason: &'static str,
    },
}

impl FromStr for Capability {
    type Err = CapabilityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = match s.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("CAP_") => &s[4..],
            _ => s,
        };
        let upper = bare.to_ascii_uppercase();
        if upper == "ALL" {
            return Err(CapabilityError::All);
        }
        let Some(name) = KNOWN.iter().copied().find(|k| *k == upper) else {
            return Err(CapabilityError::Unknown(s.to_owned()));
        };
        if let Some((name, reason)) = HOST_LEVEL.iter().copied().find(|(h, _)| *h == name) {
            return Err(CapabilityError::HostLevel { name, reason });
        }
        if s != name {
            return Err(CapabilityError::NotCanonical { given: s.to_owned(), canonical: name });
        }
        Ok(Self(name))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_capability() {
        assert_eq!("NET_ADMIN".parse::<Capability>().map(Capability::as_str), Ok("NET_ADMIN"));
        for written in ["CAP_NET_ADMIN", "net_admin", "cap_net_admin"] {
            assert_eq!(
                written.parse::<Capability>(),
                Err(CapabilityError::NotCanonical { given: written.to_owned(), canonical: "NET_ADMIN" })
            );
        }
        assert_eq!("NET_ADMINS".parse::<Capability>(), Err(CapabilityError::Unknown("NET_ADMINS".into())));
        assert_eq!("".parse::<Capability>(), Err(CapabilityError::Unknown(String::new())));
    }

    #[test]
    fn all_and_host_level_capabilities_are_not_capabilities_a_manifest_adds() {
        assert_eq!("ALL".parse::<Capability>(), Err(CapabilityError::All));
        assert_eq!("CAP_ALL".parse::<Capability>(), Err(CapabilityError::All));
        for (name, _) in HOST_LEVEL {
            assert!(KNOWN.contains(&name), "{name}");
            assert!(matches!(name.parse::<Capability>(), Err(CapabilityError::HostLevel { name: n, .. }) if n == name));
        }
        assert!(matches!("cap_sys_admin".parse::<Capability>(), Err(CapabilityError::HostLevel { .. })));
        let addable = KNOWN.iter().filter(|k| k.parse::<Capability>().is_ok()).count();
        assert_eq!(addable, KNOWN.len() - HOST_LEVEL.len());
    }
}
