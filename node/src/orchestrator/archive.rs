//! Image archives (`docker save` files) made safe to hand the engine: checked against the
//! manifest's image id and stripped of the tags inside them before `docker load`.
//!
//! Rule: `docker load` applies every tag an archive carries (`manifest.json` `RepoTags`, the
//! legacy `repositories` file, an OCI `index.json`'s image-name annotations). A signed archive
//! could otherwise retag an image the operator uses by name elsewhere (`nginx:latest` pointing at
//! the app's image). So an archive must describe exactly one image, whose config is the image id
//! the signed manifest names, and it is loaded with no tag at all; archy runs images by id.

use std::io::{Read, Write as _};
use std::path::Path;

use super::Error;

/// What [`prepare`] found in an archive.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The tags the archive carried, none of which is applied.
    pub tags_dropped: Vec<String>,
}

/// Copies `archive` to `out` with every tag removed, after checking that it holds exactly one
/// image and that its config is `image_id` (`sha256:<hex>`). `app` and `target` name the archive
/// in errors.
pub fn prepare(archive: &Path, out: &Path, image_id: &str, app: &str, target: &str) -> Result<Prepared, Error> {
    let io_in = |source| Error::Io { path: archive.to_owned(), source };
    let io_out = |source| Error::Io { path: out.to_owned(), source };
    let mismatch = |loaded: String| Error::ImageMismatch {
        app: app.to_owned(),
        target: target.to_owned(),
        expected: image_id.to_owned(),
        loaded,
    };
    let want = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    let mut reader = tar::Archive::new(std::fs::File::open(archive).map_err(io_in)?);
    let file = std::fs::File::create(out).map_err(io_out)?;
    let mut writer = tar::Builder::new(std::io::BufWriter::new(file));
    let mut prepared = Prepared::default();
    let mut saw_manifest = false;
    for entry in reader.entries().map_err(io_in)? {
        let mut entry = entry.map_err(io_in)?;
        let path = entry.path().map_err(io_in)?.into_owned();
        let name = path.to_string_lossy().trim_start_matches("./").to_owned();
        let mut header = entry.header().clone();
        match name.as_str() {
            "manifest.json" => {
                let mut images: Vec<serde_json::Value> = json(&mut entry, archive)?;
                let [image] = images.as_mut_slice() else {
                    return Err(mismatch(format!("{} images in one archive", images.len())));
                };
                let config = image.get("Config").and_then(|c| c.as_str()).unwrap_or_default();
                let config_hex = config.trim_end_matches(".json").rsplit('/').next().unwrap_or_default().to_owned();
                if config_hex != want {
                    return Err(mismatch(format!("an image whose config is {config}")));
                }
                prepared.tags_dropped.extend(strings(image.get("RepoTags")));
                image["RepoTags"] = serde_json::Value::Null;
                saw_manifest = true;
                append_json(&mut writer, &mut header, &path, &images).map_err(io_out)?;
            }
            // Legacy tags: `{"repo": {"tag": "<layer id>"}}`; the whole file is tags.
            "repositories" => {
                let repos: serde_json::Map<String, serde_json::Value> = json(&mut entry, archive)?;
                for (repo, tags) in repos {
                    let tags = tags.as_object().map(|t| t.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
                    prepared.tags_dropped.extend(tags.into_iter().map(|t| format!("{repo}:{t}")));
                }
            }
            // OCI layout: image names are annotations of the index's manifests.
            "index.json" => {
                let mut index: serde_json::Value = json(&mut entry, archive)?;
                let manifests = index.get_mut("manifests").and_then(|m| m.as_array_mut());
                if manifests.as_ref().is_some_and(|m| m.len() > 1) {
                    return Err(mismatch("an OCI index of several images".into()));
                }
                for m in manifests.into_iter().flatten() {
                    if let Some(notes) = m.get_mut("annotations").and_then(|a| a.as_object_mut()) {
                        for key in ["io.containerd.image.name", "org.opencontainers.image.ref.name"] {
                            if let Some(v) = notes.remove(key) {
                                prepared.tags_dropped.extend(v.as_str().map(str::to_owned));
                            }
                        }
                    }
                }
                append_json(&mut writer, &mut header, &path, &index).map_err(io_out)?;
            }
            _ if header.entry_type().is_symlink() || header.entry_type().is_hard_link() => {
                let link = entry.link_name().map_err(io_in)?.unwrap_or_default().into_owned();
                writer.append_link(&mut header, &path, link).map_err(io_out)?;
            }
            _ => writer.append_data(&mut header, &path, &mut entry).map_err(io_out)?,
        }
    }
    if !saw_manifest {
        return Err(mismatch("no manifest.json: not an image archive `docker save` writes".into()));
    }
    let mut inner = writer.into_inner().map_err(io_out)?;
    inner.flush().map_err(io_out)?;
    inner.into_inner().map_err(|e| io_out(e.into_error()))?.sync_all().map_err(io_out)?;
    prepared.tags_dropped.sort();
    prepared.tags_dropped.dedup();
    Ok(prepared)
}

/// Reads a small JSON entry (at most 1 MiB).
fn json<T: serde::de::DeserializeOwned>(entry: &mut impl Read, archive: &Path) -> Result<T, Error> {
    let mut bytes = Vec::new();
    entry.take(1 << 20).read_to_end(&mut bytes).map_err(|source| Error::Io { path: archive.to_owned(), source })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::CorruptState { path: archive.to_owned(), reason: format!("image archive: {e}") })
}

