//! Compose variable interpolation (`$VAR`, `${VAR}`, `${VAR:-default}`, `$$`) and what each
//! store's variables mean on an archy node.
//!
//! A store fills some variables itself when it installs an app: Umbrel's `${APP_DATA_DIR}` and
//! `${APP_PASSWORD}`, Runtipi's form fields, CasaOS's `$AppID`. [`Vars::meaning`] says what each
//! becomes in the manifest: a value known now (the app id, the web port), a host fact the node
//! fills in (`derived_env`), a secret the node generates (`secret_env`), the app's data folder
//! (which makes a bind an app volume), or nothing archy offers, with the reason.

use std::collections::BTreeMap;

use catalog::manifest::{Charset, HostFact};

use super::Format;
use super::draft::DraftSecret;

/// One piece of a string after interpolation is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text (`$$` already turned into `$`).
    Text(String),
    /// A variable reference, with the default written after `:-` or `-`, if any.
    Var { name: String, default: Option<String> },
}

/// Splits `s` into text and variable references. `None` when a `${` is not closed.
pub(crate) fn pieces(s: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            text.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}')?;
            let body = &inner[..end];
            let (name, default) = match body.find([':', '-', '?', '+']) {
                Some(i) => {
                    let op = &body[i..];
                    let default = op.strip_prefix(":-").or_else(|| op.strip_prefix('-')).map(str::to_owned);
                    (&body[..i], default)
                }
                None => (body, None),
            };
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Var { name: name.to_owned(), default });
            rest = &inner[end + 1..];
        } else {
            let len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            if len == 0 || after.as_bytes()[0].is_ascii_digit() {
                text.push('$');
                rest = after;
                continue;
            }
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Var { name: after[..len].to_owned(), default: None });
            rest = &after[len..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() || out.is_empty() {
        out.push(Piece::Text(text));
    }
    Some(out)
}

/// What a variable becomes in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meaning {
    /// A value known at import time; `note` says where it came from when that is worth saying.
    Value { value: String, note: Option<String> },
    /// A host fact the node fills in.
    Fact(HostFact),
    /// The host's name as the store spells its domain (`umbrel.local`): archy has the host's
    /// name and the app's URL, so this maps only inside a URL of the app's web port.
    Domain,
    /// A secret the node generates.
    Secret(DraftSecret),
    /// The app's data folder on the host.
    DataDir,
    /// Nothing archy offers; the reason says what to do instead.
    Unknown(String),
}

/// A Runtipi form field: a setting the store asks the user for at install.
#[derive(Debug, Clone)]
pub(crate) struct FormField {
    pub(crate) label: String,
    pub(crate) kind: String,
    pub(crate) default: Option<String>,
    /// `Some` for a `random` field: the secret it becomes.
    pub(crate) secret: Option<DraftSecret>,
}

/// The variables of one import.
#[derive(Debug, Clone)]
pub(crate) struct Vars {
    pub(crate) format: Format,
    pub(crate) app_id: String,
    /// The host port of the app's web UI, when the store names one.
    pub(crate) web_port: Option<u16>,
    /// Runtipi's form fields, by variable.
    pub(crate) form: BTreeMap<String, FormField>,
}

/// The secret name for a variable: `APP_PASSWORD` → `app-password`.
pub(crate) fn secret_name(var: &str) -> String {
    super::name(var).unwrap_or_else(|| "secret".to_owned())
}

