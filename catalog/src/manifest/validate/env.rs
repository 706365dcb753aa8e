//! Generated `[[secrets]]` and a container's environment (`env`, `derived_env`, `secret_env`).

use std::collections::{BTreeMap, BTreeSet};

use super::{Context, Validator};
use crate::manifest::raw::{RawContainer, RawSecret};
use crate::manifest::{Charset, HostFact, Name, Secret};

/// A container's `env`, `derived_env` and `secret_env`, each `None` when it had a problem.
pub(super) type EnvMaps =
    (Option<BTreeMap<String, String>>, Option<BTreeMap<String, HostFact>>, Option<BTreeMap<String, Name>>);

const ENV_FIX: &str = "use letters, digits and `_`, not starting with a digit (e.g. DATABASE_URL)";

impl Validator<'_> {
    pub(super) fn secrets(&mut self, raw: &[RawSecret]) -> (Vec<Secret>, BTreeSet<Name>) {
        if raw.len() > self.limits.max_secrets {
            self.p.push(
                "secrets",
                format!("{} secrets, over the limit of {}", raw.len(), self.limits.max_secrets),
                "derive several values from fewer secrets",
            );
        }
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        for (k, r) in raw.iter().enumerate() {
            let name = self.name(&format!("secrets[{k}].name"), &r.name, "secret");
            let length = r.length.unwrap_or(Secret::DEFAULT_LENGTH);
            let (min, max) = (Secret::MIN_LENGTH, self.limits.max_secret_length);
            let length_ok = (min..=max).contains(&length);
            if !length_ok {
                self.p.push(
                    format!("secrets[{k}].length"),
                    format!("length {length} is outside {min}..={max}"),
                    format!("use a length between {min} and {max}"),
                );
            }
            let charset = match r.charset.as_deref().map(str::parse::<Charset>) {
                None => Some(Charset::default()),
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => {
                    self.p.push(
                        format!("secrets[{k}].charset"),
                        format!("{e} for a charset"),
                        "use alphanumeric, hex or base64url",
                    );
                    None
                }
            };
            let Some(name) = name else { continue };
            if !names.insert(name.clone()) {
                self.p.push(
                    format!("secrets[{k}].name"),
                    format!("secret name `{name}` is declared twice"),
                    "give each secret its own name",
                );
                continue;
            }
            if let (true, Some(charset)) = (length_ok, charset) {
                out.push(Secret { name, length, charset });
            }
        }
        (out, names)
    }

    /// Rules: variable names are `[A-Za-z_][A-Za-z0-9_]*`, unique across env, derived_env and
    /// secret_env; derived values name known host facts; secret values name declared secrets.
    pub(super) fn env(&mut self, base: &str, c: &RawContainer, cx: &Context<'_>) -> EnvMaps {
        let total = c.env.len() + c.derived_env.len() + c.secret_env.len();
        let mut ok = true;
        if total > self.limits.max_env_vars {
            self.p.push(
                format!("{base}.env"),
                format!("{total} environment variables, over the limit of {}", self.limits.max_env_vars),
                "use fewer variables",
            );
            ok = false;
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (table, map) in [("env", &c.env), ("derived_env", &c.derived_env), ("secret_env", &c.secret_env)] {
            for key in map.keys() {
                let field = format!("{base}.{table}.{key}");
                if !env_name_ok(key) {
                    self.p.push(&field, format!("`{key}` is not a valid environment variable name"), ENV_FIX);
                    ok = false;
                } else if let Some(other) = seen.insert(key, table) {
                    self.p.push(
                        &field,
                        format!("`{key}` is also set in {base}.{other}"),
                        "set each variable in one place",
                    );
                    ok = false;
                }
            }
        }
        for (key, value) in &c.env {
            ok &= self.string(&format!("{base}.env.{key}"), value);
        }
        let mut derived = BTreeMap::new();
        for (key, value) in &c.derived_env {
            match value.parse::<HostFact>() {
                Ok(fact) => {
                    derived.insert(key.clone(), fact);
                }
                Err(_) => {
                    let known: Vec<&str> = HostFact::ALL.iter().map(|f| f.as_str()).collect();
                    self.p.push(
                        format!("{base}.derived_env.{key}"),
                        format!("unknown host fact `{value}`"),
                        format!("use one of {}", known.join(", ")),
                    );
                    ok = false;
                }
            }
        }
        let mut secret = BTreeMap::new();
        for (key, value) in &c.secret_env {
            let field = format!("{base}.secret_env.{key}");
            match value.parse::<Name>() {
                Ok(name) if cx.secrets.contains(&name) => {
                    secret.insert(key.clone(), name);
                }
                _ => {
                    self.p.push(
                        &field,
                        format!("secret `{value}` is not declared in [[secrets]]"),
                        format!("add a [[secrets]] entry with name = \"{value}\", or fix the name"),
                    );
                    ok = false;
                }
            }
        }
        if ok { (Some(c.env.clone()), Some(derived), Some(secret)) } else { (None, None, None) }
    }
}

fn env_name_ok(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
