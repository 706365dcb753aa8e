//! Container images: a registry reference pinned by digest, or an OCI archive shipped as a TUF target.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Why an image reference or image id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The reference has no `@sha256:` digest, so the registry decides what runs.
    #[error("image `{0}` is not pinned by digest")]
    NotPinned(String),
    /// The digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("`{0}` is not a sha256 digest (sha256:<64 lowercase hex>)")]
    BadDigest(String),
    /// The name part is not a valid image name.
    #[error("`{0}` is not a valid image name")]
    BadName(String),
}

/// A `sha256:<64 lowercase hex>` digest: an image's manifest digest or its image id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(String);

impl Sha256Digest {
    /// The digest as written, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits after `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl FromStr for Sha256Digest {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").ok_or_else(|| ImageError::BadDigest(s.to_owned()))?;
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ImageError::BadDigest(s.to_owned()))
        }
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A registry image reference pinned by digest: `[registry/]path[:tag]@sha256:<64 hex>`.
///
/// The digest decides what runs; a tag, if present, is documentation only (Docker ignores it
/// when a digest is given). References without a digest (`nginx:latest`) are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PinnedImage {
    reference: String,
    digest: Sha256Digest,
}

impl PinnedImage {
    /// The full reference as written, e.g. `docker.io/library/nginx:1.27@sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.reference
    }

    /// The repository name without tag or digest, e.g. `docker.io/library/nginx`.
    pub fn name(&self) -> &str {
        let before_digest = &self.reference[..self.reference.len() - self.digest.0.len() - 1];
        match before_digest.rfind(':') {
            Some(colon) if !before_digest[colon..].contains('/') => &before_digest[..colon],
            _ => before_digest,
        }
    }

    /// The pinned manifest digest.
    pub fn digest(&self) -> &Sha256Digest {
        &self.digest
    }
}

impl FromStr for PinnedImage {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((name_and_tag, digest)) = s.split_once('@') else {
            return Err(ImageError::NotPinned(s.to_owned()));
        };
        let digest: Sha256Digest = digest.parse()?;
        check_name_and_tag(name_and_tag).ok_or_else(|| ImageError::BadName(s.to_owned()))?;
        Ok(Self { reference: s.to_owned(), digest })
    }
}

impl fmt::Display for PinnedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference)
    }
}

impl Serialize for PinnedImage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.reference)
    }
}

/// Checks `[domain/]component(/component)*[:tag]` after the Docker distribution reference grammar.
fn check_name_and_tag(s: &str) -> Option<()> {
    let mut parts: Vec<&str> = s.split('/').collect();
    let last = parts.pop()?;
    let (last, tag) = match last.split_once(':') {
        Some((name, tag)) => (name, Some(tag)),
        None => (last, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return None;
        }
    }
    // The first part is a registry host when it looks like one (has `.` or `:`, or is localhost).
    let mut components = parts.as_slice();
    if let Some((first, rest)) = parts.split_first()
        && (first.contains(['.', ':']) || *first == "localhost")
    {
        check_domain(first)?;
        components = rest;
    }
    components.iter().chain(std::iter::once(&last)).try_for_each(|c| check_path_component(c))
}

fn check_domain(s: &str) -> Option<()> {
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    host.split('.').all(label_ok).then_some(())
}

fn check_path_component(s: &str) -> Option<()> {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || b"._-".contains(b));
    ok.then_some(())
}

/// Where a container's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    /// Pulled from a container registry by digest.
    Pinned(PinnedImage),
    /// Loaded from an OCI/Docker image archive that travels as a TUF target of the catalog.
    ///
    /// The archive's bytes are checked against the hashes in the signed target metadata before
    /// `docker load`; after loading, the node checks the loaded image's id equals `image_id`.
    Archive {
        /// The TUF target path of the archive, e.g. `hello-web/hello-web-1.0.0.oci.tar`.
        target: String,
        /// The image id (`sha256:` of the image config) `docker load` must produce.
        image_id: Sha256Digest,
    },
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pinned(image) => write!(f, "{image}"),
            Self::Archive { target, image_id } => write!(f, "archive {target} ({image_id})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    #[test]
    fn accepts_digest_pinned_references() {
        for name in ["nginx", "library/nginx", "docker.io/library/nginx", "ghcr.io/a-b/c_d.e", "localhost:5000/x"] {
            for tag in ["", ":1.27", ":v1.0-alpine"] {
                let s = format!("{name}{tag}@sha256:{HEX}");
                let image: PinnedImage = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
                assert_eq!(image.name(), name);
                assert_eq!(image.digest().hex(), HEX);
            }
        }
    }

    #[test]
    fn refuses_tags_and_bad_digests() {
        assert_eq!("nginx:latest".parse::<PinnedImage>(), Err(ImageError::NotPinned("nginx:latest".into())));
        assert!(matches!("nginx@sha256:abc".parse::<PinnedImage>(), Err(ImageError::BadDigest(_))));
        let upper = format!("nginx@sha256:{}", HEX.to_uppercase());
        assert!(matches!(upper.parse::<PinnedImage>(), Err(ImageError::BadDigest(_))));
        let md5 = format!("nginx@md5:{HEX}");
        assert!(matches!(md5.parse::<PinnedImage>(), Err(ImageError::BadDigest(_))));
        for bad in ["Nginx", "nginx/", "-nginx", "ngin x", "a//b", "nginx:"] {
            let s = format!("{bad}@sha256:{HEX}");
            assert!(matches!(s.parse::<PinnedImage>(), Err(ImageError::BadName(_))), "{s}");
        }
    }
}
