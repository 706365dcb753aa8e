//! The lifecycle operations: install, start, stop, restart, update, uninstall, status, logs.
//! Each takes the lock, writes the desired state, then converges the engine to it.

use std::collections::BTreeSet;

use catalog::manifest::{LABEL_APP, LABEL_MANAGED, LABEL_SHARED, Manifest, Protocol};
use futures_util::{Stream, StreamExt as _};
use serde::Serialize;

use super::facts::HostFacts;
use super::reconcile::Desired;
use super::snapshot::{Copy, Reason};
use super::source::SourceError;
use super::state::{AppRecord, Phase, RunState, UpdateOutcome};
use super::status::{AppStatus, app_status, container_for};
use super::{Error, Orchestrator, VerifiedManifest, policy, test_pause};

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InstallReport {
    /// Apps installed, dependencies first, as `[app, version]` pairs (empty if it was already
    /// installed).
    #[schema(value_type = Vec<Vec<String>>)]
    pub installed: Vec<(String, String)>,
    /// The app was already installed at that version (its containers were converged).
    pub already_installed: bool,
}

/// What `update` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UpdateReport {
    /// Version before.
    pub from: String,
    /// Version now.
    pub to: String,
    /// Nothing to do: already at the newest (or requested) version.
    pub unchanged: bool,
}

impl Orchestrator {
    /// Installs `app` (the newest version when `version` is `None`), installing the apps it
    /// depends on first.
    pub async fn install(&self, app: &str, version: Option<&semver::Version>) -> Result<InstallReport, Error> {
        self.prefetch(app, version).await;
        let _guard = self.lock().await?;
        let mut report = InstallReport { installed: Vec::new(), already_installed: false };
        if let Some(record) = self.state.load(app)? {
            if version.is_some_and(|v| *v != record.version) {
                return Err(Error::NotAvailable(format!(
                    "app `{app}` is installed at {}; use `update {app} --to <version>` to change versions",
                    record.version
                )));
            }
            report.already_installed = true;
            let mut record = record;
            record.run = RunState::Running;
            self.state.save(&record)?;
            let facts = HostFacts::detect(&self.config().host);
            match record.phase.clone() {
                // An update a crash interrupted is finished as an update (with its rollback).
                Phase::Updating { from, snapshot } => self.finish_update(record, from, snapshot, &facts).await?,
                _ => self.finish_install(record, &facts).await?,
            }
            return Ok(report);
        }
        let manifest = self.fetch_manifest(app, version)?;
        let mut chain = Vec::new();
        self.install_locked(manifest, &mut chain, &mut report).await?;
        Ok(report)
    }

    /// Installs a manifest the caller already has (it must still come from a verifier).
    pub async fn install_verified(&self, manifest: VerifiedManifest) -> Result<InstallReport, Error> {
        let _guard = self.lock().await?;
        let mut report = InstallReport { installed: Vec::new(), already_installed: false };
        self.install_locked(manifest, &mut Vec::new(), &mut report).await?;
        Ok(report)
    }

    /// Fetches the image archives `app` at `version` needs *before* the orchestrator lock is
    /// taken, so a slow provider holds up this command only, never every other lifecycle
    /// command and the reconciler. Best effort: whatever fails here is met again, and reported,
    /// under the lock (where the fetch then finds the verified file already stored).
    async fn prefetch(&self, app: &str, version: Option<&semver::Version>) {
        let Ok(manifest) = self.fetch_manifest(app, version) else { return };
        for c in &manifest.manifest().containers {
            if let catalog::manifest::Image::Archive { target, image_id } = &c.image
                && !self.engine.has_image(&image_id.to_string()).await.unwrap_or(true)
            {
                self.progress.report(app, "fetch", target.as_str(), None);
                match self.source.fetch_archive(target).await {
                    Ok(path) => {
                        let size = std::fs::metadata(&path).map(|m| m.len()).ok();
                        self.progress.report(app, "fetched", target.as_str(), size);
                    }
                    Err(e) => tracing::debug!(%app, %target, "prefetch: {e}"),
                }
            }
        }
    }

