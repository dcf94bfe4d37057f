//! Request and response bodies shared by the server and the client.

pub use micro_store::Record;
use micro_store::{NamespaceStatus, Role, ServiceStatus};
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// What the reconciler last took up from the branch (and applied, or refused).
    pub namespace: Option<NamespaceStatus>,
    pub services: Vec<ServiceStatus>,
    /// The branch head right now; ahead of `namespace.head` while a push is being taken up.
    #[serde(default)]
    pub branch: Option<String>,
}

/// `micro describe`: one service in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDescription {
    #[serde(flatten)]
    pub status: ServiceStatus,
    /// The first line of the commit it runs.
    pub subject: Option<String>,
    pub author: Option<String>,
    #[serde(flatten)]
    pub detail: micro_reconciler::runtime::ServiceDetail,
}

/// One reconcile, with the commit it took up as people know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryItem {
    #[serde(flatten)]
    pub entry: micro_store::HistoryEntry,
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
