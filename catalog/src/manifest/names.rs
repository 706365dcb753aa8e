//! Validated names: app ids and the names of containers, volumes, secrets and shares.
//!
//! Both follow one rule, because they end up inside Docker object names
//! (`archy_<app>_<container>`, see [`super::EngineObject`], which relies on them never holding
//! `_` or `.`): 1 to 63 characters of `[a-z0-9-]`, starting with a letter or digit, with no
//! trailing hyphen and no `--`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest app id or name, in characters (a DNS label).
pub const MAX_NAME_LEN: usize = 63;

/// Why a string is not a valid app id or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The string is empty.
    #[error("name is empty")]
    Empty,
    /// The string is longer than [`MAX_NAME_LEN`].
    #[error("`{0}` is longer than 63 characters")]
    TooLong(String),
    /// The string holds a character outside `[a-z0-9-]`.
    #[error("`{0}` may only hold lowercase letters, digits and hyphens")]
    BadCharacter(String),
    /// The string starts or ends with a hyphen, or holds `--`.
    #[error("`{0}` starts or ends with a hyphen or holds a double hyphen")]
    BadHyphen(String),
}

/// How to write a valid name; the `fix` text of name problems.
pub(crate) const NAME_FIX: &str =
    "use 1-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit";

fn check_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(s.to_owned()));
    }
    if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(NameError::BadCharacter(s.to_owned()));
    }
    if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
        return Err(NameError::BadHyphen(s.to_owned()));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                check_name(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                check_name(&s)?;
                Ok(Self(s))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.try_into().map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// An app id: the app's name in the catalog, in Docker object names and in URLs.
    ///
    /// Lowercase `[a-z0-9][a-z0-9-]{0,62}` with no trailing hyphen and no `--`.
    ///
    /// ```
    /// use catalog::manifest::AppId;
    /// let id: AppId = "hello-web".parse().expect("valid");
    /// assert_eq!(id.as_str(), "hello-web");
    /// assert!("Hello".parse::<AppId>().is_err());
    /// assert!("a--b".parse::<AppId>().is_err());
    /// ```
    AppId
);

name_type!(
    /// The name of a container, volume, generated secret or shared volume inside a manifest.
    ///
    /// Same rule as [`AppId`]: lowercase `[a-z0-9][a-z0-9-]{0,62}`, no trailing hyphen, no `--`.
    Name
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        for ok in ["a", "0", "hello-web", "a1-b2-c3", &"x".repeat(63)] {
            assert!(ok.parse::<AppId>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_invalid_ids() {
        assert_eq!("".parse::<AppId>(), Err(NameError::Empty));
        assert!(matches!("x".repeat(64).parse::<AppId>(), Err(NameError::TooLong(_))));
        for bad in ["Hello", "a_b", "a.b", "a/b", "é"] {
            assert!(matches!(bad.parse::<AppId>(), Err(NameError::BadCharacter(_))), "{bad}");
        }
        for bad in ["-a", "a-", "a--b"] {
            assert!(matches!(bad.parse::<AppId>(), Err(NameError::BadHyphen(_))), "{bad}");
        }
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let id: AppId = serde_json::from_str("\"photos\"").expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("serializes"), "\"photos\"");
        assert!(serde_json::from_str::<AppId>("\"../etc\"").is_err());
    }
}
