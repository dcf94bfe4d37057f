//! The reconcile loop: desired (the branch head) against actual (the runtime), then apply.

use crate::desired::DesiredNamespace;
use crate::plan::{self, Action, Plan};
use crate::queue::Queue;
use crate::repo::{self, LoadError, Repos};
use crate::runtime::{Runtime, RuntimeError, RuntimeEvent};
use micro_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

const RETRY_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("reconcile task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What one reconcile did.
#[derive(Debug)]
pub enum Outcome {
    /// The head was applied with this plan.
    Applied { revision: String, plan: Plan },
    /// The head does not validate; what ran before keeps running.
    Invalid { revision: String, error: String },
    /// No such namespace repo (any more).
    Missing,
}

/// Drives namespaces towards their branch heads.
pub struct Controller {
    repos: Repos,
    store: Store,
    runtime: Arc<dyn Runtime>,
    queue: Queue,
}

impl Controller {
    pub fn new(repos: Repos, store: Store, runtime: Arc<dyn Runtime>) -> Arc<Self> {
        Arc::new(Controller {
            repos,
            store,
            runtime,
            queue: Queue::new(),
        })
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// Reads the head, diffs it against the runtime and applies the difference.
    pub async fn reconcile(&self, namespace: &str) -> Result<Outcome, ReconcileError> {
        let path = self.repos.path(namespace);
        if !path.exists() {
            return Ok(Outcome::Missing);
        }
        let ns = namespace.to_owned();
        let read_path = path.clone();
        let (head, loaded) = tokio::task::spawn_blocking(
            move || -> Result<(String, Result<DesiredNamespace, LoadError>), git2::Error> {
                let repo = git2::Repository::open_bare(&read_path)?;
                let head = repo.refname_to_id(repo::BRANCH)?;
                Ok((head.to_string(), repo::load(&repo, &ns, head)))
            },
        )
        .await??;
        let desired = match loaded {
            Ok(d) => d,
            Err(LoadError::Invalid(e)) => {
                let error = e.to_string();
                tracing::warn!(namespace, revision = %head, %error, "invalid revision; keeping the last good one");
                self.store
                    .put_namespace_status(namespace, &head, None, Some(&error))
                    .await?;
                return Ok(Outcome::Invalid {
                    revision: head,
                    error,
                });
            }
            Err(LoadError::Git(e)) => return Err(e.into()),
        };
        let observed = self.runtime.observe(namespace).await;
        let plan = plan::plan(&desired, &observed);
        for action in &plan.actions {
            match action {
                Action::Delete { name } => self.runtime.delete(namespace, name).await?,
                Action::Create(s) | Action::Update { desired: s, .. } => {
                    self.runtime.apply(namespace, &path, s).await?;
                }
            }
        }
        if !plan.is_empty() {
            tracing::info!(namespace, revision = %head, changes = plan.actions.len(), "applied");
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
        self.store
            .put_namespace_status(namespace, &head, Some(&head), None)
            .await?;
        Ok(Outcome::Applied {
            revision: head,
            plan,
        })
    }

    /// Starts `n` workers taking namespaces off the queue.
    pub fn spawn_workers(self: &Arc<Self>, n: usize) -> Vec<JoinHandle<()>> {
        (0..n.max(1))
            .map(|_| {
                let this = self.clone();
                tokio::spawn(async move {
                    loop {
                        let ns = this.queue.next().await;
                        let result = this.reconcile(&ns).await;
                        this.queue.done(&ns);
                        if let Err(e) = result {
                            tracing::error!(namespace = %ns, error = %e, "reconcile failed; retrying");
                            let queue = this.queue.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(RETRY_AFTER).await;
                                queue.trigger(&ns);
                            });
                        }
                    }
                })
            })
            .collect()
    }

    /// Queues every namespace the store knows.
    pub async fn trigger_all(&self) -> Result<(), StoreError> {
        for ns in self.store.list_namespaces().await? {
            self.queue.trigger(&ns);
        }
        Ok(())
    }
}

/// Records what the runtime reports into the store, in order.
pub async fn record_events(store: Store, mut events: UnboundedReceiver<RuntimeEvent>) {
    while let Some(event) = events.recv().await {
        let result = match &event {
            RuntimeEvent::Status(s) => store.put_service_status(s).await,
            RuntimeEvent::Removed { namespace, name } => {
                store.delete_service_status(namespace, name).await
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot record service status");
        }
    }
}
