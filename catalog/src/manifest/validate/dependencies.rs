//! `[dependencies]`: the other apps an app needs, with the versions it accepts.

use std::collections::BTreeMap;

use super::Validator;
use crate::manifest::AppId;
use crate::manifest::names::NAME_FIX;

impl Validator<'_> {
    pub(super) fn dependencies(
        &mut self,
        raw: &BTreeMap<String, String>,
        app: Option<&AppId>,
    ) -> BTreeMap<AppId, semver::VersionReq> {
        if raw.len() > self.limits.max_dependencies {
            self.p.push(
                "dependencies",
                format!("{} dependencies, over the limit of {}", raw.len(), self.limits.max_dependencies),
                "depend only on the apps this app talks to",
            );
        }
        let mut out = BTreeMap::new();
        for (key, req) in raw {
            let field = format!("dependencies.{key}");
            let id = match key.parse::<AppId>() {
                Ok(id) => id,
                Err(e) => {
                    self.p.push(&field, format!("{e}, so it is not a valid app id"), NAME_FIX);
                    continue;
                }
            };
            if Some(&id) == app {
                self.p.push(&field, "the app depends on itself", "remove the dependency");
                continue;
            }
            match semver::VersionReq::parse(req) {
                Ok(req) => {
                    out.insert(id, req);
                }
                Err(e) => self.p.push(
                    &field,
                    format!("`{req}` is not a version requirement: {e}"),
                    "use a semver requirement like \"^1.2\" or \">=2.0, <3\"",
                ),
            }
        }
        out
    }
}
