//! Engine names: the one mapping from an app's objects to the names a node gives them on the
//! container engine.
//!
//! | object | engine name | engine namespace |
//! |---|---|---|
//! | the app's network | `archy_<app>` | networks |
//! | a container | `archy_<app>_<container>` | containers |
//! | a volume | `archy_<app>_<volume>` | volumes |
//! | a shared volume | `archy_shared.<share>` | volumes |
//!
//! # Why no two objects get the same name
//!
//! The engine keeps networks, containers and volumes in separate namespaces, so two names can
//! only clash inside one namespace. App ids and names ([`AppId`], [`Name`]) are made of
//! `[a-z0-9-]` only: they never hold `_` or `.`.
//!
//! Split an engine name at every `_`. Since no id or name holds `_`, the pieces are exactly
//! the literal `archy` and the ids and names that were joined, in order:
//!
//! - networks: `archy_<app>` splits into `[archy, app]`: the app id is the second piece;
//! - containers: `archy_<app>_<container>` splits into `[archy, app, container]`;
//! - volumes: `archy_<app>_<volume>` splits into three pieces `[archy, app, volume]`, while
//!   `archy_shared.<share>` splits into two, `[archy, shared.<share>]`, whose second piece holds
//!   a `.` that no app id holds. The number of pieces tells the two forms apart (so an app whose
//!   id is `shared` cannot reach a shared volume), and the pieces give back the ids.
//!
//! So within each namespace the name determines the object: [`EngineObject::parse`] computes it
//! back, and `parse(ns, name(o)) == Some(o)` for every object `o` (tested over arbitrary valid
//! ids below). A function with a left inverse is injective.
//!
//! Names an older node gave (`archy-<app>-<volume>`, joined with `-`) hold no `_`, so no name of
//! this scheme equals one of them: objects under the old names are found by their labels
//! (`archy.app`, `archy.role`, `archy.shared`), never by name.
//!
//! Lengths: ids and names are at most 63 characters, so the longest name is 133 characters
//! (`archy_` + 63 + `_` + 63); the engine limits none of these names. Containers are reached on
//! the app network by their manifest name, a network alias, not by their engine name.

use std::fmt;

use super::{AppId, Name};

/// Which of the engine's namespaces a name lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Networks.
    Networks,
    /// Containers.
    Containers,
    /// Volumes.
    Volumes,
}

/// One object a node creates on the engine for an app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EngineObject {
    /// The app's network.
    Network {
        /// The app.
        app: AppId,
    },
    /// One of the app's containers.
    Container {
        /// The app.
        app: AppId,
        /// The container's name in the manifest.
        container: Name,
    },
    /// One of the app's own volumes.
    Volume {
        /// The app.
        app: AppId,
        /// The volume's name in the manifest.
        volume: Name,
    },
    /// A volume shared by opt-in between apps.
    SharedVolume {
        /// The share name.
        share: Name,
    },
}

const PREFIX: &str = "archy";
const SHARED: &str = "shared.";

/// The first piece of every engine name: `archy` unless a node is told otherwise (its
/// `engine_prefix`, for a second node on one engine such as `archy app test`'s throwaway node).
/// A prefix is 1 to 32 of `[a-z0-9-]`, so like ids and names it never holds `_` or `.`: the
/// split below still gives back the pieces, and two nodes with different prefixes never name
/// an object alike (the first pieces differ).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnginePrefix(String);

impl Default for EnginePrefix {
    fn default() -> Self {
        Self(PREFIX.to_owned())
    }
}

impl std::str::FromStr for EnginePrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok =
            (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(s.to_owned())) } else { Err(format!("engine prefix `{s}`: use 1 to 32 of a-z, 0-9 and -")) }
    }
}

impl fmt::Display for EnginePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl EngineObject {
    /// The engine namespace the object's name lives in.
    pub fn namespace(&self) -> Namespace {
        match self {
            Self::Network { .. } => Namespace::Networks,
            Self::Container { .. } => Namespace::Containers,
            Self::Volume { .. } | Self::SharedVolume { .. } => Namespace::Volumes,
        }
    }

    /// The object's name on the engine.
    ///
    /// ```
    /// use catalog::manifest::EngineObject;
    /// let o = EngineObject::Volume { app: "foo-bar".parse().unwrap(), volume: "data".parse().unwrap() };
    /// assert_eq!(o.engine_name(), "archy_foo-bar_data");
    /// let p = EngineObject::Volume { app: "foo".parse().unwrap(), volume: "bar-data".parse().unwrap() };
    /// assert_eq!(p.engine_name(), "archy_foo_bar-data");
    /// ```
    pub fn engine_name(&self) -> String {
        self.to_string()
    }

    /// The object's name on the engine of a node whose names start with `prefix`.
    pub fn name_in(&self, prefix: &EnginePrefix) -> String {
        match self {
            Self::Network { app } => format!("{prefix}_{app}"),
            Self::Container { app, container } => format!("{prefix}_{app}_{container}"),
            Self::Volume { app, volume } => format!("{prefix}_{app}_{volume}"),
            Self::SharedVolume { share } => format!("{prefix}_{SHARED}{share}"),
        }
    }

    /// The object named `name` in namespace `ns`, if `name` is a name of this scheme.
    pub fn parse(ns: Namespace, name: &str) -> Option<Self> {
        Self::parse_in(ns, name, &EnginePrefix::default())
    }

