//! Request and response bodies shared by the server and the client.

//!
//! These are the API's own types, versioned with the path (`/api/v1`): never store rows or
//! reconciler internals, so either side can change its insides. Within v1 they only grow:
//! new fields are optional (`#[serde(default)]`), unknown fields are ignored and unknown
//! enum values read as `unknown`, so a CLI one version apart still understands the server.

mod history;
mod link;
mod plan;
mod services;
mod signup;

pub use history::HistoryItem;
pub use link::{DeliveryView, EnvironmentView, LinkCreated, LinkRequest, LinkView, PreviewView};
pub use micro_store::{ReconcileResult, Role, Trigger};
pub use plan::{ActionView, FieldChangeView, PlanSummary, PlanView};
use serde::{Deserialize, Serialize};
pub use services::{
    EventView, NamespaceView, ReplicaView, ServiceDescription, ServiceState, ServiceView,
    StatusReport, TrafficView,
};
pub use signup::{
    InviteRequest, InviteView, MailView, SignupClaim, SignupDone, SignupMode, SignupOpen,
    SignupPayment, SignupRequest, SignupResult, SignupStarted, SignupVerify,
};

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
pub struct CreateNamespace {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceList {
    pub namespaces: Vec<String>,
    /// Each namespace's effective quota, in the same order.
    #[serde(default)]
    pub quotas: Vec<QuotaView>,
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
    /// `developer` (paid through Stripe) or `free` (made by an admin, or open sign-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// A paid plan's state: `active`, `past_due` or `canceled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<String>,
    /// Why its namespace is suspended (`billing`, `admin`), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
}

/// What `micro admin namespace delete` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceDeleted {
    pub namespace: String,
    /// Accounts deleted with it (its developers and its services' identities).
    pub accounts: u64,
    /// Services it ran, now stopping.
    pub services: usize,
}

/// A namespace's suspension after `micro admin suspend|resume`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuspensionView {
    pub namespace: String,
    /// Why it is suspended now, if it is.
    pub suspended: Option<String>,
    /// Whether this request changed anything.
    pub changed: bool,
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

/// One record of the key-value store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRecord {
    pub key: String,
    pub value: String,
    /// Milliseconds since the epoch, if it expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

impl From<micro_store::Record> for KvRecord {
    fn from(r: micro_store::Record) -> Self {
        KvRecord {
            key: r.key,
            value: r.value,
            expires_at: r.expires_at,
        }
    }
}

/// Largest key-value store value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 1024 * 1024;

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
    /// What the namespace may keep in the store (records, config values), e.g. `256Mi`.
    pub store_size: String,
    /// The longest `build_timeout` a service may ask, e.g. `60m` (absent from servers
    /// before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_time: Option<String>,
    /// Branches and tags the repo may hold (absent from servers before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<u64>,
}

/// `PUT …/quota`: `key=value,...` to change (the rest stays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetQuota {
    pub set: String,
}

/// `POST /api/v1/namespaces/{ns}/keys`: a new API key's name.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewKey {
    pub name: String,
}

/// The key just made: shown this once, never again.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyCreated {
    pub name: String,
    pub key: String,
}

/// One API key as listed (never the key itself).
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyView {
    pub name: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// `POST /api/v1/namespaces/{ns}/domains`: a host to claim for a service.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewDomain {
    pub host: String,
    pub service: String,
}

/// One custom domain of a namespace, and where it stands.
#[derive(Debug, Serialize, Deserialize)]
pub struct DomainView {
    pub host: String,
    pub service: String,
    /// `live`, `proven` (its certificate is not issued yet) or `pending` (not proven).
    pub state: String,
    /// How it was proven: `http-01` or `txt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proven_by: Option<String>,
    /// What a TXT record `_micro-challenge.<host>` may hold to prove it.
    pub token: String,
    /// When its certificate ends (milliseconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_expires_at: Option<i64>,
    /// Why it is not live yet, or what its last renewal said.
    pub message: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// `POST /api/v1/admin/backup`: the passphrase the archive's secrets are sealed with.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupRequest {
    pub passphrase: String,
}

impl std::fmt::Debug for BackupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupRequest { passphrase: <hidden> }")
    }
}
