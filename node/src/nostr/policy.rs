//! The install policy for apps found on Nostr (`[nostr_policy]` in `config.toml`), applied in
//! this order:
//!
//! 1. `deny`: a publisher named there (by its DID, or by any Nostr key bound to it) is refused;
//! 2. `allow`: a publisher named there is installable whatever its score;
//! 3. `min_score`: otherwise the publisher's trust score must be at least `min_score`.
//!
//! A refusal names the rule that refused. An entry that is neither a `did:key` nor an `npub`
//! refuses every Nostr install until it is fixed, so a typo never silently lets anything in.

use std::str::FromStr as _;

use archy_nostr::event::bech32_npub;
use archy_nostr::nostr_sdk::PublicKey;
use catalog::DidKey;

use crate::config::NostrPolicy;

/// Why the policy refused a publisher.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("refused by {}: {detail}", rule_name(rule))]
pub struct Refusal {
    /// The rule: `deny`, `min_score`, the list whose entry is invalid, or [`KEY_RULE`].
    pub rule: &'static str,
    /// What the rule found.
    pub detail: String,
}

/// The rule of a refusal by the publisher key statements (docs/nostr.md, "Key succession and
/// revocation"), which come before the policy: a revoked key is refused whatever the operator
/// allowed.
pub const KEY_RULE: &str = "key";

fn rule_name(rule: &str) -> String {
    if rule == KEY_RULE { "the publisher key rules".to_owned() } else { format!("nostr_policy.{rule}") }
}

/// Why the policy let a publisher through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Named in `allow`.
    Allowed,
    /// Its score reaches `min_score`.
    Score,
}

/// A `deny` or `allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Did(DidKey),
    Npub(PublicKey),
}

fn selectors(list: &[String], rule: &'static str) -> Result<Vec<(Selector, String)>, Refusal> {
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            let text = text.trim();
            let selector = if text.starts_with("did:") {
                DidKey::from_str(text).ok().map(Selector::Did)
            } else {
                super::trust::parse_npub(text).ok().map(Selector::Npub)
            };
            selector.map(|s| (s, text.to_owned())).ok_or_else(|| Refusal {
                rule,
                detail: format!("entry {i} `{text}` is not a did:key or an npub; fix config.toml"),
            })
        })
        .collect()
}

fn matches(selector: &Selector, did: &DidKey, npubs: &[PublicKey]) -> bool {
    match selector {
        Selector::Did(d) => d == did,
        Selector::Npub(k) => npubs.contains(k),
    }
}

/// Checks a publisher (its DID, the Nostr keys bound to it, its score) against the policy.
pub fn check(policy: &NostrPolicy, did: &DidKey, npubs: &[PublicKey], score: f64) -> Result<Admitted, Refusal> {
    let deny = selectors(&policy.deny, "deny")?;
    let allow = selectors(&policy.allow, "allow")?;
    if let Some((_, entry)) = deny.iter().find(|(s, _)| matches(s, did, npubs)) {
        return Err(Refusal { rule: "deny", detail: format!("publisher {did} is on the deny list (entry `{entry}`)") });
    }
    if allow.iter().any(|(s, _)| matches(s, did, npubs)) {
        return Ok(Admitted::Allowed);
    }
    if score >= policy.min_score {
        return Ok(Admitted::Score);
    }
    let keys = if npubs.is_empty() {
        String::new()
    } else {
        format!(" (Nostr keys {})", npubs.iter().map(bech32_npub).collect::<Vec<_>>().join(", "))
    };
    Err(Refusal {
        rule: "min_score",
        detail: format!("publisher {did}{keys} scores {} < {}", format_score(score), format_score(policy.min_score)),
    })
}

/// A score as the node prints it: one decimal, more below 0.1 so a tiny score is not shown as 0.
pub fn format_score(score: f64) -> String {
    if score > 0.0 && score < 0.1 { format!("{score:.4}") } else { format!("{score:.1}") }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use archy_nostr::nostr_sdk::Keys;

    #[test]
    fn deny_then_allow_then_min_score() {
        let did = catalog::keys::SigningKey::generate().did();
        let npub = Keys::generate().public_key();
        let policy = NostrPolicy { min_score: 1.0, allow: vec![], deny: vec![] };
        let refused = check(&policy, &did, &[npub], 0.3).unwrap_err();
        assert_eq!(refused.rule, "min_score");
        assert!(refused.to_string().starts_with(&format!("refused by nostr_policy.min_score: publisher {did}")));
        assert!(refused.to_string().ends_with("scores 0.3 < 1.0"), "{refused}");
        assert_eq!(check(&policy, &did, &[npub], 1.0), Ok(Admitted::Score));

        let allow = NostrPolicy { allow: vec![bech32_npub(&npub)], ..policy.clone() };
        assert_eq!(check(&allow, &did, &[npub], 0.0), Ok(Admitted::Allowed));

        let both = NostrPolicy { deny: vec![did.to_string()], ..allow };
        let refused = check(&both, &did, &[npub], 100.0).unwrap_err();
        assert_eq!(refused.rule, "deny");

        let typo = NostrPolicy { deny: vec!["npub1nope".into()], ..policy };
        assert_eq!(check(&typo, &did, &[npub], 100.0).unwrap_err().rule, "deny");
    }
}