    /// Like [`Self::parse`], for the names of a node whose names start with `prefix`.
    pub fn parse_in(ns: Namespace, name: &str, prefix: &EnginePrefix) -> Option<Self> {
        let pieces: Vec<&str> = name.split('_').collect();
        let p = prefix.0.as_str();
        match (ns, pieces.as_slice()) {
            (Namespace::Networks, [first, app]) if *first == p => Some(Self::Network { app: app.parse().ok()? }),
            (Namespace::Containers, [first, app, container]) if *first == p => {
                Some(Self::Container { app: app.parse().ok()?, container: container.parse().ok()? })
            }
            (Namespace::Volumes, [first, app, volume]) if *first == p => {
                Some(Self::Volume { app: app.parse().ok()?, volume: volume.parse().ok()? })
            }
            (Namespace::Volumes, [first, shared]) if *first == p => {
                Some(Self::SharedVolume { share: shared.strip_prefix(SHARED)?.parse().ok()? })
            }
            _ => None,
        }
    }
}

impl fmt::Display for EngineObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name_in(&EnginePrefix::default()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Valid ids and names: `[a-z0-9]` runs joined by single hyphens, 1 to 63 characters;
    /// hyphens are frequent so that ids like `foo-bar` and `bar-data` come up.
    fn id() -> impl Strategy<Value = String> {
        // The last form reaches 63 characters.
        proptest::string::string_regex("[a-z0-9]{1,4}(-[a-z0-9]{1,4}){0,4}|shared|[a-z0-9](-?[a-z0-9]){0,31}").unwrap()
    }

    fn object() -> impl Strategy<Value = EngineObject> {
        let app = || id().prop_map(|s| s.parse::<AppId>().unwrap());
        let name = || id().prop_map(|s| s.parse::<Name>().unwrap());
        prop_oneof![
            app().prop_map(|app| EngineObject::Network { app }),
            (app(), name()).prop_map(|(app, container)| EngineObject::Container { app, container }),
            (app(), name()).prop_map(|(app, volume)| EngineObject::Volume { app, volume }),
            name().prop_map(|share| EngineObject::SharedVolume { share }),
        ]
    }

    /// Two objects that share a prefix of hyphen-joined pieces, the shape that collided when ids
    /// were joined with `-`: (`x-y`, `z`) against (`x`, `y-z`).
    fn straddling() -> impl Strategy<Value = (EngineObject, EngineObject)> {
        let piece = || proptest::string::string_regex("[a-z0-9]{1,6}").unwrap();
        (piece(), piece(), piece(), 0..3u8).prop_map(|(x, y, z, kind)| {
            let (a, b) = (format!("{x}-{y}").parse().unwrap(), x.parse().unwrap());
            let (n, m) = (z.parse().unwrap(), format!("{y}-{z}").parse().unwrap());
            match kind {
                0 => {
                    (EngineObject::Container { app: a, container: n }, EngineObject::Container { app: b, container: m })
                }
                1 => (EngineObject::Volume { app: a, volume: n }, EngineObject::Volume { app: b, volume: m }),
                _ => (
                    EngineObject::SharedVolume { share: format!("{x}-{y}").parse().unwrap() },
                    EngineObject::Volume {
                        app: "shared".parse().unwrap(),
                        volume: format!("{x}-{y}").parse().unwrap(),
                    },
                ),
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// `parse` is a left inverse of `engine_name`, so the mapping is injective per namespace.
        #[test]
        fn engine_names_parse_back_to_their_object(o in object()) {
            let name = o.engine_name();
            prop_assert_eq!(EngineObject::parse(o.namespace(), &name), Some(o.clone()));
            // Names the engine accepts: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
            prop_assert!(name.len() >= 2 && name.len() <= 133);
            prop_assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()));
            prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
        }

        /// No two different objects get the same name in one namespace.
        #[test]
        fn different_objects_never_share_a_name(a in object(), b in object()) {
            if a != b && a.namespace() == b.namespace() {
                prop_assert_ne!(a.engine_name(), b.engine_name());
            }
        }

        /// Nodes with different prefixes never name an object alike, and each parses back its
        /// own names only.
        #[test]
        fn nodes_with_different_prefixes_never_share_a_name(
            a in object(), b in object(), pa in "[a-z0-9-]{1,32}", pb in "[a-z0-9-]{1,32}"
        ) {
            let (pa, pb): (EnginePrefix, EnginePrefix) = (pa.parse().unwrap(), pb.parse().unwrap());
            if pa != pb && a.namespace() == b.namespace() {
                prop_assert_ne!(a.name_in(&pa), b.name_in(&pb));
            }
            prop_assert_eq!(EngineObject::parse_in(a.namespace(), &a.name_in(&pa), &pa), Some(a.clone()));
        }

        /// The objects whose old `-`-joined names were equal get different names.
        #[test]
        fn names_that_collided_when_joined_with_hyphens_differ((a, b) in straddling()) {
            prop_assert_ne!(&a, &b);
            prop_assert_eq!(a.namespace(), b.namespace());
            prop_assert_ne!(a.engine_name(), b.engine_name());
        }
    }

    #[test]
    fn the_names_of_each_kind() {
        let app: AppId = "notes".parse().unwrap();
        let name: Name = "db".parse().unwrap();
        assert_eq!(EngineObject::Network { app: app.clone() }.engine_name(), "archy_notes");
        assert_eq!(
            EngineObject::Container { app: app.clone(), container: name.clone() }.engine_name(),
            "archy_notes_db"
        );
        assert_eq!(EngineObject::Volume { app, volume: name.clone() }.engine_name(), "archy_notes_db");
        assert_eq!(EngineObject::SharedVolume { share: name }.engine_name(), "archy_shared.db");
        // Old names are not names of this scheme.
        assert_eq!(EngineObject::parse(Namespace::Volumes, "archy-notes-db"), None);
        assert_eq!(EngineObject::parse(Namespace::Volumes, "archy-shared-db"), None);
    }
}
