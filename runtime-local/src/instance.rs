//! One deployment of a service at one revision: its replicas' states, the task
//! supervising them, and the deployment it replaces, which serves until this one is ready
//! (a surge rollout: nothing is stopped before its successor answers).

use super::Shared;
use super::supervisor;
use micro_runtime::{Artifact, WorkloadState};
use micro_runtime::{Deployment, ReplicaInfo, RuntimeEvent, ServiceDetail, ServiceReport};
use micro_tenant::desired::{DesiredService, ServiceModel};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Where the deployment as a whole is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Building,
    Running,
    Failed(String),
    Stopping,
}

#[derive(Clone, Debug)]
pub(crate) struct Replica {
    pub state: WorkloadState,
    pub port: u16,
    pub message: String,
    /// How its last process ended, once one has.
    pub exit: Option<String>,
    pub restarts: u32,
}

/// How long a replaced deployment keeps running after the router stopped sending it
/// calls, so calls already on their way finish.
const DRAIN: Duration = Duration::from_secs(1);

/// State shared between the supervisor tasks and the runtime's readers.
pub(crate) struct Tracker {
    /// Why the deployment must be applied afresh: its files vanished under it, or a
    /// restart was asked for.
    pub broken: Mutex<Option<String>>,
    /// Set once every replica was ready at the same time: the rollout is over.
    rolled_out: AtomicBool,
    /// A replaced deployment speaks no more: its successor's status is the service's.
    muted: AtomicBool,
    /// A replaced deployment gets no new calls.
    draining: AtomicBool,
    /// Woken whenever a replica's state changes.
    pub changed: tokio::sync::Notify,
    /// The deployment this one replaces, serving until this one is ready.
    previous: Mutex<Option<Instance>>,
    /// Its id ([`Deployment::id`]).
    deployment: Option<String>,
    /// Its certificate identity, as files its replicas read.
    pub identity: super::identity::IdentityFiles,
    namespace: String,
    name: String,
    revision: String,
    source: String,
    shared: Arc<Shared>,
    inner: Mutex<(Phase, Vec<Replica>)>,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Vec<Replica>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn deployment(&self) -> Option<&str> {
        self.deployment.as_deref()
    }

