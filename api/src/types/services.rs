//! Services on the wire: `micro status`, `micro describe`.

use micro_runtime::{ReplicaInfo, ServiceDetail, ServiceEvent, WorkloadState};
use micro_store::{NamespaceStatus, ServiceStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a service or a replica is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Building,
    Starting,
    Running,
    /// Was ready, now fails its readiness check: no calls reach it until it passes.
    Unhealthy,
    /// Its process keeps exiting: started again with backoff. Older servers said
    /// `crashed`.
    #[serde(rename = "crashloop", alias = "crashed")]
    CrashLoop,
    Error,
    Stopping,
    /// Scaled to zero replicas (`micro scale NAME 0`): nothing runs until it is scaled up.
    Paused,
    /// A state this client does not know yet (a newer server).
    #[serde(other)]
    Unknown,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Building => "building",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Unhealthy => "unhealthy",
            ServiceState::CrashLoop => "crashloop",
            ServiceState::Error => "error",
            ServiceState::Stopping => "stopping",
            ServiceState::Paused => "paused",
            ServiceState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<micro_store::ServiceState> for ServiceState {
    fn from(s: micro_store::ServiceState) -> Self {
        use micro_store::ServiceState as S;
        match s {
            S::Building => ServiceState::Building,
            S::Starting => ServiceState::Starting,
            S::Running => ServiceState::Running,
            S::Unhealthy => ServiceState::Unhealthy,
            S::CrashLoop => ServiceState::CrashLoop,
            S::Error => ServiceState::Error,
            S::Stopping => ServiceState::Stopping,
        }
    }
}

impl From<WorkloadState> for ServiceState {
    fn from(s: WorkloadState) -> Self {
        match s {
            WorkloadState::Building => ServiceState::Building,
            WorkloadState::Starting => ServiceState::Starting,
            WorkloadState::Running => ServiceState::Running,
            WorkloadState::Unhealthy => ServiceState::Unhealthy,
            WorkloadState::CrashLoop => ServiceState::CrashLoop,
            WorkloadState::Error => ServiceState::Error,
            WorkloadState::Stopping => ServiceState::Stopping,
        }
    }
}

/// A service's state as `micro status` shows it.
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
    /// Where the public edge serves it (a `public` service on a platform with an edge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl From<ServiceStatus> for ServiceView {
    fn from(s: ServiceStatus) -> Self {
        ServiceView {
            namespace: s.namespace,
            name: s.name,
            revision: s.revision,
            source: s.source,
            // Zero replicas, all of them ready: paused, not running.
            status: match ServiceState::from(s.status) {
                ServiceState::Running | ServiceState::Starting if s.desired == 0 => {
                    ServiceState::Paused
                }
                other => other,
            },
            ready: s.ready,
            desired: s.desired,
            message: s.message,
            updated_at: s.updated_at,
            url: None,
        }
    }
}

/// What the reconciler last made of the branch head.
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
    /// Why the linked repo's branch could not be fetched, the last time it was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_error: Option<String>,
    /// Why writes are refused and services stopped, while the namespace is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
}

/// One replica of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaView {
    /// 1-based, as logs mark replicas.
    pub replica: usize,
    pub state: ServiceState,
    pub restarts: u32,
    /// How its last process ended, if one has.
    pub last_exit: Option<String>,
    /// Where the platform reaches it, while it is ready.
    pub endpoint: Option<String>,
    pub message: String,
}

impl From<ReplicaInfo> for ReplicaView {
    fn from(r: ReplicaInfo) -> Self {
        ReplicaView {
            replica: r.replica,
            state: r.state.into(),
            restarts: r.restarts,
            last_exit: r.last_exit,
            endpoint: r.endpoint,
            message: r.message,
        }
    }
}

/// Something that happened to a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub what: String,
}

impl From<ServiceEvent> for EventView {
    fn from(e: ServiceEvent) -> Self {
        EventView {
            at_ms: e.at_ms,
            what: e.what,
        }
    }
}

/// `micro describe`: one service in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDescription {
    #[serde(flatten)]
    pub status: ServiceView,
    /// The first line of the commit it runs.
    pub subject: Option<String>,
    pub author: Option<String>,
    #[serde(default)]
    pub replicas: Vec<ReplicaView>,
    /// The older revision still serving while this one rolls out.
    #[serde(default)]
    pub serving: Option<String>,
    /// Config keys the running revision gets, with their versions (never values).
    #[serde(default)]
    pub config: BTreeMap<String, u64>,
    /// Oldest first.
    #[serde(default)]
    pub events: Vec<EventView>,
    /// What the edge saw of it over the last five minutes (a public service only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficView>,
    /// What its folder's files made the platform do, a line each (`requirements.txt:
    /// pip install -r requirements.txt`, `Procfile: gunicorn app:app`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detected: Vec<String>,
}

/// A public service's last five minutes at the edge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrafficView {
    pub requests_per_minute: f64,
    /// Upper bounds of the latency buckets holding the median and the 99th percentile,
    /// in milliseconds (none without requests).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl ServiceDescription {
    /// A service's status and commit with what its runtime says of it.
    pub fn new(
        status: ServiceView,
        subject: Option<String>,
        author: Option<String>,
        detail: ServiceDetail,
    ) -> Self {
        ServiceDescription {
            status,
            subject,
            author,
            replicas: detail.replicas.into_iter().map(Into::into).collect(),
            serving: detail.serving,
            config: detail.config,
            events: detail.events.into_iter().map(Into::into).collect(),
            traffic: None,
            detected: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_servers_states_and_fields_still_read() {
        let json = r#"{"namespace":"a","name":"x","revision":"r","source":"repo","status":"hibernating",
            "ready":0,"desired":1,"message":"","updated_at":1,"zone":"eu"}"#;
        let view: ServiceView = serde_json::from_str(json).unwrap();
        assert_eq!(view.status, ServiceState::Unknown);
        assert_eq!(view.status.to_string(), "unknown");
    }

    #[test]
    fn every_store_and_runtime_state_keeps_its_name() {
        use micro_store::ServiceState as S;
        for s in [
            S::Building,
            S::Starting,
            S::Running,
            S::CrashLoop,
            S::Error,
            S::Stopping,
        ] {
            assert_eq!(ServiceState::from(s).as_str(), s.as_str());
        }
        let json = serde_json::to_string(&WorkloadState::CrashLoop).unwrap();
        let state: ServiceState = serde_json::from_str(&json).unwrap();
        assert_eq!(state, ServiceState::from(WorkloadState::CrashLoop));
        assert_eq!(json, "\"crashloop\"");
        // What a server before the rename says is still understood.
        let older: ServiceState = serde_json::from_str("\"crashed\"").unwrap();
        assert_eq!(older, ServiceState::CrashLoop);
    }
}