fn append_json<W: std::io::Write, T: serde::Serialize>(
    writer: &mut tar::Builder<W>,
    header: &mut tar::Header,
    path: &Path,
    value: &T,
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    header.set_size(bytes.len() as u64);
    writer.append_data(header, path, bytes.as_slice())
}

fn strings(value: Option<&serde_json::Value>) -> Vec<String> {
    value.and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::orchestrator::tar::{Entry, build};

    const ID: &str = "sha256:2ab2ecb5d5f6e5cdc8579d08af0e1811f49e1a694d30c0ce737177db5938ff3f";

    fn archive(manifest: &str, extra: &[Entry]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = vec![
            Entry::file(&format!("{}.json", &ID[7..]), "{}", 0o644),
            Entry::file("manifest.json", manifest, 0o644),
            Entry::file("repositories", r#"{"nginx":{"latest":"abc"}}"#, 0o644),
        ];
        entries.extend_from_slice(extra);
        std::fs::write(dir.path().join("in.tar"), build(&entries)).unwrap();
        dir
    }

    #[test]
    fn tags_are_dropped_and_the_rest_kept() {
        let manifest = format!(r#"[{{"Config":"{}.json","RepoTags":["nginx:latest"],"Layers":[]}}]"#, &ID[7..]);
        let dir = archive(&manifest, &[Entry::file("layer/layer.tar", "bytes", 0o644)]);
        let out = dir.path().join("out.tar");
        let prepared = prepare(&dir.path().join("in.tar"), &out, ID, "app", "app/a.tar").unwrap();
        assert_eq!(prepared.tags_dropped, vec!["nginx:latest".to_owned()]);
        let mut names = Vec::new();
        let mut manifest_out = String::new();
        for e in tar::Archive::new(std::fs::File::open(&out).unwrap()).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            if name == "manifest.json" {
                e.read_to_string(&mut manifest_out).unwrap();
            }
            names.push(name);
        }
        assert!(!names.contains(&"repositories".to_owned()));
        assert!(names.contains(&"layer/layer.tar".to_owned()));
        assert!(manifest_out.contains(r#""RepoTags":null"#), "{manifest_out}");
    }

    #[test]
    fn another_image_or_several_are_refused() {
        let other = r#"[{"Config":"ffff.json","RepoTags":null,"Layers":[]}]"#;
        let dir = archive(other, &[]);
        let err = prepare(&dir.path().join("in.tar"), &dir.path().join("o.tar"), ID, "app", "t").unwrap_err();
        assert!(matches!(err, Error::ImageMismatch { .. }), "{err}");
        let two = format!(r#"[{{"Config":"{0}.json"}},{{"Config":"{0}.json"}}]"#, &ID[7..]);
        let dir = archive(&two, &[]);
        let err = prepare(&dir.path().join("in.tar"), &dir.path().join("o.tar"), ID, "app", "t").unwrap_err();
        assert!(err.to_string().contains("2 images"), "{err}");
    }
}