    /// Marks the deployment broken and tells the reconciler.
    pub fn report_drift(&self, what: String) {
        let first = {
            let mut broken = self.broken.lock().unwrap_or_else(PoisonError::into_inner);
            let first = broken.is_none();
            broken.get_or_insert_with(|| what.clone());
            first
        };
        if first {
            self.shared.bump(&self.namespace);
            let _ = self.shared.events.send(RuntimeEvent::Drift {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                what,
            });
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        if let Phase::Failed(why) = &phase {
            self.event(format!("{} failed: {why}", self.short_revision()));
        }
        self.lock().0 = phase;
        self.publish();
    }

    pub fn set_replica(&self, index: usize, state: WorkloadState, port: u16, message: String) {
        {
            let mut guard = self.lock();
            if let Some(r) = guard.1.get_mut(index) {
                r.state = state;
                r.port = port;
                r.message = message;
            }
        }
        self.changed.notify_waiters();
        self.publish();
    }

    /// A replica's process ended (`why`); it is restarted as `message` says.
    pub fn set_replica_exit(&self, index: usize, port: u16, message: String, why: String) {
        if let Some(r) = self.lock().1.get_mut(index) {
            r.restarts += 1;
            r.exit = Some(why.clone());
        }
        self.event(format!("replica {} {why}", index + 1));
        self.set_replica(index, WorkloadState::Crashed, port, message);
    }

    /// The replicas as they are now.
    pub fn replicas(&self) -> Vec<Replica> {
        self.lock().1.clone()
    }

    /// Whether a deployment it replaces still serves.
    pub fn replacing(&self) -> bool {
        self.previous_lock().is_some()
    }

    fn previous_lock(&self) -> std::sync::MutexGuard<'_, Option<Instance>> {
        self.previous.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes an event of this service for `micro describe`.
    pub fn event(&self, what: String) {
        self.shared.event(&self.namespace, &self.name, what);
    }

    /// The revision, as people read it.
    pub fn short_revision(&self) -> &str {
        self.revision.get(..7).unwrap_or(&self.revision)
    }

    /// Every replica is ready: route only to this deployment and stop the one it replaces.
    pub async fn finish_rollout(&self) {
        self.rolled_out.store(true, Ordering::Relaxed);
        let previous = self.previous_lock().take();
        self.event(format!("rolled out {}", self.short_revision()));
        self.publish();
        if let Some(previous) = previous {
            let old = previous.tracker.short_revision().to_owned();
            previous.drain_and_stop().await;
            self.event(format!("stopped {old}"));
        }
        if let Some(deployment) = &self.deployment {
            let _ = self.shared.events.send(RuntimeEvent::RolledOut {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                deployment: deployment.clone(),
            });
        }
    }

    /// The revision still serving while this one rolls out.
    fn serving_instead(&self) -> Option<String> {
        self.previous_lock()
            .as_ref()
            .map(|p| p.revision.get(..7).unwrap_or(&p.revision).to_owned())
    }

    fn status(&self) -> ServiceReport {
        let serving = self.serving_instead();
        let guard = self.lock();
        let (phase, replicas) = &*guard;
        let desired = u32::try_from(replicas.len()).unwrap_or(u32::MAX);
        let ready = u32::try_from(
            replicas
                .iter()
                .filter(|r| r.state == WorkloadState::Running)
                .count(),
        )
        .unwrap_or(u32::MAX);
        let (status, mut message) = match phase {
            Phase::Building => (WorkloadState::Building, String::new()),
            Phase::Failed(msg) => (WorkloadState::Error, msg.clone()),
            Phase::Stopping => (WorkloadState::Stopping, String::new()),
            Phase::Running => {
                if let Some(bad) = replicas.iter().find(|r| r.state == WorkloadState::Crashed) {
                    (WorkloadState::Crashed, bad.message.clone())
                } else if let Some(sick) = replicas
                    .iter()
                    .find(|r| r.state == WorkloadState::Unhealthy)
                {
                    (WorkloadState::Unhealthy, sick.message.clone())
                } else if ready == desired {
                    let note = replicas.iter().find(|r| !r.message.is_empty());
                    (
                        WorkloadState::Running,
                        note.map(|r| r.message.clone()).unwrap_or_default(),
                    )
                } else {
                    let waiting = replicas.iter().find(|r| !r.message.is_empty());
                    (
                        WorkloadState::Starting,
                        waiting.map(|r| r.message.clone()).unwrap_or_default(),
                    )
                }
            }
        };
        if let Some(old) = serving {
            let note = match status {
                WorkloadState::Error => format!("{old} still serves"),
                _ => format!("{old} serves until this revision is ready"),
            };
            message = if message.is_empty() {
                note
            } else {
                format!("{message}; {note}")
            };
        }
        ServiceReport {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            revision: self.revision.clone(),
            source: self.source.clone(),
            state: status,
            ready,
            desired,
            message,
        }
    }

    fn publish(&self) {
        if !self.muted.load(Ordering::Relaxed) {
            let _ = self.shared.events.send(RuntimeEvent::Status(self.status()));
        }
    }

    /// Ready replicas of this deployment and of the one it replaces.
    pub fn endpoints(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        if !self.draining.load(Ordering::Relaxed) {
            out.extend(
                self.lock()
                    .1
                    .iter()
                    .filter(|r| r.state == WorkloadState::Running)
                    .map(|r| SocketAddr::from((Ipv4Addr::LOCALHOST, r.port))),
            );
        }
        if let Some(previous) = self.previous_lock().as_ref() {
            out.extend(previous.endpoints());
        }
        out
    }

    fn describe(&self, config: &std::collections::BTreeMap<String, u64>) -> ServiceDetail {
        let replicas = self
            .replicas()
            .into_iter()
            .enumerate()
            .map(|(i, r)| ReplicaInfo {
                replica: i + 1,
                endpoint: (r.state == WorkloadState::Running)
                    .then(|| format!("127.0.0.1:{}", r.port)),
                state: r.state,
                restarts: r.restarts,
                last_exit: r.exit,
                message: r.message,
            })
            .collect();
        ServiceDetail {
            replicas,
            serving: self.serving_instead(),
            config: config.clone(),
            events: Vec::new(),
        }
    }

    /// Whether it can serve while a successor rolls out.
    fn serves(&self) -> bool {
        self.rolled_out.load(Ordering::Relaxed) && !matches!(self.lock().0, Phase::Failed(_))
    }
}

pub(crate) struct Instance {
    pub model: ServiceModel,
    pub revision: String,
    tracker: Arc<Tracker>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Instance {
    /// Starts a deployment of `service`; `previous` serves until it is ready.
    pub fn start(
        shared: Arc<Shared>,
        namespace: &str,
        artifact: &Artifact,
        service: &DesiredService,
        deployment: &Deployment,
        previous: Option<Instance>,
    ) -> Self {
        if let Some(p) = &previous {
            p.tracker.muted.store(true, Ordering::Relaxed);
        }
        shared.event(
            namespace,
            &service.name,
            format!(
                "rollout of {} started",
                service.revision.get(..7).unwrap_or(&service.revision)
            ),
        );
        let replicas = vec![
            Replica {
                state: WorkloadState::Starting,
                port: 0,
                message: String::new(),
                exit: None,
                restarts: 0,
            };
            service.model.replicas as usize
        ];
        let tracker = Arc::new(Tracker {
            broken: Mutex::new(None),
            rolled_out: AtomicBool::new(false),
            muted: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            previous: Mutex::new(previous),
            deployment: Some(deployment.id.clone()),
            identity: super::identity::IdentityFiles::new(deployment.certificate.clone()),
            namespace: namespace.to_owned(),
            name: service.name.clone(),
            revision: service.revision.clone(),
            source: service.source(),
            shared: shared.clone(),
            inner: Mutex::new((Phase::Building, replicas)),
        });
        tracker.publish();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(supervisor::supervise(
            shared,
            tracker.clone(),
            artifact.clone(),
            service.clone(),
            // The identity's PEM becomes files (above), never variables; services here
            // reach the API where the platform does (the sandbox maps it to their door).
            {
                let mut env = deployment.variables();
                env.insert(
                    micro_runtime::API_VAR.to_owned(),
                    deployment.api_url.clone(),
                );
                env
            },
            cancel.clone(),
        )
.instrument(tracing::info_span!("deployment", namespace = %namespace, service = %service.name, revision = %service.revision)));
        Instance {
            model: service.model.clone(),
            revision: service.revision.clone(),
            tracker,
            cancel,
            task,
        }
    }

    pub fn endpoints(&self) -> Vec<SocketAddr> {
        self.tracker.endpoints()
    }

    /// Its replicas and config, for `micro describe` (events are the runtime's).
    pub fn describe(&self) -> ServiceDetail {
        self.tracker.describe(&self.model.config)
    }

    /// Gives deployment `deployment` (this one, or the one it replaces) a new identity;
    /// `None` if neither is that deployment.
    pub fn renew_identity(
        &self,
        deployment: &str,
        pem: &micro_runtime::Pem,
    ) -> Option<std::io::Result<()>> {
        if self.tracker.deployment.as_deref() == Some(deployment) {
            return Some(self.tracker.identity.renew(pem.clone()));
        }
        self.tracker
            .previous_lock()
            .as_ref()
            .and_then(|p| p.renew_identity(deployment, pem))
    }

    /// Where its identity's files go, beside its checkout `dir`: one folder per
    /// deployment (two share a checkout during a rollout), named by a digest of it, since
    /// the sandbox's mount table shows the name.
    pub fn identity_dir(dir: &std::path::Path, deployment: Option<&str>) -> std::path::PathBuf {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(deployment.unwrap_or("local").as_bytes());
        dir.join(format!("identity-{}", hex::encode(&digest[..6])))
    }

    /// Asks for this deployment to be replaced by a fresh one on the next reconcile.
    pub fn request_replacement(&self) {
        self.tracker
            .broken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| "a restart was asked for".to_owned());
        self.tracker.shared.bump(&self.tracker.namespace);
    }

