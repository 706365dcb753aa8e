//! Output for humans by default and JSON with `--json`; the user-error marker.

use std::fmt;

/// An error caused by the user's input (exit code 1), with a message that says what to fix.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Returns a [`UserError`] as an `anyhow::Error`.
pub fn user_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(message.into()))
}

/// Where command results go.
pub struct Output {
    /// Print JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints `human` as text, or `value` as one JSON document with `--json`.
    pub fn print(&self, human: impl fmt::Display, value: &serde_json::Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            println!("{human}");
        }
    }
}