    /// The manifest `app`'s install would use now (its newest version), verified.
    pub fn manifest_of(&self, app: &str) -> Result<VerifiedManifest, Error> {
        self.fetch_manifest(app, None)
    }

    /// What `m` uses that this node's configuration does not grant (empty: it may install), in
    /// the order [`Self::preflight`] checks: what the manifest says first, then, once that is
    /// granted, where its binds really lead.
    pub fn refusals_of(&self, m: &Manifest) -> Vec<policy::Refusal> {
        let config = self.config();
        let refusals = policy::refusals(m, config.grants(m.id.as_str()), self.engine.socket());
        if !refusals.is_empty() {
            return refusals;
        }
        policy::resolve_binds(m, config.grants(m.id.as_str()), self.engine.socket()).err().unwrap_or_default()
    }

    fn fetch_manifest(&self, app: &str, version: Option<&semver::Version>) -> Result<VerifiedManifest, Error> {
        app.parse::<catalog::manifest::AppId>()
            .map_err(|e| Error::BadAppId { id: app.to_owned(), reason: e.to_string() })?;
        self.source.manifest(app, version).map_err(|e| match e {
            SourceError::Refused(rule) => Error::NostrPolicy(rule),
            SourceError::Expired(why) => Error::CatalogExpired(why),
            other => Error::NotAvailable(other.to_string()),
        })
    }

    pub(crate) async fn install_locked(
        &self,
        manifest: VerifiedManifest,
        chain: &mut Vec<String>,
        report: &mut InstallReport,
    ) -> Result<(), Error> {
        let m = manifest.manifest().clone();
        let app = m.id.to_string();
        chain.push(app.clone());
        self.preflight(&m)?;
        // Dependencies: installed ones must match; missing ones are installed first, at the
        // newest version the requirement accepts.
        for (dep, req) in &m.dependencies {
            let dep = dep.as_str();
            let problem = |problem: String| Error::Dependency {
                app: app.clone(),
                dependency: dep.to_owned(),
                requirement: req.to_string(),
                problem,
            };
            if let Some(installed) = self.state.load(dep)? {
                if !req.matches(&installed.version) {
                    return Err(problem(format!("{} is installed", installed.version)));
                }
                continue;
            }
            if chain.iter().any(|c| c == dep) {
                return Err(problem(format!("dependency cycle: {} -> {dep}", chain.join(" -> "))));
            }
            let versions = self.source.versions(dep).map_err(Error::Source)?;
            let best = versions.into_iter().filter(|v| req.matches(v)).max();
            let Some(best) = best else { return Err(problem("no available version matches".into())) };
            let dep_manifest = self.fetch_manifest(dep, Some(&best))?;
            Box::pin(self.install_locked(dep_manifest, chain, report)).await?;
        }
        chain.pop();

        // Images before anything else: a missing or mismatched image creates nothing.
        self.ensure_images(&m).await?;
        // Desired state before it is applied.
        self.state.store_manifest(&manifest)?;
        let record = AppRecord {
            app: app.clone(),
            version: m.version.clone(),
            manifest_hash: manifest.manifest_hash().to_hex().to_string(),
            run: RunState::Running,
            phase: Phase::Installing,
            last_error: None,
            last_update: None,
        };
        self.state.save(&record)?;
        test_pause("after-desired-state");
        self.finish_install(record, &HostFacts::detect(&self.config().host)).await?;
        report.installed.push((app, m.version.to_string()));
        Ok(())
    }

    /// Converges an app being installed, waits for it to be healthy, and marks it ready (or
    /// records why it failed).
    pub(crate) async fn finish_install(&self, record: AppRecord, facts: &HostFacts) -> Result<(), Error> {
        let desired = self.desired(record)?;
        let observed = self.observe(Some(&desired.record.app)).await?;
        let result = self.converge(&desired, &observed, facts, desired.record.run == RunState::Running).await;
        let mut record = desired.record;
        record.phase = Phase::Ready;
        record.last_error = result.as_ref().err().map(ToString::to_string);
        self.state.save(&record)?;
        result.map(|_| ())
    }

