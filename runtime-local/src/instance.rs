//! One deployment of a service at one revision: its replicas' states, the task
//! supervising them, and the deployment it replaces, which serves until this one is ready
//! (a surge rollout: nothing is stopped before its successor answers).

use super::Shared;
use super::adopt;
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
    /// Its process group while one runs, as a later server finds it.
    pub process: Option<adopt::Running>,
}

impl Replica {
    /// `n` replicas not started yet.
    fn starting(n: u32) -> Vec<Replica> {
        vec![
            Replica {
                state: WorkloadState::Starting,
                port: 0,
                message: String::new(),
                exit: None,
                restarts: 0,
                process: None,
            };
            n as usize
        ]
    }
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
    /// The server is stopping and leaves this deployment's replicas running for the next.
    detaching: AtomicBool,
    /// Its checkout folder, identity folder and their owner, once placed.
    files: Mutex<Option<Files>>,
    model: ServiceModel,
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

/// Where a deployment's files are: its checkout folder, its identity's folder, and who
/// owns them (the namespace's uid in a sandbox).
#[derive(Clone)]
struct Files {
    dir: std::path::PathBuf,
    identity: Option<std::path::PathBuf>,
    owner: Option<u32>,
}

/// What a deployment is of: fixed for its life.
pub(crate) struct Born {
    pub revision: String,
    pub source: String,
    pub model: ServiceModel,
    pub deployment: Option<String>,
}

impl Tracker {
    fn new(
        shared: Arc<Shared>,
        namespace: &str,
        name: String,
        born: Born,
        identity: super::identity::IdentityFiles,
        previous: Option<Instance>,
        state: (Phase, Vec<Replica>),
    ) -> Arc<Self> {
        Arc::new(Tracker {
            broken: Mutex::new(None),
            rolled_out: AtomicBool::new(false),
            muted: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            detaching: AtomicBool::new(false),
            files: Mutex::new(None),
            model: born.model,
            changed: tokio::sync::Notify::new(),
            previous: Mutex::new(previous),
            deployment: born.deployment,
            identity,
            namespace: namespace.to_owned(),
            name,
            revision: born.revision,
            source: born.source,
            shared,
            inner: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Vec<Replica>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn model(&self) -> &ServiceModel {
        &self.model
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
        let failed = matches!(phase, Phase::Failed(_));
        if let Phase::Failed(why) = &phase {
            self.event(format!("{} failed: {why}", self.short_revision()));
        }
        self.lock().0 = phase;
        self.publish();
        if failed {
            self.save();
        }
    }

    /// Where its files are, for the record a later server adopts it by.
    pub fn set_files(
        &self,
        dir: std::path::PathBuf,
        identity: Option<std::path::PathBuf>,
        owner: Option<u32>,
    ) {
        *self.files.lock().unwrap_or_else(PoisonError::into_inner) = Some(Files {
            dir,
            identity,
            owner,
        });
    }

    /// A replica's process group started (`Some`) or ended (`None`).
    pub fn set_process(&self, index: usize, process: Option<adopt::Running>) {
        if let Some(r) = self.lock().1.get_mut(index) {
            r.process = process;
        }
        if self.serves() {
            self.save();
        }
    }

    /// Whether the server is stopping and leaves the replicas running.
    pub fn detaching(&self) -> bool {
        self.detaching.load(Ordering::Relaxed)
    }

    /// This deployment as a later server adopts it, if it serves.
    fn serving_record(&self) -> Option<adopt::Serving> {
        if !self.serves() {
            return None;
        }
        let Files {
            dir,
            identity,
            owner,
        } = self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| Files {
                dir: self.shared.dirs.service_work(&self.namespace, &self.name),
                identity: None,
                owner: None,
            });
        let replicas: Vec<_> = self.lock().1.iter().map(|r| r.process.clone()).collect();
        let door = match (
            &self.shared.isolation.sandbox,
            replicas.iter().any(Option::is_some),
        ) {
            (Some(sandbox), true) => sandbox.doors().and_then(|d| d.port(&self.namespace).ok()),
            _ => None,
        };
        Some(adopt::Serving {
            deployment: self.deployment.clone(),
            revision: self.revision.clone(),
            source: self.source.clone(),
            model: self.model.clone(),
            dir,
            identity,
            owner,
            door,
            replicas,
        })
    }

    /// What serves and what failed, with `previous` the deployment this one replaces.
    fn record_with(&self, previous: Option<&Instance>) -> adopt::Record {
        if let Some(serving) = self.serving_record() {
            return adopt::Record {
                serving: Some(serving),
                failed: None,
            };
        }
        let failed = match &self.lock().0 {
            Phase::Failed(why) => Some(adopt::Failed {
                deployment: self.deployment.clone(),
                revision: self.revision.clone(),
                source: self.source.clone(),
                model: self.model.clone(),
                why: why.clone(),
            }),
            _ => None,
        };
        adopt::Record {
            serving: previous.and_then(|p| p.tracker.serving_record()),
            failed,
        }
    }

    /// Records what serves now, unless a successor speaks for the service.
    fn save(&self) {
        if self.muted.load(Ordering::Relaxed) {
            return;
        }
        let record = self.record_with(self.previous_lock().as_ref());
        self.shared
            .save_record(&self.namespace, &self.name, Some(record));
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
        self.set_replica(index, WorkloadState::CrashLoop, port, message);
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
        self.save();
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
                if let Some(bad) = replicas
                    .iter()
                    .find(|r| r.state == WorkloadState::CrashLoop)
                {
                    (WorkloadState::CrashLoop, bad.message.clone())
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
        let replicas = Replica::starting(service.model.replicas);
        let tracker = Tracker::new(
            shared.clone(),
            namespace,
            service.name.clone(),
            Born {
                revision: service.revision.clone(),
                source: service.source(),
                model: service.model.clone(),
                deployment: Some(deployment.id.clone()),
            },
            super::identity::IdentityFiles::new(deployment.certificate.clone()),
            previous,
            (Phase::Building, replicas),
        );
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
                    micro_runtime::CALL_VAR.to_owned(),
                    micro_runtime::call_base(&deployment.api_url, namespace),
                );
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

    /// A deployment a previous server left serving, with those of its replicas that still
    /// run (`live`, in order): routed to at once and watched like one of this server's.
    /// A replica that was not running has the service deployed afresh, while the rest
    /// serve.
    pub fn adopt(
        shared: Arc<Shared>,
        namespace: &str,
        name: &str,
        serving: adopt::Serving,
        live: Vec<Option<adopt::Running>>,
    ) -> Self {
        let replicas = live
            .iter()
            .map(|r| Replica {
                state: if r.is_some() {
                    WorkloadState::Running
                } else {
                    WorkloadState::CrashLoop
                },
                port: r.as_ref().map_or(0, |r| r.host_port),
                message: if r.is_some() {
                    String::new()
                } else {
                    "it was not running when the platform restarted".to_owned()
                },
                exit: None,
                restarts: 0,
                process: r.clone(),
            })
            .collect();
        let tracker = Tracker::new(
            shared.clone(),
            namespace,
            name.to_owned(),
            Born {
                revision: serving.revision.clone(),
                source: serving.source.clone(),
                model: serving.model.clone(),
                deployment: serving.deployment.clone(),
            },
            super::identity::IdentityFiles::adopt(serving.identity.as_deref(), serving.owner),
            None,
            (Phase::Running, replicas),
        );
        tracker.rolled_out.store(true, Ordering::Relaxed);
        tracker.set_files(serving.dir.clone(), serving.identity.clone(), serving.owner);
        tracker.event(format!(
            "{} adopted: it kept running while the platform restarted",
            tracker.short_revision()
        ));
        tracker.publish();
        if let Some(missing) = live.iter().position(Option::is_none) {
            tracker.report_drift(format!(
                "replica {} was not running when the platform restarted",
                missing + 1
            ));
        }
        let cancel = CancellationToken::new();
        let span = tracing::info_span!("deployment", namespace = %namespace, service = %name, revision = %serving.revision);
        let task = tokio::spawn(
            supervisor::adopted(shared, tracker.clone(), serving.dir, live, cancel.clone())
                .instrument(span),
        );
        Instance {
            model: serving.model,
            revision: serving.revision,
            tracker,
            cancel,
            task,
        }
    }

    /// A newer deployment whose rollout had failed before the restart: status still says
    /// so, and `serving` (adopted) still serves.
    pub fn adopt_failed(
        shared: Arc<Shared>,
        namespace: &str,
        name: &str,
        failed: adopt::Failed,
        serving: Option<Instance>,
    ) -> Self {
        if let Some(p) = &serving {
            p.tracker.muted.store(true, Ordering::Relaxed);
        }
        let replicas = Replica::starting(failed.model.replicas);
        let tracker = Tracker::new(
            shared,
            namespace,
            name.to_owned(),
            Born {
                revision: failed.revision.clone(),
                source: failed.source,
                model: failed.model.clone(),
                deployment: failed.deployment,
            },
            super::identity::IdentityFiles::default(),
            serving,
            (Phase::Failed(failed.why), replicas),
        );
        tracker.publish();
        let cancel = CancellationToken::new();
        let waiting = cancel.clone();
        let task = tokio::spawn(async move { waiting.cancelled().await });
        Instance {
            model: failed.model,
            revision: failed.revision,
            tracker,
            cancel,
            task,
        }
    }

    /// The server is stopping: what serves keeps running for the next server, which
    /// adopts it by the record written here; a rollout under way is stopped.
    pub fn detach(self) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            let previous = self.tracker.previous_lock().take();
            let record = self.tracker.record_with(previous.as_ref());
            let (shared, ns, name) = (
                self.tracker.shared.clone(),
                self.tracker.namespace.clone(),
                self.tracker.name.clone(),
            );
            if self.tracker.serves() {
                self.leave_running().await;
            } else {
                self.tracker.muted.store(true, Ordering::Relaxed);
                match previous {
                    Some(p) => {
                        tokio::join!(self.stop(), p.leave_running());
                    }
                    None => self.stop().await,
                }
            }
            let written =
                crate::blocking::blocking(move || adopt::write_now(&shared, &ns, &name, &record))
                    .await;
            if let Ok(Err(e)) = written {
                tracing::warn!(error = %e, "cannot record what serves");
            }
        })
    }

    /// Stops watching its replicas, leaving them running.
    fn leave_running(self) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            self.tracker.detaching.store(true, Ordering::Relaxed);
            self.cancel.cancel();
            if let Err(e) = self.task.await {
                tracing::error!(error = %e, "supervisor task failed");
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
