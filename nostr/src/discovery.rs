//! What a node does with each archy event it receives, in a fixed order:
//!
//! 1. the Nostr signature (NIP-01 id, BIP-340 signature), size limits and shape ([`event::parse`]);
//! 2. the DID↔npub binding: a release or revocation counts only when a verified binding event
//!    by the same Nostr key names the event's DID;
//! 3. the DID signature over the statement the event makes (for a release: app, version,
//!    envelope BLAKE3 hash and size, and the posting key);
//! 4. versions only move forward per (DID, app), a version's bytes never change, and revoked
//!    versions stay out;
//! 5. the envelope, fetched by hash from the event's locations, must be exactly the announced
//!    bytes and verify on its own ([`catalog::envelope::SignedEnvelope::verify`]), and name the
//!    same app, version and publisher.
//!
//! Publisher key statements (succession, revocation: [`catalog::keylife`]) need no binding: their
//! DID signatures are checked on arrival and they join the node's [`Lineage`]. A release by a DID
//! the lineage refuses (revoked, or a successor of a revoked key) is dropped at step 4 and again
//! at step 5, naming the rule.
//!
//! Only after step 5 is a release [`Accepted`]. [`Discovery`] is the in-memory state those
//! checks need; it does no I/O, so the node decides how to fetch and what to store.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use catalog::DidKey;
use catalog::envelope::{SignedEnvelope, VerifiedManifest};
use catalog::keylife::{Lineage, Statement};
use catalog::manifest::{AppId, Limits};
use nostr_sdk::{Event, EventId, PublicKey};

use crate::event::{self, Announcement, Rejected, Release, bech32_npub};

/// Most events kept while they wait for their binding event.
pub const MAX_PARKED: usize = 1024;
/// Most key statements a node holds (each is at most
/// [`catalog::keylife::MAX_STATEMENT_BYTES`]).
pub const MAX_KEY_STATEMENTS: usize = 4096;

/// What [`Discovery::check`] made of an event.
// One value per event, moved straight on to `accept`: boxing the release would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum Checked {
    /// A verified binding; `unparked` are the events that were waiting for it, to be checked
    /// again.
    Binding {
        /// The DID.
        did: DidKey,
        /// The Nostr key that now speaks for it.
        npub: PublicKey,
        /// Events that waited for this binding.
        unparked: Vec<Event>,
    },
    /// A verified revocation: the node stops offering this version.
    Revocation {
        /// Publisher DID.
        did: DidKey,
        /// App id.
        app: AppId,
        /// The revoked version.
        version: semver::Version,
    },
    /// A key statement whose DID signatures verify; `new` is false for one already held.
    KeyStatement {
        /// The statement.
        statement: Statement,
        /// Whether it was news.
        new: bool,
    },
    /// A release whose Nostr and DID signatures verify; its envelope must be fetched and given
    /// to [`Discovery::accept`].
    Release(PendingRelease),
    /// This exact release was already accepted.
    Known,
    /// A release or revocation whose binding has not been seen yet: kept (up to
    /// [`MAX_PARKED`]) and checked again when the binding arrives.
    Parked(Rejected),
}

/// A release that passed steps 1–4 and waits for its envelope.
#[derive(Debug, Clone)]
pub struct PendingRelease {
    /// The event.
    pub event: Event,
    /// What it announces.
    pub release: Release,
}

/// A release that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The event.
    pub event: Event,
    /// What it announces.
    pub release: Release,
    /// The verified manifest from the fetched envelope.
    pub manifest: VerifiedManifest,
}

/// The state the checks need: verified bindings, the newest accepted version per app, the
/// revoked versions and the events waiting for a binding.
#[derive(Debug, Default)]
pub struct Discovery {
    bindings: HashMap<PublicKey, BTreeSet<DidKey>>,
    newest: HashMap<(DidKey, AppId), (semver::Version, blake3::Hash)>,
    revoked: HashSet<(DidKey, AppId, semver::Version)>,
    parked: VecDeque<Event>,
    parked_ids: HashSet<EventId>,
    lineage: Lineage,
}

