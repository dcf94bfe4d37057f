//! The runtime boundary: where services actually run. The reconciler talks to it only
//! through [`Runtime`]; the plan engine knows nothing of it.

pub mod local;
pub mod memory;

use crate::desired::{DesiredService, ObservedService};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::path::PathBuf;

/// Config a service gets as environment variables: `MICRO_CONFIG_<KEY>` → value.
/// Values are secrets: never log, plan or record them.
pub type ConfigEnv = std::collections::BTreeMap<String, String>;

pub use micro_tenant::layout::config_env_name;

/// What a deployment runs, named so that each runtime fetches it its own way (the local
/// one extracts files; a cluster's init container clones): never a checkout made for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    /// A folder of the namespace's own repo: `path` of commit `revision`, whose tree is
    /// `tree`, in the platform's bare repo at `repo`.
    Repo {
        repo: PathBuf,
        revision: String,
        path: String,
        tree: String,
    },
    /// A folder (`path`, else the root) of a `source` repo at its pinned commit.
    Source {
        url: String,
        commit: String,
        path: Option<String>,
    },
    /// A container image: it is what runs, with no folder at all.
    Image(String),
}

impl Artifact {
    /// What `service` runs, its own folder being in the namespace's repo at `repo`.
    pub fn of(repo: &std::path::Path, service: &DesiredService) -> Self {
        if let Some(image) = &service.model.image {
            return Artifact::Image(image.clone());
        }
        match &service.model.source {
            Some(s) => Artifact::Source {
                url: s.git.clone(),
                commit: s.commit.clone(),
                path: s.path.clone(),
            },
            None => Artifact::Repo {
                repo: repo.to_owned(),
                revision: service.revision.clone(),
                path: micro_tenant::layout::service_dir(&service.name),
                tree: service.tree.clone(),
            },
        }
    }
}

/// Where a service or one replica of it is, in the runtime's words; the controller maps
/// it to what the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadState {
    /// Fetching or building its code.
    Building,
    /// Started, not ready yet.
    Starting,
    /// Ready: calls reach it.
    Running,
    /// Exited, and restarting with backoff.
    Crashed,
    /// Cannot go on until changed (a failed build or rollout).
    Error,
    Stopping,
}

/// One replica as `micro describe` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaInfo {
    /// 1-based, as logs mark replicas.
    pub replica: usize,
    pub state: WorkloadState,
    pub restarts: u32,
    /// How its last process ended, if one has.
    pub last_exit: Option<String>,
    /// Where the platform reaches it (`micro call` goes there), while it is ready.
    pub endpoint: Option<String>,
    pub message: String,
}

/// Something that happened to a service: started, ready, crashed, rolled out, ….
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceEvent {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub what: String,
}

/// What the runtime knows of one service beyond its status.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceDetail {
    pub replicas: Vec<ReplicaInfo>,
    /// The older revision still serving while this one rolls out.
    pub serving: Option<String>,
    /// Config keys the running revision gets, with their versions (never values).
    pub config: std::collections::BTreeMap<String, u64>,
    /// Oldest first.
    pub events: Vec<ServiceEvent>,
}

/// Which log lines `micro logs` wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// The last this many lines (of those since `since_ms`).
    pub tail: usize,
    /// Then the lines still to come, until the service is removed.
    pub follow: bool,
    /// Only lines logged at or after this time (milliseconds since the epoch).
    pub since_ms: Option<i64>,
}

/// The variable naming a deployment (given with its config): its identity's token is
/// retired only when a later deployment serves alone.
pub const DEPLOYMENT_VAR: &str = "MICRO_DEPLOYMENT";

/// The URI of the platform's own client certificate, which services serving TLS see on
/// the calls it forwards; given with the identity.
pub const PLATFORM_IDENTITY_VAR: &str = "MICRO_PLATFORM_IDENTITY";

/// The variables a deployment's certificate and key (PEM) are handed to a runtime in;
/// runtimes give them to the service as files, never as variables.
pub const IDENTITY_VARS: [&str; 2] = ["MICRO_TLS_CERT_PEM", "MICRO_TLS_KEY_PEM"];

/// A certificate and its key, PEM. The key is a secret: never log it.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem(…)")
    }
}

impl Pem {
    /// The identity a deployment's config hands its runtime, if it has one.
    pub fn from_config(config: &ConfigEnv) -> Option<Pem> {
        let [cert, key] = IDENTITY_VARS;
        Some(Pem {
            cert: config.get(cert)?.clone(),
            key: config.get(key)?.clone(),
        })
    }
}

/// A stream of log bytes (ends unless following).
pub type LogStream = BoxStream<'static, std::io::Result<Bytes>>;

