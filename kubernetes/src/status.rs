//! A service's state read from its Deployment: conditions, observed generation and
//! replica counts, in the words `micro status` shows.

use k8s_openapi::api::apps::v1::Deployment;
use micro_reconciler::runtime::WorkloadState;

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

pub fn of(d: &Deployment) -> DeploymentState {
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
        assert_eq!(of(&deployment(d.clone())).state, WorkloadState::Starting);
        d["status"] = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2});
        let s = of(&deployment(d.clone()));
        assert_eq!(
            (s.state, s.ready, s.rolled_out),
            (WorkloadState::Running, 2, false)
        );
        d["status"]["replicas"] = json!(2);
        assert!(of(&deployment(d.clone())).rolled_out);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"a-1\" has timed out progressing."}]);
        let s = of(&deployment(d));
        assert_eq!(s.state, WorkloadState::Error);
        assert!(
            s.message.contains("timed out") && s.message.contains("still serves"),
            "{}",
            s.message
        );
    }
}
