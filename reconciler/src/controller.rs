//! The reconcile loop: desired (the branch head) against actual (the runtime), then apply,
//! then record. One namespace at a time per namespace; many namespaces at once.

use crate::blocking::blocking;
use crate::metrics::{Ended, Metrics};
use crate::plan::{self, Action, Plan};
use crate::queue::{Queue, Reasons};
use micro_runtime::{
    Artifact, ConfigEnv, Deployment, Pem, Runtime, RuntimeError, RuntimeEvent, Secret,
    WorkloadState,
};
use micro_store::Trigger;
use micro_store::{HistoryEntry, Store, StoreError, now_micros};
use micro_tenant::admit::{Admitted, Refused, Via, admit};
use micro_tenant::desired::DesiredNamespace;
use micro_tenant::desired::DesiredService;
use micro_tenant::layout::config_env_name;
use micro_tenant::marks::Marks;
use micro_tenant::repo::{self, LoadError, Repos, SpecCache};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("git, {operation}: {message}", message = .source.message())]
    Git {
        /// What the reconcile was doing: `reading the branch head`, `reading the desired state`.
        operation: &'static str,
        #[source]
        source: git2::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Removing a deleted namespace's repo failed.
    #[error(transparent)]
    Repo(#[from] repo::RepoError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("reconcile task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What one reconcile did.
#[derive(Debug)]
pub enum Outcome {
    /// Same head, same runtime state as last time: nothing was read or compared.
    Unchanged,
    /// The head was applied with this plan.
    Applied { revision: String, plan: Plan },
    /// The head does not validate; what ran before keeps running.
    Invalid { revision: String, error: String },
    /// No such namespace repo (any more). If the store has no such namespace either
    /// (it was deleted), whatever still ran for it was stopped.
    Missing,
}

/// A reconcile that ended and is in the history: for whoever reports on revisions (the
/// forges' commit statuses).
#[derive(Clone, Debug)]
pub struct Reconciled {
    pub namespace: String,
    pub revision: String,
    pub result: Ended,
    /// The history entry's key.
    pub started_us: i64,
    /// The applied plan's [`Plan::fingerprint`].
    pub fingerprint: Option<String>,
    pub error: Option<String>,
}

/// What the last reconcile of a namespace saw; equal next time means nothing to do.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    head: git2::Oid,
    generation: u64,
}

/// Issues the certificate and key of a deployment: (namespace, service, deployment).
pub type IssueIdentity =
    std::sync::Arc<dyn Fn(&str, &str, &str) -> Result<Pem, String> + Send + Sync>;

/// Issues deployments' certificate identities (the platform CA lives with the server,
/// not here).
#[derive(Clone)]
pub struct IdentityIssuer {
    pub issue: IssueIdentity,
    /// How long a certificate is valid: running deployments get a new one at half that.
    pub lifetime: Duration,
    /// The URI of the platform's own client certificate, which services serving TLS see
    /// on the calls it forwards (`MICRO_PLATFORM_IDENTITY`).
    pub platform: String,
}

/// What every deployment is handed about the platform: where its API is and who the
/// service is to it. Known before the controller exists, so no reconcile can run
/// without it (one that did would start services without either, and nothing would roll
/// them again: neither is part of what a plan compares).
#[derive(Clone)]
pub struct PlatformAccess {
    /// The platform API's URL, as the platform itself reaches it.
    pub api_url: String,
    /// Issues certificate identities; `None` where there are none (no platform CA, or
    /// plan-only mode, which runs nothing that could present one).
    pub identity: Option<IdentityIssuer>,
}

/// Drives namespaces towards their branch heads.
pub struct Controller {
    repos: Repos,
    store: Store,
    runtime: Arc<dyn Runtime>,
    queue: Queue,
    specs: Arc<SpecCache>,
    seen: Mutex<HashMap<String, Seen>>,
    metrics: Metrics,
    access: PlatformAccess,
    /// When each live deployment last got a certificate (ms), if since its token.
    renewed: Mutex<HashMap<String, i64>>,
    reconciled: tokio::sync::broadcast::Sender<Reconciled>,
    exposure: Arc<crate::exposure::Exposure>,
}

impl Controller {
    pub fn new(
        repos: Repos,
        store: Store,
        runtime: Arc<dyn Runtime>,
        access: PlatformAccess,
    ) -> Arc<Self> {
        Arc::new(Controller {
            repos,
            store,
            runtime,
            queue: Queue::new("reconcile"),
            specs: Arc::new(SpecCache::default()),
            seen: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
            access,
            renewed: Mutex::new(HashMap::new()),
            reconciled: tokio::sync::broadcast::channel(1024).0,
            exposure: Arc::default(),
        })
    }

    /// Each namespace's public services, as its last reconcile read them: the edge's
    /// routes.
    pub fn exposure(&self) -> &Arc<crate::exposure::Exposure> {
        &self.exposure
    }

    /// Every reconcile recorded from now on (a slow receiver misses the oldest).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Reconciled> {
        self.reconciled.subscribe()
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn repos(&self) -> &Repos {
        &self.repos
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the desired state at `refname` (a branch, tag or commit id) of a namespace.
    pub async fn load(
        &self,
        namespace: &str,
        refname: &str,
    ) -> Result<(git2::Oid, Result<DesiredNamespace, LoadError>), git2::Error> {
        let (repos, specs, support) = (
            self.repos.clone(),
            self.specs.clone(),
            self.runtime.support(),
        );
        let (namespace, refname) = (namespace.to_owned(), refname.to_owned());
        blocking(move || {
            let repo = git2::Repository::open_bare(repos.path(&namespace))?;
            let commit = repo.revparse_single(&refname)?.peel_to_commit()?.id();
            Ok((
                commit,
                repo::load_cached(&repo, &namespace, commit, &specs, support),
            ))
        })
        .await
        .map_err(|e| git2::Error::from_str(&e.to_string()))?
    }

    /// `config.yaml` at the head of a namespace's branch.
    pub async fn config_at_head(
        &self,
        namespace: &str,
    ) -> Result<micro_tenant::spec::ConfigSpec, LoadError> {
        let (repos, namespace) = (self.repos.clone(), namespace.to_owned());
        blocking(move || {
            let repo = git2::Repository::open_bare(repos.path(&namespace))?;
            let head = repos.head(&namespace)?;
            repo::config_at(&repo, head)
        })
        .await
        .map_err(|e| LoadError::Git(git2::Error::from_str(&e.to_string())))?
    }

    /// The plan that would take what runs now to `desired`, without applying it.
    pub async fn plan(&self, desired: &DesiredNamespace) -> Result<Plan, RuntimeError> {
        let observed = self.runtime.observe(&desired.namespace).await?;
        Ok(plan::plan(desired, &observed))
    }

    /// Reconciles and records the result in the namespace's history, in a span naming the
    /// namespace, the triggers and (once read) the revision.
    pub async fn reconcile(
        &self,
        namespace: &str,
        reasons: &Reasons,
    ) -> Result<Outcome, ReconcileError> {
        use tracing::Instrument;
        let reason = reasons
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let span = tracing::info_span!(
            "reconcile",
            namespace,
            trigger = %reason,
            revision = tracing::field::Empty
        );
        self.reconcile_recorded(namespace, reasons)
            .instrument(span)
            .await
    }

    async fn reconcile_recorded(
        &self,
        namespace: &str,
        reasons: &Reasons,
    ) -> Result<Outcome, ReconcileError> {
        let started_us = now_micros();
        let started = Instant::now();
        tracing::debug!("reconcile started");
        let result = self.reconcile_inner(namespace, reasons).await;
        let entry = |revision: &str,
                     result: Ended,
                     summary: String,
                     error: Option<String>,
                     plan_ms: i64| {
            HistoryEntry {
                namespace: namespace.to_owned(),
                started_us,
                revision: revision.to_owned(),
                triggers: reasons.iter().copied().collect(),
                result,
                summary,
                error,
                duration_ms: millis(started.elapsed()),
                plan_ms,
                apply_ms: (millis(started.elapsed()) - plan_ms).max(0),
                note: None,
            }
        };
        // One reading of the result: what to count, what to add to the history, and what
        // the namespace status becomes (head, applied, error).
        let (ended, record, status) = match &result {
            Ok((Outcome::Applied { revision, plan }, plan_ms)) => (
                Some(Ended::Applied),
                Some(entry(
                    revision,
                    Ended::Applied,
                    plan.summary().to_string(),
                    None,
                    *plan_ms,
                )),
                Some((revision.as_str(), Some(revision.as_str()), None)),
            ),
            Ok((Outcome::Invalid { revision, error }, plan_ms)) => (
                Some(Ended::Invalid),
                Some(entry(
                    revision,
                    Ended::Invalid,
                    String::new(),
                    Some(error.clone()),
                    *plan_ms,
                )),
                Some((revision.as_str(), None, Some(error.as_str()))),
            ),
            Ok((Outcome::Unchanged, _)) => (Some(Ended::Unchanged), None, None),
            Ok((Outcome::Missing, _)) => (None, None, None),
            Err(e) => {
                let head = self
                    .repos
                    .head(namespace)
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                let record = entry(&head, Ended::Failed, String::new(), Some(e.to_string()), 0);
                (Some(Ended::Failed), Some(record), None)
            }
        };
        if let Some(ended) = ended {
            self.metrics.record(ended, started.elapsed());
        }
        if let Some(record) = record {
            self.store.record_reconcile(&record).await?;
            tracing::debug!(result = %record.result, "history recorded");
            let fingerprint = match &result {
                Ok((Outcome::Applied { plan, .. }, _)) => Some(plan.fingerprint()),
                _ => None,
            };
            // Nobody listening is fine.
            let _ = self.reconciled.send(Reconciled {
                namespace: record.namespace,
                revision: record.revision,
                result: record.result,
                started_us: record.started_us,
                fingerprint,
                error: record.error,
            });
        }
        // The namespace status is what `--wait` polls, so it moves only after the history
        // record exists: whoever saw their revision applied also finds it in `history`.
        if let Some((head, applied, error)) = status {
            self.store
                .put_namespace_status(namespace, head, applied, error)
                .await?;
        }
        result.map(|(outcome, _)| outcome)
    }

    async fn reconcile_inner(
        &self,
        namespace: &str,
        reasons: &Reasons,
    ) -> Result<(Outcome, i64), ReconcileError> {
        let started = Instant::now();
        let generation = self.runtime.generation(namespace);
        // The one exception to "no file I/O on async threads": a steady-state resync of
        // a thousand namespaces reads a thousand 41-byte ref files, and a trip to the
        // blocking pool each would triple its time (bench 2). Anything more goes there.
        let head = match self.repos.loose_head(namespace) {
            Some(head) => Some(head),
            None => {
                let (repos, ns) = (self.repos.clone(), namespace.to_owned());
                blocking(move || {
                    if !repos.path(&ns).exists() {
                        return Ok(None);
                    }
                    repos.head(&ns).map(Some)
                })
                .await?
                .map_err(|source| ReconcileError::Git {
                    operation: "reading the branch head",
                    source,
                })?
            }
        };
        let Some(head) = head else {
            self.tear_down(namespace).await?;
            return Ok((Outcome::Missing, 0));
        };
        tracing::Span::current().record("revision", tracing::field::display(head));
        let now = Seen { head, generation };
        // A suspension or its end comes with its own trigger: only then does the mark
        // beside the repo need reading past this shortcut.
        if self.seen().get(namespace) == Some(&now)
            && !reasons.contains(&Trigger::Drift)
            && !reasons.contains(&Trigger::Restart)
            && !reasons.contains(&Trigger::Suspension)
            && !reasons.contains(&Trigger::Deleted)
        {
            return Ok((Outcome::Unchanged, 0));
        }
        // Desired state is applied only for a namespace the store has: one deleted (its
        // teardown is finished here, repo and all, even if a stopped server left the repo
        // behind) or still being created (its row comes after its repo) runs nothing.
        // From memory for every namespace that exists.
        if !self.store.namespace_exists(namespace).await? {
            if self.store.deletion_pending(namespace).await? {
                self.tear_down(namespace).await?;
            }
            return Ok((Outcome::Missing, 0));
        }
        let loaded = {
            let path = self.repos.path(namespace);
            let (specs, support, ns) = (
                self.specs.clone(),
                self.runtime.support(),
                namespace.to_owned(),
            );
            // The hook's own admission: a commit that got past it (a local push) is
            // refused here alike. What the runtime supports is its own word, here where
            // it is at hand; the hook reads what the server recorded of it.
            blocking(move || -> Result<Admitted, Refused> {
                let repo = git2::Repository::open_bare(&path)?;
                let marks = Marks::read_with(&path, support);
                admit(&repo, &ns, head, &marks, Via::Head, &specs)
            })
            .await?
        };
        let revision = head.to_string();
        let Admitted {
            mut desired,
            quota,
            suspended,
        } = match loaded {
            Ok(admitted) => admitted,
            Err(Refused::Git(source)) => {
                return Err(ReconcileError::Git {
                    operation: "reading the desired state",
                    source,
                });
            }
            Err(invalid) => {
                let error = invalid.to_string();
                tracing::warn!(namespace, %revision, %error, "invalid revision; keeping the last good one");
                self.seen().insert(namespace.to_owned(), now);
                return Ok((
                    Outcome::Invalid { revision, error },
                    millis(started.elapsed()),
                ));
            }
        };
        if suspended {
            // Scaled to zero, nothing deleted: lifting the suspension restores what ran.
            for service in desired.services.values_mut() {
                service.model.replicas = 0;
            }
        }
        // The edge follows the admitted revision before anything is applied: a service
        // made private, or a namespace suspended, stops being served as such at once.
        let public = desired
            .services
            .values()
            .filter(|s| s.model.public)
            .map(|s| crate::exposure::Exposed {
                service: s.name.clone(),
                body_limit: s.model.body_limit,
                auth_key: s.model.auth_key,
            });
        for service in self.exposure.set(namespace, public, suspended) {
            tracing::warn!(
                namespace,
                service,
                "its public host name is another namespace's; not routed"
            );
        }
        let settings = micro_runtime::NamespaceSettings {
            quota,
            uid: self.store.namespace_uid(namespace).await?,
        };
        self.runtime.apply_namespace(namespace, &settings).await?;
        let plan = self.plan(&desired).await?;
        let plan_ms = millis(started.elapsed());
        let repo = self.repos.path(namespace);
        for action in &plan.actions {
            match action {
                Action::Delete { name, .. } => {
                    self.runtime.delete(namespace, name).await?;
                    let identity = self.store.service_account(namespace, name).await?;
                    self.store.revoke_account_tokens(&identity).await?;
                }
                Action::Create { service } | Action::Update { service, .. } => {
                    let deployment = self.deployment(namespace, service).await?;
                    self.runtime
                        .apply(
                            namespace,
                            &Artifact::of(&repo, service),
                            service,
                            &deployment,
                        )
                        .await?;
                    if !self.runtime.reports_rollouts() {
                        self.store
                            .retain_service_token(namespace, &service.name, &deployment.id)
                            .await?;
                    }
                }
            }
        }
        if !plan.is_empty() {
            tracing::info!(namespace, %revision, plan = %plan.summary(), "applied");
        }
        // Status rows of services removed while nothing ran them (say, while the server
        // was down) have no runtime event to clear them.
        for stale in self.store.service_statuses(namespace).await? {
            if !desired.services.contains_key(&stale.name) {
                self.store
                    .delete_service_status(namespace, &stale.name)
                    .await?;
            }
        }
        self.seen().insert(
            namespace.to_owned(),
            Seen {
                head,
                generation: self.runtime.generation(namespace),
            },
        );
        Ok((Outcome::Applied { revision, plan }, plan_ms))
    }

    /// Finishes a deletion for a namespace that is gone from the store (an admin
    /// deleted it): its repo, if still there, and what runs for it go, then what a
    /// reconcile in flight during the deletion wrote since and the deletion's record. A
    /// repo missing under a namespace the store still has keeps its services: that is an
    /// operator's accident to repair, not a deletion.
    async fn tear_down(&self, namespace: &str) -> Result<(), ReconcileError> {
        if self.store.namespace_exists(namespace).await? {
            tracing::warn!(
                namespace,
                "the namespace's repo is missing; what runs is kept"
            );
            return Ok(());
        }
        let (repos, ns) = (self.repos.clone(), namespace.to_owned());
        blocking(move || repos.remove(&ns)).await??;
        self.runtime.delete_namespace(namespace).await?;
        self.exposure.remove(namespace);
        self.store.purge_deleted_namespace(namespace).await?;
        self.seen().remove(namespace);
        tracing::info!(namespace, "deleted namespace torn down");
        Ok(())
    }

    /// A new deployment of `service`: its own token and certificate, and the values of
    /// the config versions its commit names. A version the store does not have is left
    /// out (and logged by key and version, never by value).
    async fn deployment(
        &self,
        namespace: &str,
        service: &DesiredService,
    ) -> Result<Deployment, ReconcileError> {
        // What serves meanwhile keeps its own token until this deployment serves alone
        // (`RuntimeEvent::RolledOut`); its certificate lives and dies with that token.
        let id = deployment_id();
        let token = self
            .store
            .issue_service_token(namespace, &service.name, &id)
            .await?;
        let issuer = self.access.identity.as_ref();
        let certificate = issuer.and_then(|issuer| {
            (issuer.issue)(namespace, &service.name, &id)
                .inspect_err(|e| tracing::warn!(namespace, service = %service.name, error = %e, "no certificate identity; the token still works"))
                .ok()
        });
        let mut config = ConfigEnv::new();
        for (key, version) in &service.model.config {
            match self.store.config_value(namespace, key, *version).await? {
                Some(v) => {
                    // A JSON string is injected as the string itself; anything else as JSON.
                    let value = match serde_json::from_str::<serde_json::Value>(&v.value) {
                        Ok(serde_json::Value::String(s)) => s,
                        _ => v.value,
                    };
                    config.insert(config_env_name(key), value);
                }
                None => {
                    tracing::warn!(namespace, service = %service.name, key, version, "config version not in the store")
                }
            }
        }
        Ok(Deployment {
            id,
            token: Secret::new(token),
            api_url: self.access.api_url.clone(),
            platform_identity: issuer.map(|i| i.platform.clone()),
            certificate,
            config: Secret::new(config),
        })
    }

    /// Starts `n` workers taking namespaces off the queue, for tests and benches (the
    /// server runs [`Controller::work`] under its own tasks).
    #[cfg(any(test, feature = "test-support"))]
    pub fn spawn_workers(self: &Arc<Self>, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n.max(1))
            .map(|_| tokio::spawn(self.clone().work()))
            .collect()
    }

    /// One worker: takes namespaces off the queue and reconciles them, for ever.
    pub async fn work(self: Arc<Self>) {
        loop {
            let (ns, reasons) = self.queue.next().await;
            let result = self.reconcile(&ns, &reasons).await;
            self.queue.done(&ns);
            match result {
                Ok(_) => self.queue.succeeded(&ns),
                Err(error) => {
                    let retry_in = self.queue.retry_later(&ns);
                    tracing::error!(namespace = %ns, %error, ?retry_in, "reconcile failed");
                }
            }
        }
    }

    /// Queues the teardown of every deletion a stopped server did not finish.
    pub async fn resume_deletions(&self) -> Result<(), StoreError> {
        for ns in self.store.pending_deletions().await? {
            tracing::info!(namespace = %ns, "finishing an interrupted deletion");
            self.queue.trigger(&ns, Trigger::Deleted);
        }
        Ok(())
    }

    /// Queues every namespace the store knows.
    pub async fn trigger_all(&self, why: Trigger) -> Result<(), StoreError> {
        for ns in self.store.list_namespaces().await? {
            self.queue.trigger(&ns, why);
        }
        Ok(())
    }

    /// Records what the runtime reports into the store, in order, and queues repairs.
    pub async fn consume_events(self: Arc<Self>, mut events: UnboundedReceiver<RuntimeEvent>) {
        while let Some(event) = events.recv().await {
            let result = match &event {
                RuntimeEvent::Status(r) => self.store.put_service_status(&row_of(r)).await,
                RuntimeEvent::RolledOut {
                    namespace,
                    name,
                    deployment,
                } => {
                    self.store
                        .retain_service_token(namespace, name, deployment)
                        .await
                }
                RuntimeEvent::Removed { namespace, name } => {
                    self.store.delete_service_status(namespace, name).await
                }
                RuntimeEvent::Drift {
                    namespace,
                    name,
                    what,
                } => {
                    tracing::warn!(namespace, service = name, what, "drift; repairing");
                    self.queue.trigger(namespace, Trigger::Drift);
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "cannot record service status");
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The store's row for what a runtime reported, stamped now.
fn row_of(r: &micro_runtime::ServiceReport) -> micro_store::ServiceStatus {
    micro_store::ServiceStatus {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        revision: r.revision.clone(),
        source: r.source.clone(),
        status: match r.state {
            WorkloadState::Building => micro_store::ServiceState::Building,
            WorkloadState::Starting => micro_store::ServiceState::Starting,
            WorkloadState::Running => micro_store::ServiceState::Running,
            WorkloadState::Unhealthy => micro_store::ServiceState::Unhealthy,
            WorkloadState::CrashLoop => micro_store::ServiceState::CrashLoop,
            WorkloadState::Error => micro_store::ServiceState::Error,
            WorkloadState::Stopping => micro_store::ServiceState::Stopping,
        },
        ready: r.ready,
        desired: r.desired,
        message: r.message.clone(),
        updated_at: micro_store::now_millis(),
    }
}

/// A deployment's id: unique per service for the life of the platform.
fn deployment_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{:x}-{:x}",
        now_micros(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A number in [0, 1) for jitter; no need for a cryptographic source.
pub fn rand_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jitter_fraction_is_in_the_unit_interval() {
        for _ in 0..100 {
            let r = rand_fraction();
            assert!((0.0..1.0).contains(&r));
        }
    }
}

mod renewal;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod worker_tests;
