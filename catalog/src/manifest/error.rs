//! Validation problems: every problem found in a manifest, each with the field it is about and a fix.

use std::fmt;

/// One problem in a manifest: where it is, what is wrong, and how to fix it.
///
/// `field` is a path into the manifest document: dotted keys with `[i]` for array positions,
/// the same in TOML and JSON, e.g. `containers[1].volumes[0].target` or
/// `containers[0].env.DATABASE_URL`. Problems about the file itself use the file name
/// (`archy.toml`), and a problem about the document as a whole uses `.`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ManifestProblem {
    /// Path of the field the problem is about, e.g. `containers[0].image`.
    pub field: String,
    /// What is wrong, e.g. `image is not pinned by digest`.
    pub problem: String,
    /// What to do about it, e.g. `use name@sha256:<64 hex> or an archive target`.
    pub fix: String,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} — {}", self.field, self.problem, self.fix)
    }
}

/// Every problem found in a manifest; returned when a manifest does not validate.
///
/// Validation does not stop at the first problem: an author sees the whole list at once.
/// The one exception is a document that cannot be read into the schema's shape at all (a TOML
/// syntax error, an unknown field, a string where a number belongs): that single problem is
/// reported alone, because nothing after it can be checked reliably.
///
/// `Display` prints one problem per line as `field: problem — fix`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ManifestErrors {
    /// The problems, in document order as far as possible. Never empty.
    pub problems: Vec<ManifestProblem>,
}

impl ManifestErrors {
    /// A list holding a single problem.
    pub fn single(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { problems: vec![ManifestProblem { field: field.into(), problem: problem.into(), fix: fix.into() }] }
    }

    /// Whether any problem is about exactly `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.problems.iter().any(|p| p.field == field)
    }

    /// The field paths of all problems, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.problems.iter().map(|p| p.field.as_str()).collect()
    }
}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

/// Collects problems while a manifest is checked.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<ManifestProblem>,
}

impl Problems {
    /// Records a problem.
    pub(crate) fn push(&mut self, field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.list.push(ManifestProblem { field: field.into(), problem: problem.into(), fix: fix.into() });
    }

    /// Whether no problem was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else every recorded problem.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ManifestErrors> {
        if self.list.is_empty() { Ok(value) } else { Err(ManifestErrors { problems: self.list }) }
    }

    /// Ends with the recorded problems; the caller knows there is at least one.
    pub(crate) fn into_errors(self) -> ManifestErrors {
        ManifestErrors { problems: self.list }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_one_problem_per_line() {
        let mut problems = Problems::default();
        problems.push("containers[0].image", "image is not pinned by digest", "use name@sha256:<64 hex>");
        problems.push("id", "`Bad` is not a valid app id", "use lowercase letters");
        let errors = problems.into_errors();
        assert_eq!(
            errors.to_string(),
            "containers[0].image: image is not pinned by digest — use name@sha256:<64 hex>\n\
             id: `Bad` is not a valid app id — use lowercase letters"
        );
        assert_eq!(errors.fields(), ["containers[0].image", "id"]);
    }
}
