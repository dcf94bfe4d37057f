//! One running deployment of a service: its replicas' states and the task supervising them.

use super::Shared;
use super::supervisor;
use crate::desired::{DesiredService, ServiceModel};
use crate::runtime::{ConfigEnv, RuntimeEvent};
use micro_store::{ServiceState, ServiceStatus, now_millis};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    pub state: ServiceState,
    pub port: u16,
    pub message: String,
}

/// State shared between the supervisor tasks and the runtime's readers.
pub(crate) struct Tracker {
    /// Set when the deployment must be applied afresh: its files vanished under it, or a
    /// restart was asked for.
    pub broken: std::sync::atomic::AtomicBool,
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

    /// Marks the deployment broken and tells the reconciler.
    pub fn report_drift(&self, what: String) {
        if !self.broken.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.shared.bump(&self.namespace);
            let _ = self.shared.events.send(RuntimeEvent::Drift {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                what,
            });
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.lock().0 = phase;
        self.publish();
    }

    pub fn set_replica(&self, index: usize, state: ServiceState, port: u16, message: String) {
        {
            let mut guard = self.lock();
            if let Some(r) = guard.1.get_mut(index) {
                *r = Replica {
                    state,
                    port,
                    message,
                };
            }
        }
        self.publish();
    }

    fn status(&self) -> ServiceStatus {
        let guard = self.lock();
        let (phase, replicas) = &*guard;
        let desired = u32::try_from(replicas.len()).unwrap_or(u32::MAX);
        let ready = u32::try_from(
            replicas
                .iter()
                .filter(|r| r.state == ServiceState::Running)
                .count(),
        )
        .unwrap_or(u32::MAX);
        let (status, message) = match phase {
            Phase::Building => (ServiceState::Building, String::new()),
            Phase::Failed(msg) => (ServiceState::Error, msg.clone()),
            Phase::Stopping => (ServiceState::Stopping, String::new()),
            Phase::Running => {
                if let Some(bad) = replicas.iter().find(|r| r.state == ServiceState::Crashed) {
                    (ServiceState::Crashed, bad.message.clone())
                } else if ready == desired {
                    let note = replicas.iter().find(|r| !r.message.is_empty());
                    (
                        ServiceState::Running,
                        note.map(|r| r.message.clone()).unwrap_or_default(),
                    )
                } else {
                    (ServiceState::Starting, String::new())
                }
            }
        };
        ServiceStatus {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            revision: self.revision.clone(),
            source: self.source.clone(),
            status,
            ready,
            desired,
            message,
            updated_at: now_millis(),
        }
    }

    fn publish(&self) {
        let _ = self.shared.events.send(RuntimeEvent::Status(self.status()));
    }

    pub fn endpoints(&self) -> Vec<SocketAddr> {
        self.lock()
            .1
            .iter()
            .filter(|r| r.state == ServiceState::Running)
            .map(|r| SocketAddr::from((Ipv4Addr::LOCALHOST, r.port)))
            .collect()
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
    pub fn start(
        shared: Arc<Shared>,
        namespace: &str,
        repo: &Path,
        service: &DesiredService,
        config: &ConfigEnv,
    ) -> Self {
        let replicas = vec![
            Replica {
                state: ServiceState::Starting,
                port: 0,
                message: String::new(),
            };
            service.model.replicas as usize
        ];
        let tracker = Arc::new(Tracker {
            broken: std::sync::atomic::AtomicBool::new(false),
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
            repo.to_owned(),
            service.clone(),
            config.clone(),
            cancel.clone(),
        ));
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

    /// Asks for this deployment to be replaced by a fresh one on the next reconcile.
    pub fn request_replacement(&self) {
        self.tracker
            .broken
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.tracker.shared.bump(&self.tracker.namespace);
    }

    /// The model it runs; a broken deployment shows no code, so the plan replaces it.
    pub fn observed_model(&self) -> ServiceModel {
        let mut model = self.model.clone();
        if self
            .tracker
            .broken
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            model.code = "(missing)".into();
        }
        model
    }

    /// Stops every process of this deployment and waits until they are gone.
    pub async fn stop(self) {
        self.tracker.set_phase(Phase::Stopping);
        self.cancel.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "supervisor task failed");
        }
    }
}
