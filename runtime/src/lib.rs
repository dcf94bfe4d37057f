//! The runtime contract: where services run, as the reconciler sees it. The
//! [`Runtime`] trait, the [`Artifact`] a deployment runs, the typed [`Deployment`] (its
//! identity and config, secrets that never print), what a runtime reports back, and
//! [`memory::MemoryRuntime`], which runs nothing.
//!
//! Runtimes (local processes, a cluster) implement it; the reconciler drives it. It
//! depends on `micro-tenant` alone: no store, no cluster client, no processes, no HTTP.

mod artifact;
mod deployment;
pub mod memory;

pub use artifact::Artifact;
pub use deployment::{
    API_VAR, CALL_VAR, ConfigEnv, DEPLOYMENT_VAR, Deployment, IDENTITY_VARS, PLATFORM_IDENTITY_VAR,
    Pem, Secret, TOKEN_VAR, call_base,
};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use micro_tenant::desired::{DesiredService, ObservedService};

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
    /// Was ready, and now fails its readiness check: out of routing until it passes.
    Unhealthy,
    /// Its process keeps exiting: started again with backoff (Kubernetes'
    /// `CrashLoopBackOff`). Older servers said `crashed`.
    #[serde(rename = "crashloop", alias = "crashed")]
    CrashLoop,
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

impl ServiceEvent {
    /// `what` happened just now.
    pub fn now(what: String) -> Self {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        ServiceEvent { at_ms, what }
    }
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
    Repo(#[from] micro_tenant::repo::RepoError),
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
        /// Its [`Deployment::id`].
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
    pub quota: micro_tenant::quota::Quota,
    pub uid: u32,
}

/// Where each namespace's services reach the platform API on the host: a port of its
/// own, so the platform tells their traffic from people's and from other tenants' (for
/// connection caps and login throttling) by where it arrives. Inside the sandbox the API
/// keeps its one address; the sandbox's network maps it to the namespace's door.
pub trait ApiDoors: Send + Sync {
    /// The host port on 127.0.0.1 of `namespace`'s door, opened on first use.
    fn port(&self, namespace: &str) -> std::io::Result<u16>;
    /// Opens `namespace`'s door at `port` again: where the networks of services a
    /// previous server left running point. Fails if the port is taken.
    fn reopen(&self, namespace: &str, port: u16) -> std::io::Result<()>;
    /// `namespace` is gone: its door closes.
    fn close(&self, namespace: &str);
    /// Serves `listener`, made inside one replica's own network where its services know
    /// the API, as part of `namespace`'s door, until the returned [`Entrance`] is dropped.
    /// The API answers there itself: nothing relays the replica's calls, so they hold
    /// what any client's connection holds and no more.
    fn admit(&self, namespace: &str, listener: std::net::TcpListener) -> std::io::Result<Entrance>;
}

/// One replica's entrance to its namespace's door ([`ApiDoors::admit`]): closed when
/// dropped (connections under way finish).
pub struct Entrance {
    close: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Entrance {
    /// An entrance that `close` shuts.
    pub fn new(close: impl FnOnce() + Send + Sync + 'static) -> Self {
        Entrance {
            close: Some(Box::new(close)),
        }
    }
}

impl Drop for Entrance {
    fn drop(&mut self) {
        if let Some(close) = self.close.take() {
            close();
        }
    }
}

impl std::fmt::Debug for Entrance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entrance").finish_non_exhaustive()
    }
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
    fn support(&self) -> micro_tenant::spec::Support {
        micro_tenant::spec::Support::ALL
    }
    /// What runs in `namespace`, from the runtime's own cache (no full listing); an error
    /// when the runtime cannot tell (a cluster out of reach), never a guess.
    async fn observe(&self, namespace: &str) -> Result<Vec<ObservedService>, RuntimeError>;
    /// Changes whenever what `observe` would return changes (applies, deletes, drift):
    /// equal generations let a resync skip the namespace in O(1).
    fn generation(&self, namespace: &str) -> u64;
    /// Makes `service` run `artifact` as `deployment`, replacing what runs under that name.
    /// The deployment's secrets reach the service only as each runtime delivers them:
    /// variables from [`Deployment::variables`], the certificate as files.
    async fn apply(
        &self,
        namespace: &str,
        artifact: &Artifact,
        service: &DesiredService,
        deployment: &Deployment,
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
    /// A connection to the replica behind `address` (an endpoint's `host:port`), made
    /// where the replica is rather than through its address: the local sandbox makes it
    /// inside the replica's own network, so nothing relays the platform's traffic to it.
    /// `None`: connect to the address as it is. The stream comes connected and
    /// non-blocking.
    fn connect_direct(
        &self,
        _address: &str,
    ) -> Option<futures_util::future::BoxFuture<'static, std::io::Result<std::net::TcpStream>>>
    {
        None
    }
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
