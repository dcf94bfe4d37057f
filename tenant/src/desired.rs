//! The runtime-neutral desired model rendered from a commit: only the fields the platform
//! owns, with defaults already applied, so comparing two models never shows noise.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything a namespace wants running at one revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredNamespace {
    pub namespace: String,
    /// The commit this was read from.
    pub revision: String,
    pub services: BTreeMap<String, DesiredService>,
}

/// One service as a commit wants it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredService {
    pub name: String,
    pub model: ServiceModel,
    /// Tree id of `services/<name>/` in the tenant repo: where the local runtime checks
    /// the code out from.
    pub tree: String,
    /// The commit being applied when this service (re)starts.
    pub revision: String,
}

/// The fields of a service the platform owns. Two equal models mean nothing to do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceModel {
    /// Digest of the service's files other than `service.yaml`.
    pub code: String,
    pub run: Option<String>,
    /// The build it runs: what its files ask for (`pip install ...`), then its spec's.
    pub build: Option<String>,
    /// What its folder's files made the platform do, a line each (`requirements.txt:
    /// pip install -r requirements.txt`), for `micro describe`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detected: Vec<String>,
    pub image: Option<String>,
    pub source: Option<SourceModel>,
    pub port: Option<u16>,
    pub replicas: u32,
    pub env: BTreeMap<String, String>,
    /// Config key → the version `config.yaml` names (0: not set yet). Never values.
    pub config: BTreeMap<String, u64>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// The spec's `readiness.path`: ready also means a GET there answers below 500.
    #[serde(default)]
    pub ready_path: Option<String>,
    /// Seconds a rollout waits for every new replica to be ready.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: u32,
    /// The language its folder's files say it is built with (`python`, `node`), for a
    /// runtime that picks a runner image by it; unknown for `source` services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolchain: Option<String>,
    /// The interpreter its spec pins (`python3.12`, `node20`), if it pins one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Seconds its `build` may run, as its spec asks; 0 when it does not (then the
    /// default, within its namespace's quota).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub build_timeout: u32,
    /// The spec's `tls`: it serves HTTPS with its identity; the platform calls it over mTLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// The spec's `public`: the edge routes its host to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// The spec's `auth: key`: callers show one of the namespace's API keys.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth_key: bool,
    /// The spec's `limits.body` in bytes; 0 when it says nothing (the edge's default).
    #[serde(default, skip_serializing_if = "is_zero_bytes")]
    pub body_limit: u64,
    /// The spec's `liveness`: when a running replica is restarted as wedged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Liveness>,
}

/// A liveness check: every `period` seconds; `failures` in a row restart the replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness {
    /// A GET here below 500 passes; without it, accepting connections on `$PORT` does.
    pub path: Option<String>,
    pub period: u32,
    pub failures: u32,
}

fn default_ready_timeout() -> u32 {
    crate::spec::DEFAULT_READY_TIMEOUT_SECS
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceModel {
    pub git: String,
    pub commit: String,
    pub track: Option<String>,
    pub path: Option<String>,
}

impl DesiredService {
    /// Where the code comes from, as `micro status` shows it.
    pub fn source(&self) -> String {
        match &self.model.source {
            Some(s) => s.git.clone(),
            None => "repo".to_owned(),
        }
    }
}

/// What the runtime reports running for one service: the model it applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedService {
    pub name: String,
    pub model: ServiceModel,
    pub revision: String,
    /// Why what runs must be deployed again although its model is the desired one (its
    /// files vanished, a restart was asked for); `None` when it is as applied.
    #[serde(default)]
    pub drift: Option<String>,
}

fn is_zero_bytes(n: &u64) -> bool {
    *n == 0
}
