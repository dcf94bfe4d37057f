//! Request and response bodies shared by the server and the client.

pub use micro_store::Record;
use micro_store::{NamespaceStatus, Role, ServiceState, ServiceStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    pub email: String,
    pub role: Role,
    pub namespace: Option<String>,
}

/// A service's state on the wire: the API's own shape, whatever the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    pub namespace: String,
    pub name: String,
    /// The revision being rolled out or running.
    pub revision: String,
    /// `repo`, or the source repo's URL.
    pub source: String,
    pub status: ServiceState,
    pub ready: u32,
    pub desired: u32,
    pub message: String,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

impl From<ServiceStatus> for ServiceView {
    fn from(s: ServiceStatus) -> Self {
        ServiceView {
            namespace: s.namespace,
            name: s.name,
            revision: s.revision,
            source: s.source,
            status: s.status,
            ready: s.ready,
            desired: s.desired,
            message: s.message,
            updated_at: s.updated_at,
        }
    }
}

/// What the reconciler last made of the branch head, on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceView {
    pub namespace: String,
    /// The branch head last taken up.
    pub head: String,
    /// The last revision applied.
    pub applied: Option<String>,
    /// Why `head` is not applied, when it is not.
    pub error: Option<String>,
    pub updated_at: i64,
}

impl From<NamespaceStatus> for NamespaceView {
    fn from(n: NamespaceStatus) -> Self {
        NamespaceView {
            namespace: n.namespace,
            head: n.head,
            applied: n.applied,
            error: n.error,
            updated_at: n.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// What the reconciler last took up from the branch (and applied, or refused).
    pub namespace: Option<NamespaceView>,
    pub services: Vec<ServiceView>,
    /// The branch head right now; ahead of `namespace.head` while a push is being taken up.
    #[serde(default)]
    pub branch: Option<String>,
}

/// `micro describe`: one service in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDescription {
    #[serde(flatten)]
    pub status: ServiceView,
    /// The first line of the commit it runs.
    pub subject: Option<String>,
    pub author: Option<String>,
    #[serde(flatten)]
    pub detail: micro_reconciler::runtime::ServiceDetail,
}

/// One reconcile, with the commit it took up as people know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryItem {
    pub namespace: String,
    /// Microseconds since the epoch; orders a namespace's reconciles.
    pub started_us: i64,
    pub revision: String,
    /// What triggered it (comma-separated when several coalesced); `rollback` for a
    /// rollback commit's push.
    pub reason: String,
    pub result: micro_store::ReconcileResult,
    /// The plan in one line.
    pub summary: String,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub plan_ms: i64,
    pub apply_ms: i64,
    /// The commit's first line.
    #[serde(default)]
    pub subject: Option<String>,
    /// `Name <email>` of the commit's author.
    #[serde(default)]
    pub author: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateNamespace {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceList {
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceBase {
    pub base: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginReply {
    pub token: String,
    pub email: String,
    pub role: Role,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAccount {
    pub email: String,
    pub namespace: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountInfo {
    pub email: String,
    pub role: Role,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetConfig {
    pub value: serde_json::Value,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetConfigReply {
    pub key: String,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigValueInfo {
    pub key: String,
    pub version: u64,
    pub secret: bool,
    /// Absent for a secret unless revealed.
    pub value: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigEntryInfo {
    pub key: String,
    pub version: u64,
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KvWrite {
    pub value: String,
    /// Seconds until the record expires.
    pub expiry_secs: Option<u64>,
}

/// A namespace's effective quota, as `micro admin quota` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaView {
    pub namespace: String,
    pub services: u64,
    pub replicas: u64,
    /// e.g. `8000m`
    pub cpu: String,
    /// e.g. `16384Mi`
    pub memory: String,
    pub repo_size: String,
    pub checkout_files: u64,
    pub checkout_size: String,
    pub pushes_per_minute: u64,
}

/// `PUT …/quota`: `key=value,...` to change (the rest stays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetQuota {
    pub set: String,
}
