//! The app folders `archy app new --template NAME` writes.
//!
//! Every template but `registry-image` is a complete folder whose image is built from Debian's
//! busybox-static by its own `build.sh`, so the new app validates at once, and passes `archy app
//! test` as soon as `./build.sh` has written its image archive, on a machine that reaches no
//! container registry. The files are kept under `publisher/templates/` and compiled in; `{{id}}`,
//! `{{title}}`, `{{publisher}}` and `{{initial}}` are filled in when the folder is written.

use std::path::{Path, PathBuf};

use catalog::did::DidKey;
use catalog::manifest::AppId;

/// The shapes of app `archy app new` scaffolds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// One web container serving pages from a volume (busybox httpd, image built here).
    Web,
    /// A web container and a database container sharing a generated password; the web
    /// container starts once the database is healthy.
    WebDb,
    /// A password-protected file share over HTTP; the files live in a volume.
    FileShare,
    /// One container from a registry image pinned by digest (nginx); nothing to build, but the
    /// image must be pulled onto the engine before `archy app test`.
    RegistryImage,
}

/// One file of a template: its path in the app folder, its text, and whether it is executable.
struct File {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> File {
    File { path, text, executable: false }
}

const fn script(path: &'static str, text: &'static str) -> File {
    File { path, text, executable: true }
}

const BUILD: File = script("build.sh", include_str!("../templates/build.sh"));
const ICON: File = file("icon.svg", include_str!("../templates/icon.svg"));

const WEB: &[File] = &[
    file("archy.toml", include_str!("../templates/web/archy.toml")),
    BUILD,
    ICON,
    file("image/Dockerfile", include_str!("../templates/web/image/Dockerfile")),
    file("image/www/index.html", include_str!("../templates/web/image/www/index.html")),
];

const WEB_DB: &[File] = &[
    file("archy.toml", include_str!("../templates/web-db/archy.toml")),
    BUILD,
    ICON,
    file("image/Dockerfile", include_str!("../templates/web-db/image/Dockerfile")),
    file("image/www/index.html", include_str!("../templates/web-db/image/www/index.html")),
    script("image/www/cgi-bin/status", include_str!("../templates/web-db/image/www/cgi-bin/status")),
];

const FILE_SHARE: &[File] = &[
    file("archy.toml", include_str!("../templates/file-share/archy.toml")),
    BUILD,
    ICON,
    file("image/Dockerfile", include_str!("../templates/file-share/image/Dockerfile")),
    file("image/srv/index.html", include_str!("../templates/file-share/image/srv/index.html")),
    script("image/srv/cgi-bin/list", include_str!("../templates/file-share/image/srv/cgi-bin/list")),
    script("image/srv/cgi-bin/put", include_str!("../templates/file-share/image/srv/cgi-bin/put")),
];

/// The manifest is `catalog::manifest::example_toml`, written in [`Template::write`].
const REGISTRY_IMAGE: &[File] = &[file("archy.toml", "")];

impl Template {
    /// Whether the folder holds a `build.sh` to run before `archy app test`.
    pub fn builds_its_image(self) -> bool {
        self != Template::RegistryImage
    }

    /// Writes the template for app `id` of `publisher` into `folder`, which must not exist yet
    /// (it is created, with its parents). Returns the files written, `archy.toml` first.
    pub fn write(self, folder: &Path, id: &AppId, publisher: &DidKey) -> std::io::Result<Vec<PathBuf>> {
        if folder.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", folder.display()),
            ));
        }
        let title = title(id.as_str());
        let initial = title.chars().next().map(|c| c.to_string()).unwrap_or_default();
        let fill = |text: &str| {
            text.replace("{{id}}", id.as_str())
                .replace("{{title}}", &title)
                .replace("{{publisher}}", &publisher.to_string())
                .replace("{{initial}}", &initial)
        };
        let files = match self {
            Template::Web => WEB,
            Template::WebDb => WEB_DB,
            Template::FileShare => FILE_SHARE,
            Template::RegistryImage => REGISTRY_IMAGE,
        };
        std::fs::create_dir_all(folder)?;
        let mut written = Vec::with_capacity(files.len());
        for f in files {
            let path = folder.join(f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let text = match (self, f.path) {
                (Template::RegistryImage, "archy.toml") => catalog::manifest::example_toml(id.as_str(), publisher),
                // The build script is copied as it is: it reads the app from archy.toml.
                (_, "build.sh") => f.text.to_owned(),
                _ => fill(f.text),
            };
            std::fs::write(&path, text)?;
            if f.executable {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
            written.push(path);
        }
        Ok(written)
    }
}

/// `my-app` → `My App`.
fn title(id: &str) -> String {
    id.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use catalog::manifest::{Limits, Manifest};
    use clap::ValueEnum as _;

    use super::*;

    fn publisher() -> DidKey {
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp".parse().expect("did")
    }

    #[test]
    fn every_template_writes_a_folder_that_validates() {
        for template in Template::value_variants() {
            let dir = tempfile::tempdir().expect("tempdir");
            let folder = dir.path().join("my-app");
            let id: AppId = "my-app".parse().expect("id");
            let files = template.write(&folder, &id, &publisher()).expect("written");
            assert_eq!(files[0], folder.join("archy.toml"));
            let m = Manifest::from_dir(&folder, &Limits::default())
                .unwrap_or_else(|e| panic!("{template:?} does not validate: {e}"));
            assert_eq!((m.id.as_str(), m.title.as_str()), ("my-app", "My App"), "{template:?}");
            assert_eq!(m.publisher, publisher());
            for f in &files {
                let text = std::fs::read_to_string(f).expect("read");
                // `{{.Id}}` is the build script's docker format string, not a placeholder.
                assert!(!text.replace("{{.Id}}", "").contains("{{"), "{} keeps a placeholder", f.display());
            }
            assert_eq!(template.builds_its_image(), folder.join("build.sh").is_file());
        }
    }

    #[test]
    fn a_template_never_writes_into_an_existing_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id: AppId = "my-app".parse().expect("id");
        let err = Template::Web.write(dir.path(), &id, &publisher()).expect_err("exists");
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(std::fs::read_dir(dir.path()).expect("read").next().is_none());
    }
}