impl Discovery {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a verified binding says `npub` speaks for `did`.
    pub fn is_bound(&self, npub: &PublicKey, did: &DidKey) -> bool {
        self.bindings.get(npub).is_some_and(|dids| dids.contains(did))
    }

    /// The Nostr keys bound to `did`.
    pub fn npubs_of(&self, did: &DidKey) -> Vec<PublicKey> {
        let mut keys: Vec<_> = self.bindings.iter().filter(|(_, dids)| dids.contains(did)).map(|(k, _)| *k).collect();
        keys.sort();
        keys
    }

    /// The DIDs `npub` is bound to.
    pub fn dids_of(&self, npub: &PublicKey) -> Vec<DidKey> {
        self.bindings.get(npub).map(|d| d.iter().cloned().collect()).unwrap_or_default()
    }

    /// Forgets the bindings of the Nostr keys `npubs` (the node evicts the bindings of its
    /// least-trusted keys when it holds too many); their later events wait for a binding again.
    pub fn forget_bindings_of(&mut self, npubs: &HashSet<PublicKey>) -> usize {
        let before = self.bindings.len();
        self.bindings.retain(|npub, _| !npubs.contains(npub));
        before - self.bindings.len()
    }

    /// The publisher key statements held, and each DID's standing under them.
    pub fn lineage(&self) -> &Lineage {
        &self.lineage
    }

    /// `Err` naming the rule when the lineage refuses `did`'s releases (a revoked key, one that
    /// descends from one, or one that moved to a successor).
    pub fn check_standing(&self, did: &DidKey) -> Result<(), Rejected> {
        match self.lineage.standing(did).release_refusal(did) {
            Some(reason) => Err(Rejected::KeyRefused(reason)),
            None => Ok(()),
        }
    }

    /// Whether this version was revoked by its publisher.
    pub fn is_revoked(&self, did: &DidKey, app: &AppId, version: &semver::Version) -> bool {
        self.revoked.contains(&(did.clone(), app.clone(), version.clone()))
    }

    /// Events still waiting for their binding; they leave the state (for the node to log as
    /// dropped once a first full read of its relays found no binding for them).
    pub fn take_parked(&mut self) -> Vec<Event> {
        self.parked_ids.clear();
        self.parked.drain(..).collect()
    }

    /// Steps 1–4 for one event.
    pub fn check(&mut self, event: &Event) -> Result<Checked, Rejected> {
        let announcement = event::parse(event)?;
        let npub = event.pubkey;
        match announcement {
            Announcement::Binding(binding) => {
                binding.verify(&npub)?;
                self.bindings.entry(npub).or_default().insert(binding.did.clone());
                let (waiting, rest): (Vec<_>, Vec<_>) = self.parked.drain(..).partition(|e| e.pubkey == npub);
                self.parked = rest.into();
                for e in &waiting {
                    self.parked_ids.remove(&e.id);
                }
                Ok(Checked::Binding { did: binding.did, npub, unparked: waiting })
            }
            Announcement::Revocation(revocation) => {
                if !self.is_bound(&npub, &revocation.did) {
                    return self.park(event, &revocation.did);
                }
                revocation.verify(&npub)?;
                self.revoked.insert((revocation.did.clone(), revocation.app.clone(), revocation.version.clone()));
                Ok(Checked::Revocation { did: revocation.did, app: revocation.app, version: revocation.version })
            }
            Announcement::KeyStatement(statement) => {
                // Past the cap, only statements about a key the node already knows (bound on
                // Nostr, or named by a statement it holds) are taken: strangers' statements are
                // free to make, and must not crowd out a publisher's revocation. Those are bounded
                // by the bound keys and `MAX_PER_KEY`.
                let subject = statement.subject();
                let known = self.bindings.values().any(|d| d.contains(subject)) || self.lineage.names(subject);
                if self.lineage.len() >= MAX_KEY_STATEMENTS && !known {
                    return Err(Rejected::Overloaded(format!(
                        "{MAX_KEY_STATEMENTS} key statements already held; {subject} is not a key this node knows"
                    )));
                }
                let new = self.lineage.add(statement.clone()).map_err(|e| Rejected::BadKeyStatement(e.to_string()))?;
                Ok(Checked::KeyStatement { statement, new })
            }
            Announcement::Release(release) => {
                if !self.is_bound(&npub, &release.did) {
                    return self.park(event, &release.did);
                }
                release.verify(&npub)?;
                self.check_standing(&release.did)?;
                if self.order(&release)? {
                    return Ok(Checked::Known);
                }
                Ok(Checked::Release(PendingRelease { event: event.clone(), release }))
            }
        }
    }