/// A `micro call` for a runtime that forwards calls itself.
#[derive(Clone, Debug)]
pub struct CallRequest {
    pub method: String,
    /// Below the service's root, without the leading `/`, with its query; free of `.`
    /// and `..` segments and encoded slashes (the API checks).
    pub path: String,
    /// Only what may pass to a service (never the caller's platform token).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

/// The service's answer, streamed.
pub struct CallResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: LogStream,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("service {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Repo(#[from] crate::repo::RepoError),
    /// What runs them failed or cannot be reached (a cluster's API server).
    #[error("{0}")]
    Backend(String),
    /// A request the runtime will not pass on (the caller's mistake or attack).
    #[error("{0}")]
    Refused(String),
}

/// A service's state as its runtime reports it; the controller stamps and stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceReport {
    pub namespace: String,
    pub name: String,
    /// The revision being rolled out or running.
    pub revision: String,
    /// `repo`, or the URL of the service's source repo.
    pub source: String,
    pub state: WorkloadState,
    pub ready: u32,
    pub desired: u32,
    /// Why it is in that state, in words for `micro status`.
    pub message: String,
}

/// What a runtime tells the reconciler as things change under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// A service's status changed (started, became ready, crashed, …).
    Status(ServiceReport),
    /// A deployment now serves alone: what it replaced has stopped.
    RolledOut {
        namespace: String,
        name: String,
        /// Its [`DEPLOYMENT_VAR`].
        deployment: String,
    },
    /// A service was removed and is gone.
    Removed { namespace: String, name: String },
    /// Something changed under the runtime that the reconciler must repair.
    Drift {
        namespace: String,
        name: String,
        what: String,
    },
}

/// What a namespace as a whole is given wherever it runs: its quota, and the uid (and
/// gid) its processes run as, the store's, never shared with another namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceSettings {
    pub quota: crate::quota::Quota,
    pub uid: u32,
}

/// Where services run. Every method is scoped to one namespace.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Whether it sends [`RuntimeEvent::RolledOut`]; if not, a deployment counts as
    /// serving alone once applied.
    fn reports_rollouts(&self) -> bool {
        false
    }
    /// What specs it can run; a push asking for more is refused.
    fn support(&self) -> crate::spec::Support {
        crate::spec::Support::ALL
    }
    /// What runs in `namespace`, from the runtime's own cache (no full listing); an error
    /// when the runtime cannot tell (a cluster out of reach), never a guess.
    async fn observe(&self, namespace: &str) -> Result<Vec<ObservedService>, RuntimeError>;
    /// Changes whenever what `observe` would return changes (applies, deletes, drift):
    /// equal generations let a resync skip the namespace in O(1).
    fn generation(&self, namespace: &str) -> u64;
    /// Makes `service` run `artifact` as desired, replacing what runs under that name.
    async fn apply(
        &self,
        namespace: &str,
        artifact: &Artifact,
        service: &DesiredService,
        config: &ConfigEnv,
    ) -> Result<(), RuntimeError>;
    /// Makes the namespace-wide objects match the namespace's settings (its quota and
    /// uid; on a cluster, network policy and service accounts). Called before any
    /// service of the namespace is applied.
    async fn apply_namespace(
        &self,
        _namespace: &str,
        _settings: &NamespaceSettings,
    ) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// Stops and forgets a service; deleting one that does not run is not an error.
    async fn delete(&self, namespace: &str, name: &str) -> Result<(), RuntimeError>;
    /// Stops everything of a deleted namespace: each of its services, then what the
    /// runtime keeps for the namespace itself. Nothing there is not an error.
    async fn delete_namespace(&self, namespace: &str) -> Result<(), RuntimeError> {
        for service in self.observe(namespace).await? {
            self.delete(namespace, &service.name).await?;
        }
        Ok(())
    }
    /// Marks a service to be rolled out again at its revision on the next reconcile (a
    /// restart, or a retry of a failed build); false if nothing of that name runs.
    fn restart(&self, _namespace: &str, _name: &str) -> bool {
        false
    }
    /// Hands a running deployment of a service a new certificate identity (PEM), in
    /// place of its old one: the files change under the running service, which is not
    /// restarted. `false` when that deployment does not run here (replaced or removed).
    async fn renew_identity(
        &self,
        _namespace: &str,
        _name: &str,
        _deployment: &str,
        _identity: &Pem,
    ) -> Result<bool, RuntimeError> {
        Ok(false)
    }
    /// Replicas, recent events and config of a service; `None` if nothing of that name
    /// runs.
    fn describe(&self, _namespace: &str, _name: &str) -> Option<ServiceDetail> {
        None
    }
    /// Base URLs (`http://host:port`, `https://` for a service with `tls`) of the ready
    /// replicas of a service.
    fn endpoints(&self, namespace: &str, name: &str) -> Vec<String>;
    /// Whether `micro call` goes through [`Runtime::call`] rather than to the endpoints
    /// (a cluster reached from outside it, through its API server's service proxy).
    fn forwards_calls(&self) -> bool {
        false
    }
    /// Forwards a call to a service of `namespace`, when [`Runtime::forwards_calls`].
    async fn call(
        &self,
        _namespace: &str,
        name: &str,
        _request: CallRequest,
    ) -> Result<CallResponse, RuntimeError> {
        Err(RuntimeError::NotFound(name.to_owned()))
    }
    /// A service's log lines as `query` asks; a follow ends when the service is removed.
    async fn logs(
        &self,
        namespace: &str,
        name: &str,
        query: LogQuery,
    ) -> Result<LogStream, RuntimeError>;
    /// The platform is shutting down. A runtime whose workloads die with the server
    /// (local processes) stops them; one that outlives it (a cluster) must leave them be.
    async fn shutdown(&self);
}