impl Vars {
    /// What `${name}` (with `default`) becomes.
    pub(crate) fn meaning(&self, name: &str, default: Option<&str>) -> Meaning {
        let value = |v: &str, note: Option<String>| Meaning::Value { value: v.to_owned(), note };
        let default_or = |reason: String| match default {
            Some(d) => Meaning::Value {
                value: d.to_owned(),
                note: Some(format!("`{name}` is not set on archy: its default `{d}` is used")),
            },
            None => Meaning::Unknown(reason),
        };
        if name == "TZ" {
            return Meaning::Fact(HostFact::Timezone);
        }
        match self.format {
            Format::Umbrel => match name {
                "APP_DATA_DIR" => Meaning::DataDir,
                "APP_PASSWORD" => Meaning::Secret(DraftSecret {
                    name: secret_name(name),
                    length: 32,
                    charset: Charset::Alphanumeric,
                }),
                "APP_SEED" => Meaning::Secret(DraftSecret { name: secret_name(name), length: 64, charset: Charset::Hex }),
                "DEVICE_HOSTNAME" => Meaning::Fact(HostFact::Hostname),
                "DEVICE_DOMAIN_NAME" => Meaning::Domain,
                "UMBREL_ROOT" => default_or(
                    "the Umbrel install folder has no counterpart on an archy node; bind a host path of the node instead (it needs a host_path permission)".into(),
                ),
                "TOR_PROXY_IP" | "TOR_PROXY_PORT" | "APP_HIDDEN_SERVICE" => {
                    default_or("Umbrel's Tor service has no counterpart on an archy node; remove the setting".into())
                }
                _ if name.starts_with("APP_") => default_or(format!(
                    "`{name}` is set by Umbrel for its own apps (exports.sh); archy apps do not read each other's variables, so write the value in `env`"
                )),
                _ => default_or(format!("`{name}` is not set by Umbrel or archy; write the value in `env`")),
            },
            Format::Runtipi => {
                if let Some(field) = self.form.get(name) {
                    if let Some(secret) = &field.secret {
                        return Meaning::Secret(secret.clone());
                    }
                    return match field.default.as_deref().or(default) {
                        Some(d) => value(d, Some(format!("form field \"{}\" ({}) is set to its default `{d}`; archy has no install-time settings", field.label, field.kind))),
                        None => Meaning::Unknown(format!(
                            "the user fills in form field \"{}\" ({}) at install; archy has no install-time settings, so write a value in `env` (or generate it as a secret)",
                            field.label, field.kind
                        )),
                    };
                }
                match name {
                    "APP_DATA_DIR" => Meaning::DataDir,
                    "APP_ID" => value(&self.app_id, None),
                    "APP_PORT" => match self.web_port {
                        Some(p) => value(&p.to_string(), None),
                        None => default_or("config.json has no `port`; write the port".into()),
                    },
                    "INTERNAL_IP" => Meaning::Fact(HostFact::HostIp),
                    "APP_DOMAIN" | "APP_HOST" | "LOCAL_DOMAIN" => Meaning::Domain,
                    "APP_PROTOCOL" => value("http", Some("`APP_PROTOCOL` is `http`: the node serves the app's port directly".into())),
                    "ROOT_FOLDER_HOST" | "RUNTIPI_MEDIA_DIR" | "RUNTIPI_APP_DATA_DIR" => default_or(
                        "Runtipi's folders have no counterpart on an archy node; bind a host path of the node instead (it needs a host_path permission)".into(),
                    ),
                    _ => default_or(format!("`{name}` is not set by Runtipi or archy; write the value in `env`")),
                }
            }
            Format::Casaos => match name {
                "AppID" => value(&self.app_id, None),
                "PUID" | "PGID" => {
                    value("1000", Some(format!("`{name}` is 1000, the user CasaOS runs apps as; check the image needs it")))
                }
                _ => default_or(format!("`{name}` is not set by CasaOS or archy; write the value in `env`")),
            },
            Format::Compose => default_or(format!(
                "`{name}` comes from the shell or an .env file when Compose runs; write the value in `env`"
            )),
        }
    }

    /// Interpolates `s` when every variable in it has a value known now: the text, the notes on
    /// the values used; or the reason it cannot be (a secret, a host fact, an unknown variable).
    pub(crate) fn literal(&self, s: &str) -> Result<(String, Vec<String>), String> {
        let pieces = pieces(s).ok_or_else(|| format!("`{s}` has a `${{` without its `}}`"))?;
        let mut out = String::new();
        let mut notes = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Var { name, default } => match self.meaning(&name, default.as_deref()) {
                    Meaning::Value { value, note } => {
                        out.push_str(&value);
                        notes.extend(note);
                    }
                    Meaning::Unknown(reason) => return Err(reason),
                    Meaning::Fact(f) => {
                        return Err(format!(
                            "`{name}` is the host fact `{f}`, which archy fills in only as a whole environment variable (`derived_env`)"
                        ));
                    }
                    Meaning::Secret(secret) => {
                        return Err(format!(
                            "`{name}` is the generated secret `{}`, which archy fills in only as a whole environment variable (`secret_env`)",
                            secret.name
                        ));
                    }
                    Meaning::Domain => {
                        return Err(format!(
                            "`{name}` is the store's host name; archy offers the host's name (`hostname`) and the app's URL (`app_url`) only as whole environment variables"
                        ));
                    }
                    Meaning::DataDir => {
                        return Err(format!("`{name}` is the app's data folder, which archy mounts as an app volume"));
                    }
                },
            }
        }
        Ok((out, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(format: Format) -> Vars {
        Vars { format, app_id: "demo".into(), web_port: Some(8080), form: BTreeMap::new() }
    }

    #[test]
    fn interpolation_pieces() {
        assert_eq!(
            pieces("a$$b${X:-d}c$Y-${Z}").expect("ok"),
            vec![
                Piece::Text("a$b".into()),
                Piece::Var { name: "X".into(), default: Some("d".into()) },
                Piece::Text("c".into()),
                Piece::Var { name: "Y".into(), default: None },
                Piece::Text("-".into()),
                Piece::Var { name: "Z".into(), default: None },
            ]
        );
        assert_eq!(pieces("50$").expect("ok"), vec![Piece::Text("50$".into())]);
        assert!(pieces("${OPEN").is_none());
    }

    #[test]
    fn store_variables_mean_what_the_store_says() {
        let umbrel = vars(Format::Umbrel);
        assert_eq!(umbrel.meaning("APP_DATA_DIR", None), Meaning::DataDir);
        assert!(matches!(umbrel.meaning("APP_PASSWORD", None), Meaning::Secret(s) if s.name == "app-password"));
        assert!(matches!(umbrel.meaning("APP_BITCOIN_NODE_IP", None), Meaning::Unknown(_)));
        assert_eq!(vars(Format::Runtipi).literal("port ${APP_PORT}").map(|r| r.0), Ok("port 8080".into()));
        assert_eq!(vars(Format::Casaos).literal("/DATA/AppData/$AppID").map(|r| r.0), Ok("/DATA/AppData/demo".into()));
        assert_eq!(vars(Format::Compose).literal("${WEB:-80}").map(|r| r.0), Ok("80".into()));
        assert!(vars(Format::Compose).literal("${WEB}").is_err());
    }
}
