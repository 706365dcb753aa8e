//! The descriptive fields: title, summary, description, icon, source, categories and license.

use std::collections::BTreeSet;

use super::Validator;
use crate::manifest::{Icon, Name, paths};

impl Validator<'_> {
    /// Rule: one-line text fields are non-empty, bounded and free of control characters.
    pub(super) fn line(&mut self, field: &str, v: &Option<String>, max: usize) -> Option<String> {
        let s = self.required(field, v, &format!("add {field} = \"…\""))?;
        if s.trim().is_empty() {
            self.p.push(field, "value is empty", format!("write a {field}"));
            return None;
        }
        if s.len() > max {
            self.p.push(field, format!("{} bytes, over the limit of {max}", s.len()), format!("shorten the {field}"));
            return None;
        }
        if s.chars().any(char::is_control) {
            self.p.push(field, "value holds a line break or control character", "write it on one line");
            return None;
        }
        Some(s.to_owned())
    }

    pub(super) fn description(&mut self, v: &Option<String>) -> Option<String> {
        let s = self.required("description", v, "add description = \"\"\"…\"\"\" (Markdown)")?;
        let max = self.limits.max_description_len;
        if s.trim().is_empty() {
            self.p.push("description", "value is empty", "describe the app in a few sentences");
            None
        } else if s.len() > max {
            self.p.push(
                "description",
                format!("{} bytes, over the limit of {max}", s.len()),
                "shorten the description and link to the app's documentation",
            );
            None
        } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            self.p.push("description", "value holds a control character", "remove control characters");
            None
        } else {
            Some(s.to_owned())
        }
    }

    /// Rule: an icon is a clean relative path inside the app folder, or an `https://` URL.
    pub(super) fn icon(&mut self, s: &str) -> Option<Icon> {
        if s.contains("://") {
            return self.https_url("icon", s).then(|| Icon::Url(s.to_owned()));
        }
        if !self.string("icon", s) {
            return None;
        }
        match paths::check_relative(s) {
            Ok(()) => Some(Icon::Path(s.to_owned())),
            Err((problem, _)) => {
                self.p.push("icon", problem, "use a file in the app folder like `icon.svg`, or an https:// URL");
                None
            }
        }
    }

    /// Rule: URLs are `https://` with a host, no spaces or control characters.
    pub(super) fn https_url(&mut self, field: &str, s: &str) -> bool {
        if !self.string(field, s) {
            return false;
        }
        let host = s.strip_prefix("https://").map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
        let ok = host.is_some_and(|h| !h.is_empty() && !h.contains('@'))
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            self.p.push(
                field,
                format!("`{s}` is not an https:// URL"),
                "use a full https:// URL like https://example.org/app",
            );
        }
        ok
    }

    pub(super) fn categories(&mut self, list: &[String]) -> Vec<String> {
        if list.len() > self.limits.max_categories {
            self.p.push(
                "categories",
                format!("{} categories, over the limit of {}", list.len(), self.limits.max_categories),
                "keep the most fitting categories",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, c) in list.iter().enumerate() {
            let field = format!("categories[{i}]");
            if let Err(e) = c.parse::<Name>() {
                self.p.push(
                    &field,
                    format!("{e}, so it is not a valid category"),
                    "use a lowercase slug like `media` or `home-automation`",
                );
            } else if !seen.insert(c.as_str()) {
                self.p.push(&field, format!("category `{c}` is listed twice"), "remove the duplicate");
            }
        }
        list.to_vec()
    }

    /// Rule: the license is an SPDX license expression (ids, `AND`/`OR`/`WITH`, parentheses).
    pub(super) fn license(&mut self, v: &Option<String>) -> Option<String> {
        let s = self.required("license", v, "add license = \"<SPDX id>\", e.g. \"MIT\"")?;
        let token_ok = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+:".contains(&b));
        let ok = s.len() <= 256 && s.replace(['(', ')'], " ").split_whitespace().all(token_ok) && !s.trim().is_empty();
        if ok {
            Some(s.to_owned())
        } else {
            self.p.push(
                "license",
                format!("`{s}` is not an SPDX license expression"),
                "use an SPDX id like `MIT`, `GPL-3.0-or-later` or `Apache-2.0 OR MIT`",
            );
            None
        }
    }
}