    /// Checks that this node may run `m`: node version, policy, host ports.
    pub(crate) fn preflight(&self, m: &Manifest) -> Result<(), Error> {
        let app = m.id.as_str();
        let ours = semver::Version::parse(env!("CARGO_PKG_VERSION")).map_err(|e| Error::Internal(e.to_string()))?;
        if m.min_node_version > ours {
            return Err(Error::NodeTooOld {
                app: app.to_owned(),
                version: m.version.to_string(),
                needed: m.min_node_version.to_string(),
                ours: ours.to_string(),
            });
        }
        let refusals = policy::refusals(m, self.config().grants(app), self.engine.socket());
        if !refusals.is_empty() {
            return Err(Error::PolicyRefused { app: app.to_owned(), refusals });
        }
        // The binds' real paths too (checked again at every apply).
        if let Err(refusals) = policy::resolve_binds(m, self.config().grants(app), self.engine.socket()) {
            return Err(Error::PolicyRefused { app: app.to_owned(), refusals });
        }
        let ports = |m: &Manifest| -> BTreeSet<(u16, Protocol)> {
            m.containers.iter().flat_map(|c| &c.ports).map(|p| (p.host, p.protocol)).collect()
        };
        let wanted = ports(m);
        for other in self.state.load_all()? {
            if other.app == app {
                continue;
            }
            let Ok(d) = self.desired(other) else { continue };
            if let Some((port, proto)) = ports(d.manifest.manifest()).intersection(&wanted).next() {
                return Err(Error::PortTaken {
                    app: app.to_owned(),
                    port: format!("{port}/{proto}"),
                    other: d.record.app,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn installed(&self, app: &str) -> Result<Desired, Error> {
        let record = self.state.load(app)?.ok_or_else(|| Error::NotInstalled(app.to_owned()))?;
        self.desired(record)
    }

    /// Starts a stopped app (containers in `depends_on` order, each waited for).
    pub async fn start(&self, app: &str) -> Result<(), Error> {
        let _guard = self.lock().await?;
        let mut desired = self.installed(app)?;
        desired.record.run = RunState::Running;
        desired.record.last_error = None;
        self.state.save(&desired.record)?;
        let observed = self.observe(Some(app)).await?;
        let result = self.converge(&desired, &observed, &HostFacts::detect(&self.config().host), true).await;
        self.record_result(desired.record, &result)?;
        result.map(|_| ())
    }

    /// Stops an app (reverse start order); it stays stopped across node restarts.
    pub async fn stop(&self, app: &str) -> Result<(), Error> {
        let _guard = self.lock().await?;
        let mut desired = self.installed(app)?;
        desired.record.run = RunState::Stopped;
        self.state.save(&desired.record)?;
        let observed = self.observe(Some(app)).await?;
        let result = self.converge(&desired, &observed, &HostFacts::detect(&self.config().host), false).await;
        self.record_result(desired.record, &result)?;
        result.map(|_| ())
    }

    /// Restarts an app's containers in start order, each waited for before the next.
    pub async fn restart(&self, app: &str) -> Result<(), Error> {
        let _guard = self.lock().await?;
        let mut desired = self.installed(app)?;
        desired.record.run = RunState::Running;
        desired.record.last_error = None;
        self.state.save(&desired.record)?;
        let facts = HostFacts::detect(&self.config().host);
        let observed = self.observe(Some(app)).await?;
        let mut result = self.converge(&desired, &observed, &facts, true).await.map(|_| ());
        if result.is_ok() {
            for c in desired.plan.containers.iter().rev() {
                self.engine.stop(&c.name, 30).await?;
            }
            for c in &desired.plan.containers {
                self.engine.start(&c.name).await?;
                if let Err(e) = self.wait_healthy(app, c).await {
                    result = Err(e);
                    break;
                }
            }
        }
        self.record_result(desired.record, &result)?;
        result
    }

    pub(crate) fn record_result<T>(&self, mut record: AppRecord, result: &Result<T, Error>) -> Result<(), Error> {
        let error = result.as_ref().err().map(ToString::to_string);
        if record.last_error != error {
            record.last_error = error;
            self.state.save(&record)?;
        }
        Ok(())
    }

    /// Updates `app` to `to` (the newest available when `None`). The new version's images are
    /// made present first, then its containers replace the old ones on the same volumes; if the
    /// new version is not healthy within its grace period, the previous version is put back and
    /// [`Error::RolledBack`] says why.
    pub async fn update(&self, app: &str, to: Option<&semver::Version>) -> Result<UpdateReport, Error> {
        self.prefetch(app, to).await;
        let _guard = self.lock().await?;
        let current = self.installed(app)?;
        let from = current.record.version.clone();
        let manifest = self.fetch_manifest(app, to)?;
        let m = manifest.manifest().clone();
        // The same app id may be announced by other publishers (on Nostr): an update never
        // hands an installed app's volumes and secrets to another publisher.
        let installed_by = current.manifest.publisher();
        if &m.publisher != installed_by && !self.source.continues(app, installed_by, &m.publisher) {
            return Err(Error::OtherPublisher {
                app: app.to_owned(),
                installed: installed_by.to_string(),
                offered: m.publisher.to_string(),
            });
        }
        if m.version == from {
            return Ok(UpdateReport { from: from.to_string(), to: from.to_string(), unchanged: true });
        }
        if m.version < from {
            return Err(Error::NotNewer {
                app: app.to_owned(),
                installed: from.to_string(),
                requested: m.version.to_string(),
            });
        }
        self.preflight(&m)?;
        for (dep, req) in &m.dependencies {
            let installed = self.state.load(dep.as_str())?;
            if !installed.as_ref().is_some_and(|i| req.matches(&i.version)) {
                return Err(Error::Dependency {
                    app: app.to_owned(),
                    dependency: dep.to_string(),
                    requirement: req.to_string(),
                    problem: installed.map_or("not installed".into(), |i| format!("{} is installed", i.version)),
                });
            }
        }
        // The new version's images first: if one is missing nothing has changed yet.
        self.ensure_images(&m).await?;
        self.state.store_manifest(&manifest)?;
        // Rule (data kept safe over an update): the app stops and its volumes are copied before
        // the update touches them; a failed update puts them back.
        let observed = self.observe(Some(app)).await?;
        for c in observed.of_app(app).collect::<Vec<_>>().iter().rev() {
            self.engine.stop(&c.id, 30).await?;
        }
        let taken = self
            .take_snapshot(&current, &observed, Reason::BeforeUpdate { to: m.version.clone() }, Copy::CloneOrTar)
            .await;
        let snapshot = match taken {
            Ok(s) => s,
            Err(e) => {
                // Nothing of the update happened: the app runs again as it was.
                let observed = self.observe(Some(app)).await?;
                if current.record.run == RunState::Running {
                    self.converge(&current, &observed, &HostFacts::detect(&self.config().host), true).await?;
                }
                return Err(Error::NotAvailable(format!(
                    "update of `{app}` to {} not started: copying its volumes failed ({e}); the app runs as before",
                    m.version
                )));
            }
        };
        let record = AppRecord {
            app: app.to_owned(),
            version: m.version.clone(),
            manifest_hash: manifest.manifest_hash().to_hex().to_string(),
            run: RunState::Running,
            phase: Phase::Updating { from: from.clone(), snapshot: snapshot.map(|s| s.id) },
            last_error: None,
            last_update: current.record.last_update.clone(),
        };
        self.state.save(&record)?;
        test_pause("after-desired-state");
        let snapshot = match &record.phase {
            Phase::Updating { snapshot, .. } => snapshot.clone(),
            _ => None,
        };
        self.finish_update(record, from.clone(), snapshot, &HostFacts::detect(&self.config().host)).await?;
        Ok(UpdateReport { from: from.to_string(), to: m.version.to_string(), unchanged: false })
    }

    /// Applies an update recorded in `record` and waits for health; on failure, puts `from`
    /// back, with the volumes as `snapshot` holds them, and returns [`Error::RolledBack`].
    pub(crate) async fn finish_update(
        &self,
        record: AppRecord,
        from: semver::Version,
        snapshot: Option<String>,
        facts: &HostFacts,
    ) -> Result<(), Error> {
        let to = record.version.clone();
        let app = record.app.clone();
        let desired = self.desired(record)?;
        let observed = self.observe(Some(&app)).await?;
        let result = self.converge(&desired, &observed, facts, true).await;
        let mut record = desired.record.clone();
        match result {
            Ok(_) => {
                record.phase = Phase::Ready;
                record.last_update = Some(UpdateOutcome { from, to, rolled_back: None });
                self.state.save(&record)?;
                self.prune_snapshots(&app).await
            }
            Err(e) => {
                let mut reason = e.to_string();
                tracing::warn!(%app, %to, %from, %reason, "update failed; rolling back");
                let old = self.state.stored_manifest(&app, &from, None)?;
                let mut data_back = true;
                if let Some(id) = &snapshot {
                    // Rule (nothing runs on a volume being put back): the previous version is
                    // recorded stopped before the volumes are touched, so a crash halfway leaves
                    // it stopped, with the way back named, instead of starting it on half the data.
                    let previous = AppRecord {
                        version: from.clone(),
                        manifest_hash: old.manifest_hash().to_hex().to_string(),
                        run: RunState::Stopped,
                        phase: Phase::Ready,
                        last_error: Some(format!(
                            "putting the data back from snapshot {id} did not finish: `archy-node restore {app} {id}`, \
                             then `archy-node start {app}`"
                        )),
                        ..desired.record.clone()
                    };
                    self.state.save(&previous)?;
                    let previous = self.desired(previous)?;
                    match self.put_data_back(&desired, &previous, id).await {
                        Ok(kept) => {
                            reason.push_str(&format!("; the data is back as it was before the update (snapshot {id})"));
                            let before = self.snapshot_of(&app, id)?;
                            for v in before.volumes.iter().filter(|v| v.skipped.is_some()) {
                                reason.push_str(&format!(
                                    ", except volume `{}`, which was not copied ({}) and is as {to} left it",
                                    v.volume,
                                    v.skipped.as_deref().unwrap_or_default()
                                ));
                            }
                            if let Some(kept) = kept {
                                let path = self.snapshot_path(&kept)?;
                                reason.push_str(&format!(
                                    "; what {to} wrote is kept in snapshot {} ({}) until pruned",
                                    kept.id,
                                    path.display()
                                ));
                            }
                        }
                        Err(e) => {
                            data_back = false;
                            reason.push_str(&format!(
                                "; putting the data back from snapshot {id} failed ({e}), so {from} is left stopped: \
                                 `archy-node restore {app} {id}`, then `archy-node start {app}`"
                            ));
                        }
                    }
                }
                let back = AppRecord {
                    app: app.clone(),
                    version: from.clone(),
                    manifest_hash: old.manifest_hash().to_hex().to_string(),
                    run: if data_back { RunState::Running } else { RunState::Stopped },
                    phase: Phase::Ready,
                    last_error: None,
                    last_update: Some(UpdateOutcome {
                        from: from.clone(),
                        to: to.clone(),
                        rolled_back: Some(reason.clone()),
                    }),
                };
                self.state.save(&back)?;
                let desired = self.desired(back)?;
                let observed = self.observe(Some(&app)).await?;
                let rollback = self.converge(&desired, &observed, facts, true).await;
                self.record_result(desired.record, &rollback)?;
                rollback?;
                // The snapshot to restore from stays until the data is back.
                if data_back {
                    self.prune_snapshots(&app).await?;
                }
                Err(Error::RolledBack { app, from: from.to_string(), to: to.to_string(), reason })
            }
        }
    }

    /// Uninstalls `app`: its containers and network go; its volumes and generated secrets stay
    /// (a reinstall finds its data). With `purge`, volumes, secrets and stored manifests are
    /// deleted too — also for an app uninstalled earlier. Refused while another installed app
    /// depends on it.
    pub async fn uninstall(&self, app: &str, purge: bool) -> Result<(), Error> {
        let _guard = self.lock().await?;
        app.parse::<catalog::manifest::AppId>()
            .map_err(|e| Error::BadAppId { id: app.to_owned(), reason: e.to_string() })?;
        let (records, damaged) = self.state.load_each()?;
        // An app whose desired state is damaged is still installed: uninstalling it is the way out.
        let installed = records.iter().any(|r| r.app == app) || damaged.iter().any(|(d, _)| d == app);
        if !installed && !purge {
            return Err(Error::NotInstalled(app.to_owned()));
        }
        let mut dependents = Vec::new();
        let mut others_shares = BTreeSet::new();
        for r in records.iter().filter(|r| r.app != app) {
            if let Ok(d) = self.desired(r.clone()) {
                let m = d.manifest.manifest();
                if m.dependencies.keys().any(|k| k.as_str() == app) {
                    dependents.push(format!("`{}`", r.app));
                }
                others_shares.extend(m.volumes.iter().filter_map(|v| v.shared.as_ref().map(ToString::to_string)));
            }
        }
        if installed && !dependents.is_empty() {
            return Err(Error::NeededBy { app: app.to_owned(), dependents: dependents.join(", ") });
        }
        // Desired state first: from here on nothing wants the app, so even if this process dies
        // the reconciler removes what is left.
        self.state.remove(app)?;
        let observed = self.observe(Some(app)).await?;
        for c in &observed.containers {
            self.engine.remove(&c.id).await?;
        }
        for n in &observed.networks {
            self.engine.remove_network(n.id.as_deref().unwrap_or_default()).await?;
        }
        if purge {
            let shares: BTreeSet<String> = self
                .state
                .newest_stored_manifest(app)?
                .map(|m| {
                    m.manifest().volumes.iter().filter_map(|v| v.shared.as_ref().map(ToString::to_string)).collect()
                })
                .unwrap_or_default();
            for v in &observed.volumes {
                let labels = &v.labels;
                let own = labels.get(LABEL_APP).is_some_and(|a| a == app) && !labels.contains_key(LABEL_SHARED);
                let share = labels.get(LABEL_SHARED);
                let orphan_share = share.is_some_and(|s| shares.contains(s) && !others_shares.contains(s));
                if labels.get(LABEL_MANAGED).is_some_and(|m| m == "true") && (own || orphan_share) {
                    self.engine.remove_volume(&v.name).await?;
                }
            }
            self.state.purge(app)?;
            self.delete_snapshots(app)?;
        }
        Ok(())
    }

    /// The state of every installed app.
    pub async fn status(&self) -> Result<Vec<AppStatus>, Error> {
        let (records, damaged) = self.state.load_each()?;
        let observed = self.observe(None).await?;
        let mut out = Vec::new();
        for (app, e) in damaged {
            out.push(AppStatus {
                app,
                version: "?".into(),
                state: super::AppState::Failed,
                reason: Some(format!("{e}; fix or remove the file, or `archy-node uninstall` the app")),
                pending: None,
                last_update: None,
                containers: Vec::new(),
            });
        }
        for record in records {
            let app = record.app.clone();
            match self.desired(record.clone()) {
                Ok(d) => {
                    let mine: Vec<_> = observed.of_app(&app).cloned().collect();
                    out.push(app_status(&d.record, &d.plan, &mine));
                }
                Err(e) => out.push(AppStatus {
                    app,
                    version: record.version.to_string(),
                    state: super::AppState::Failed,
                    reason: Some(e.to_string()),
                    pending: None,
                    last_update: record.last_update,
                    containers: Vec::new(),
                }),
            }
        }
        Ok(out)
    }

    /// The log lines of `app`'s containers (all of them, or the one named `container`), each
    /// prefixed with the container's role; `tail` lines per container.
    pub async fn logs(
        &self,
        app: &str,
        container: Option<&str>,
        tail: Option<u64>,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<String, Error>> + use<>, Error> {
        let desired = self.installed(app)?;
        let observed = self.observe(Some(app)).await?;
        let mut streams = Vec::new();
        for c in &desired.plan.containers {
            if container.is_some_and(|n| n != c.role.as_str()) {
                continue;
            }
            // The container playing the role, also under an older node's name.
            let name = container_for(observed.containers.iter(), c).map_or(c.name.as_str(), |o| o.id.as_str());
            let role = c.role.to_string();
            streams.push(
                self.engine.logs(name, tail, follow).map(move |r| r.map(|line| format!("{role} | {line}"))).boxed(),
            );
        }
        if streams.is_empty() {
            return Err(Error::NotAvailable(format!("app `{app}` has no container `{}`", container.unwrap_or(""))));
        }
        Ok(futures_util::stream::select_all(streams))
    }
}
