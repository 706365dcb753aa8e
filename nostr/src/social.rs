//! Trust inputs from Nostr and the node's published scores.
//!
//! - Follows: the `p` tags of a kind 3 follow list (NIP-02). Kind 3 is replaceable, so only the
//!   newest list of each author counts.
//! - Labels: NIP-32 kind 1985 events in the `archy` namespace (`["L","archy"]`), with
//!   `["l","endorse","archy"]` or `["l","report","archy"]` and the labelled keys in `p` tags.
//! - Scores out: NIP-85 trusted assertions, kind 30382, `d` = the subject's hex key, with a
//!   `rank` tag (0–100).
//!
//! Every event is checked with [`crate::event::check_nostr`] before it counts.

use std::collections::{BTreeSet, HashMap, HashSet};

use catalog::trust::{GraphBuilder, Label};
use nostr_sdk::{Event, EventBuilder, Keys, Kind, PublicKey, Tag, Timestamp};

use crate::event::{Rejected, check_nostr, tag};

/// The NIP-32 namespace of archy's labels.
pub const LABEL_NAMESPACE: &str = "archy";
/// NIP-32 label kind.
pub const KIND_LABEL: u16 = 1985;
/// NIP-85 user assertion kind.
pub const KIND_ASSERTION: u16 = 30382;
/// Most `p` tags read from one follow list.
pub const MAX_FOLLOWS: usize = 10_000;
/// Most labelled keys read from one label event.
pub const MAX_LABEL_TARGETS: usize = 256;

/// The graph key of a Nostr key.
pub fn graph_key(key: &PublicKey) -> catalog::trust::PublicKey {
    catalog::trust::PublicKey::from_bytes(key.to_bytes())
}

/// The Nostr key of a graph key.
pub fn nostr_key(key: &catalog::trust::PublicKey) -> Option<PublicKey> {
    PublicKey::from_slice(key.as_bytes()).ok()
}

fn p_tags(event: &Event, max: usize) -> Vec<PublicKey> {
    event
        .tags
        .iter()
        .map(Tag::as_slice)
        .filter(|t| t.first().map(String::as_str) == Some("p"))
        .filter_map(|t| t.get(1).and_then(|k| PublicKey::from_hex(k).ok()))
        .take(max)
        .collect()
}

/// The label of a kind 1985 event in the `archy` namespace, if it is one.
pub fn label_of(event: &Event) -> Option<Label> {
    if event.kind.as_u16() != KIND_LABEL {
        return None;
    }
    let tags: Vec<&[String]> = event.tags.iter().map(Tag::as_slice).collect();
    let namespaced = tags.iter().any(|t| t.len() >= 2 && t[0] == "L" && t[1] == LABEL_NAMESPACE);
    let value = tags.iter().find_map(|t| match t {
        [l, value, ns, ..] if l == "l" && ns == LABEL_NAMESPACE => Some(value.as_str()),
        _ => None,
    })?;
    if !namespaced {
        return None;
    }
    match value {
        "endorse" => Some(Label::Endorse),
        "report" => Some(Label::Report),
        _ => None,
    }
}

/// Follows and labels collected from relays: the newest follow list per author and every
/// distinct label.
#[derive(Debug, Default, Clone)]
pub struct TrustInputs {
    follows: HashMap<PublicKey, (Timestamp, Vec<PublicKey>)>,
    labels: BTreeSet<(PublicKey, PublicKey, bool)>,
}

impl TrustInputs {
    /// Empty inputs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a kind 3 or kind 1985 event into account. `Ok(false)` for an event that is
    /// neither (or an older follow list than the one held).
    pub fn add(&mut self, event: &Event) -> Result<bool, Rejected> {
        check_nostr(event)?;
        if event.kind == Kind::ContactList {
            let newer = self.follows.get(&event.pubkey).is_none_or(|(at, _)| *at < event.created_at);
            if newer {
                self.follows.insert(event.pubkey, (event.created_at, p_tags(event, MAX_FOLLOWS)));
            }
            return Ok(newer);
        }
        let Some(label) = label_of(event) else { return Ok(false) };
        let report = label == Label::Report;
        let targets = p_tags(event, MAX_LABEL_TARGETS);
        let added = !targets.is_empty();
        for target in targets {
            self.labels.insert((event.pubkey, target, report));
        }
        Ok(added)
    }

    /// Number of follow lists held.
    pub fn follow_lists(&self) -> usize {
        self.follows.len()
    }

    /// Number of labels held.
    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    /// The number of labels held from each author.
    pub fn labels_per_author(&self) -> HashMap<PublicKey, usize> {
        let mut out = HashMap::new();
        for (from, _, _) in &self.labels {
            *out.entry(*from).or_default() += 1;
        }
        out
    }

    /// Forgets every label by the `authors`; returns how many labels went.
    pub fn forget_labels_of(&mut self, authors: &HashSet<PublicKey>) -> usize {
        let before = self.labels.len();
        self.labels.retain(|(from, _, _)| !authors.contains(from));
        before - self.labels.len()
    }

    /// Forgets the follow list of `author`; whether one was held.
    pub fn forget_follows_of(&mut self, author: &PublicKey) -> bool {
        self.follows.remove(author).is_some()
    }

    /// Adds every follow and label to a graph builder (seeds are the caller's).
    pub fn fill(&self, builder: &mut GraphBuilder) {
        for (from, (_, follows)) in &self.follows {
            for to in follows {
                builder.follow(graph_key(from), graph_key(to));
            }
        }
        for (from, to, report) in &self.labels {
            let label = if *report { Label::Report } else { Label::Endorse };
            builder.label(graph_key(from), graph_key(to), label);
        }
    }
}

/// A kind 3 follow list (NIP-02).
pub fn follow_list_event(keys: &Keys, follows: &[PublicKey]) -> Result<Event, nostr_sdk::event::builder::Error> {
    let tags = follows.iter().map(|k| Tag::public_key(*k));
    EventBuilder::new(Kind::ContactList, "").tags(tags).sign_with_keys(keys)
}

/// A NIP-32 `archy` label on a publisher's Nostr key.
pub fn label_event(
    keys: &Keys,
    target: &PublicKey,
    label: Label,
    reason: &str,
) -> Result<Event, nostr_sdk::event::builder::Error> {
    let value = match label {
        Label::Endorse => "endorse",
        Label::Report => "report",
    };
    let tags = [
        tag(&["L", LABEL_NAMESPACE]),
        tag(&["l", value, LABEL_NAMESPACE]),
        tag(&["p", &target.to_hex()]),
        tag(&["alt", &format!("archy label: {value} publisher")]),
    ];
    EventBuilder::new(Kind::from_u16(KIND_LABEL), reason).tags(tags).sign_with_keys(keys)
}

/// A NIP-85 trusted assertion (kind 30382) of one key's score, as `rank` 0–100.
pub fn assertion_event(
    keys: &Keys,
    subject: &PublicKey,
    score: f64,
) -> Result<Event, nostr_sdk::event::builder::Error> {
    let rank = score.clamp(0.0, 100.0).round() as u8;
    let tags = [
        tag(&["d", &subject.to_hex()]),
        tag(&["p", &subject.to_hex()]),
        tag(&["rank", &rank.to_string()]),
        tag(&["alt", &format!("archy trust score: rank {rank} of 100")]),
    ];
    EventBuilder::new(Kind::from_u16(KIND_ASSERTION), "").tags(tags).sign_with_keys(keys)
}
