//! A service's state read from its Deployment: conditions, observed generation and
//! replica counts, in the words `micro status` shows.

use k8s_openapi::api::apps::v1::Deployment;
use micro_runtime::{ReplicaInfo, WorkloadState};
use serde_json::Value;

/// What a Deployment says of its service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentState {
    pub state: WorkloadState,
    pub ready: u32,
    pub desired: u32,
    pub message: String,
    /// The current template runs alone, every replica ready: the rollout is over.
    pub rolled_out: bool,
}

fn count(n: Option<i32>) -> u32 {
    u32::try_from(n.unwrap_or(0)).unwrap_or(0)
}

/// What a Deployment and its pods say of their service.
pub fn of(d: &Deployment, pods: &[Value]) -> DeploymentState {
    let mut s = of_deployment(d);
    if !matches!(s.state, WorkloadState::Starting | WorkloadState::Unhealthy) {
        return s;
    }
    // Not ready: the containers say why, if anything went wrong.
    let containers = pods.iter().flat_map(|p| {
        p["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    });
    let still = if count(d.status.as_ref().and_then(|s| s.available_replicas)) > 0 {
        "; the previous revision still serves"
    } else {
        ""
    };
    for c in containers {
        let waiting = c["state"]["waiting"]["reason"].as_str().unwrap_or_default();
        match waiting {
            "CrashLoopBackOff" => {
                s.state = WorkloadState::CrashLoop;
                s.message = format!(
                    "{}, restarted {} times{still}",
                    last_exit(&c).unwrap_or_else(|| "exited".into()),
                    c["restartCount"].as_u64().unwrap_or(0)
                );
                return s;
            }
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
                s.state = WorkloadState::Error;
                s.message = format!(
                    "its image cannot be pulled: {}{still}",
                    c["state"]["waiting"]["message"].as_str().unwrap_or(waiting)
                );
                return s;
            }
            _ => {}
        }
    }
    s
}

/// How a container's last process ended: `exited with code 1 (Error)`.
fn last_exit(container: &Value) -> Option<String> {
    let t = &container["lastState"]["terminated"];
    let code = t["exitCode"].as_i64()?;
    Some(match t["reason"].as_str() {
        Some("OOMKilled") => {
            "was killed for using more memory than its limit (resources.memory)".into()
        }
        Some(reason) => format!("exited with code {code} ({reason})"),
        None => format!("exited with code {code}"),
    })
}

/// One replica per pod, as `micro describe` shows them.
pub fn replicas(pods: &[Value]) -> Vec<ReplicaInfo> {
    pods.iter()
        .enumerate()
        .map(|(i, p)| {
            let c = &p["status"]["containerStatuses"][0];
            let waiting = c["state"]["waiting"]["reason"].as_str();
            let state = match (c["ready"].as_bool(), waiting) {
                (Some(true), _) => WorkloadState::Running,
                (_, Some("CrashLoopBackOff")) => WorkloadState::CrashLoop,
                (_, Some("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName")) => {
                    WorkloadState::Error
                }
                _ => WorkloadState::Starting,
            };
            ReplicaInfo {
                replica: i + 1,
                state,
                restarts: u32::try_from(c["restartCount"].as_u64().unwrap_or(0))
                    .unwrap_or(u32::MAX),
                last_exit: last_exit(c),
                endpoint: None,
                message: format!(
                    "pod {}{}",
                    p["metadata"]["name"].as_str().unwrap_or_default(),
                    waiting.map(|w| format!(": {w}")).unwrap_or_default()
                ),
            }
        })
        .collect()
}

fn of_deployment(d: &Deployment) -> DeploymentState {
    let desired = count(d.spec.as_ref().and_then(|s| s.replicas).or(Some(1)));
    let status = d.status.clone().unwrap_or_default();
    let ready = count(status.ready_replicas);
    let updated = count(status.updated_replicas);
    let total = count(status.replicas);
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0) >= generation;
    let stalled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    let (state, message) = if let Some(c) = stalled {
        let old = if count(status.available_replicas) > 0 {
            "; the previous revision still serves"
        } else {
            ""
        };
        (
            WorkloadState::Error,
            format!(
                "not ready in time: {}{old}",
                c.message
                    .as_deref()
                    .unwrap_or("the rollout made no progress")
            ),
        )
    } else if observed && updated >= desired && total == updated && ready < desired {
        // Rolled out, then a replica stopped passing its readiness check (the Service
        // sends it nothing until it does) or went down: the pods say which, if they can.
        (
            WorkloadState::Unhealthy,
            format!("not ready: {ready}/{desired} replicas pass their readiness check"),
        )
    } else if !observed || updated < desired || ready < desired {
        (
            WorkloadState::Starting,
            format!("{ready}/{desired} ready, {updated} of the new revision"),
        )
    } else {
        (WorkloadState::Running, String::new())
    };
    DeploymentState {
        rolled_out: state == WorkloadState::Running && total == updated,
        state,
        ready,
        desired,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn states_from_conditions_and_counts() {
        let base = json!({"metadata": {"name": "a", "generation": 2}, "spec": {"replicas": 2,
            "selector": {}, "template": {}}});
        let mut d = base.clone();
        assert_eq!(
            of(&deployment(d.clone()), &[]).state,
            WorkloadState::Starting
        );
        d["status"] = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2});
        let s = of(&deployment(d.clone()), &[]);
        assert_eq!(
            (s.state, s.ready, s.rolled_out),
            (WorkloadState::Running, 2, false)
        );
        d["status"]["replicas"] = json!(2);
        assert!(of(&deployment(d.clone()), &[]).rolled_out);
        let mut degraded = d.clone();
        degraded["status"]["readyReplicas"] = json!(1);
        let s = of(&deployment(degraded), &[]);
        assert_eq!(
            (s.state, s.message.as_str()),
            (
                WorkloadState::Unhealthy,
                "not ready: 1/2 replicas pass their readiness check"
            )
        );
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"a-1\" has timed out progressing."}]);
        let s = of(&deployment(d), &[]);
        assert_eq!(s.state, WorkloadState::Error);
        assert!(
            s.message.contains("timed out") && s.message.contains("still serves"),
            "{}",
            s.message
        );
    }

    #[test]
    fn crashing_pods_make_a_crashed_service() {
        let d = deployment(
            json!({"metadata": {"name": "a", "generation": 1}, "spec": {"replicas": 1,
            "selector": {}, "template": {}}, "status": {"observedGeneration": 1, "replicas": 1,
            "updatedReplicas": 1, "readyReplicas": 0}}),
        );
        let pod = json!({"metadata": {"name": "a-1-0"}, "status": {"containerStatuses": [{
            "name": "service", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}});
        let s = of(&d, std::slice::from_ref(&pod));
        assert_eq!(s.state, WorkloadState::CrashLoop);
        assert_eq!(s.message, "exited with code 3 (Error), restarted 4 times");
        let r = &replicas(&[pod])[0];
        assert_eq!((r.state, r.restarts), (WorkloadState::CrashLoop, 4));
        assert_eq!(r.last_exit.as_deref(), Some("exited with code 3 (Error)"));
    }
}