    /// Step 4: `Ok(true)` when this exact release is already accepted.
    fn order(&self, release: &Release) -> Result<bool, Rejected> {
        let (did, app, version) = (&release.did, &release.app, &release.version);
        if self.is_revoked(did, app, version) {
            return Err(Rejected::Revoked { app: app.to_string(), version: version.to_string(), did: did.to_string() });
        }
        match self.newest.get(&(did.clone(), app.clone())) {
            Some((newest, hash)) if newest == version && *hash == release.hash => Ok(true),
            Some((newest, hash)) if newest == version => Err(Rejected::Conflicting {
                app: app.to_string(),
                version: version.to_string(),
                did: did.to_string(),
                known: hash.to_hex().to_string(),
            }),
            Some((newest, _)) if newest > version => Err(Rejected::Replayed {
                app: app.to_string(),
                version: version.to_string(),
                newest: newest.to_string(),
                did: did.to_string(),
            }),
            _ => Ok(false),
        }
    }

    fn park(&mut self, event: &Event, did: &DidKey) -> Result<Checked, Rejected> {
        let reason = Rejected::Unbound { did: did.to_string(), npub: bech32_npub(&event.pubkey) };
        if self.parked_ids.contains(&event.id) {
            return Ok(Checked::Parked(reason));
        }
        if self.parked.len() >= MAX_PARKED {
            return Err(Rejected::Overloaded(format!("{MAX_PARKED} events already wait for a binding; {reason}")));
        }
        self.parked_ids.insert(event.id);
        self.parked.push_back(event.clone());
        Ok(Checked::Parked(reason))
    }

    /// Step 5: the fetched envelope bytes for a pending release. On success the release is
    /// the newest accepted version of its app.
    pub fn accept(&mut self, pending: PendingRelease, bytes: &[u8], limits: &Limits) -> Result<Accepted, Rejected> {
        let release = &pending.release;
        let refuse = |reason: String| Rejected::BadEnvelope { hash: release.hash.to_hex().to_string(), reason };
        if bytes.len() as u64 != release.size {
            return Err(refuse(format!("{} bytes fetched, the event announces {}", bytes.len(), release.size)));
        }
        let got = blake3::hash(bytes);
        if got != release.hash {
            return Err(refuse(format!("the fetched bytes hash to {}", got.to_hex())));
        }
        let manifest =
            SignedEnvelope::from_slice(bytes).and_then(|e| e.verify(limits)).map_err(|e| refuse(e.to_string()))?;
        let m = manifest.manifest();
        if m.id != release.app || m.version != release.version || m.publisher != release.did {
            return Err(refuse(format!(
                "the envelope holds {} {} by {}, the event announces {} {} by {}",
                m.id, m.version, m.publisher, release.app, release.version, release.did
            )));
        }
        // A newer version may have been accepted, or the key revoked, while this one was
        // fetched (the same one again is fine: accepting is idempotent).
        self.check_standing(&release.did)?;
        self.order(release)?;
        self.newest.insert((release.did.clone(), release.app.clone()), (release.version.clone(), release.hash));
        Ok(Accepted { event: pending.event, release: pending.release, manifest })
    }
}
