//! What an import did: the keys it mapped, everything it could not map (with the source file and
//! line), the notes on how store conventions were translated, and the images still to pin.

use std::fmt;

use serde::Serialize;

use super::Format;

/// A place in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The file, relative to the source folder (`docker-compose.yml`, `umbrel-app.yml`…).
    pub file: String,
    /// The line, counted from 1.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Something in the source that the manifest does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmapped {
    /// Where it is.
    #[serde(flatten)]
    pub origin: Origin,
    /// What it is: a key (`cap_add`), or a key and an entry (`environment.DB_URL`).
    pub what: String,
    /// Why it is not mapped, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}` is not mapped: {}", self.origin, self.what, self.reason)
    }
}

/// How something was mapped, where the translation is worth a second look (a store variable that
/// became a generated secret, a default value that was used, a port that was dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Where it is.
    #[serde(flatten)]
    pub origin: Origin,
    /// What was done.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// An image referenced by tag only, with the command that prints its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// Where it is.
    #[serde(flatten)]
    pub origin: Origin,
    /// The manifest's container.
    pub container: String,
    /// The reference as written.
    pub image: String,
    /// A shell command that prints `name@sha256:…` for it.
    pub command: String,
}

impl Pin {
    /// The pin for `image`: `docker pull` it, then print its repository digest.
    pub(crate) fn new(origin: Origin, container: &str, image: &str) -> Self {
        let command = format!("docker pull {image} && docker inspect --format '{{{{index .RepoDigests 0}}}}' {image}");
        Self { origin, container: container.to_owned(), image: image.to_owned(), command }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: image `{}` of container `{}` is not pinned by digest; print its digest with `{}` and write the printed name@sha256:… as the image",
            self.origin, self.image, self.container, self.command
        )
    }
}

/// What happened to the app's icon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IconOutcome {
    /// A local file was copied into the app folder.
    Copied {
        /// The file in the source folder.
        from: String,
        /// The file name in the app folder (the manifest's `icon`).
        to: String,
    },
    /// The source names an icon by URL only; the manifest references it (when it is `https://`)
    /// and nothing was downloaded.
    Url {
        /// The URL.
        url: String,
        /// Whether the manifest uses it (`https://` URLs only).
        used: bool,
    },
    /// The source has no icon.
    None,
}

/// The report of one import.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The store format read.
    pub format: Format,
    /// Why that format: given with `--format`, or what detection saw.
    pub detected: String,
    /// The app id written.
    pub id: String,
    /// Compose keys that were mapped completely.
    pub mapped: usize,
    /// Compose keys in the source (every key of every service, and the top-level keys but
    /// `services` and the obsolete `version`).
    pub total: usize,
    /// Everything that was not mapped.
    pub unmapped: Vec<Unmapped>,
    /// How store conventions were translated.
    pub notes: Vec<Note>,
    /// Images to pin by digest.
    pub pins: Vec<Pin>,
    /// The icon.
    pub icon: IconOutcome,
    /// Permissions the manifest requests, as `docs/manifest.md` spells them.
    pub permissions: Vec<String>,
}

impl Report {
    /// `mapped * 100 / total`, rounded; 100 when there is nothing to map.
    pub fn percent(&self) -> usize {
        (self.mapped * 100 + self.total / 2).checked_div(self.total).unwrap_or(100)
    }

    /// The summary figure: `mapped N of M compose keys (P %)`.
    pub fn figure(&self) -> String {
        format!("mapped {} of {} compose keys ({} %)", self.mapped, self.total, self.percent())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "format: {} ({})", self.format, self.detected)?;
        match &self.icon {
            IconOutcome::Copied { from, to } => writeln!(f, "icon: copied {from} to {to}")?,
            IconOutcome::Url { url, used: true } => {
                writeln!(f, "icon: {url} is referenced by URL (not downloaded)")?;
            }
            IconOutcome::Url { url, used: false } => {
                writeln!(
                    f,
                    "icon: {url} is not an https:// URL and was not downloaded; put an icon file in the app folder and set `icon`"
                )?;
            }
            IconOutcome::None => writeln!(f, "icon: the source has none")?,
        }
        if !self.permissions.is_empty() {
            writeln!(f, "permissions requested: {}", self.permissions.join(", "))?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "notes:")?;
            for note in &self.notes {
                writeln!(f, "  {note}")?;
            }
        }
        if !self.pins.is_empty() {
            writeln!(f, "images to pin:")?;
            for pin in &self.pins {
                writeln!(f, "  {pin}")?;
            }
        }
        if !self.unmapped.is_empty() {
            writeln!(f, "not mapped:")?;
            for u in &self.unmapped {
                writeln!(f, "  {u}")?;
            }
        }
        write!(f, "{}: {}", self.id, self.figure())
    }
}