    /// Why it must be deployed again, if it must.
    pub fn drift(&self) -> Option<String> {
        self.tracker
            .broken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Splits it for a successor: what keeps serving while the successor rolls out (this
    /// deployment if its own rollout finished, else the one it was replacing), and what
    /// is to be stopped.
    pub fn into_serving(self) -> (Option<Instance>, Option<Instance>) {
        let previous = self.tracker.previous_lock().take();
        if self.tracker.serves() {
            (Some(self), previous)
        } else {
            (previous, Some(self))
        }
    }

    /// Stops every process of this deployment (and of the one it replaces) and waits
    /// until they are gone.
    pub fn stop(self) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            let previous = self.tracker.previous_lock().take();
            self.tracker.set_phase(Phase::Stopping);
            self.cancel.cancel();
            let own = async {
                if let Err(e) = self.task.await {
                    tracing::error!(error = %e, "supervisor task failed");
                }
                self.tracker.identity.remove();
            };
            match previous {
                Some(p) => {
                    tokio::join!(own, p.stop());
                }
                None => own.await,
            }
        })
    }

    /// Takes it out of routing, lets calls on their way finish, then stops it.
    async fn drain_and_stop(self) {
        self.tracker.draining.store(true, Ordering::Relaxed);
        tokio::time::sleep(DRAIN).await;
        self.stop().await;
    }
}
