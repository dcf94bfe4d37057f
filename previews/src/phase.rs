//! Where a preview stands, from its row, its namespace's status and its services'
//! statuses: pure, so what a comment, a commit status and `micro previews` say is one
//! answer.

use micro_store::{Environment, NamespaceStatus, ServiceState, ServiceStatus};

/// A preview's state as people read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// More previews are open than the parent allows: `ahead` wait before it.
    Waiting {
        ahead: usize,
        max: u32,
    },
    /// A fork's pull request: nothing runs until someone of the namespace approves it.
    Approval,
    Building,
    Ready,
    /// Why, and the failing service's last log lines (secrets masked).
    Failed {
        reason: String,
        logs: Vec<String>,
    },
}

impl Phase {
    /// `waiting`, `approval`, `building`, `ready` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Waiting { .. } => "waiting",
            Phase::Approval => "approval",
            Phase::Building => "building",
            Phase::Ready => "ready",
            Phase::Failed { .. } => "failed",
        }
    }

    /// One line for a list or a commit status.
    pub fn describe(&self) -> String {
        match self {
            Phase::Waiting { ahead, max } => format!(
                "waiting: {max} previews are open (the most this namespace allows); {ahead} ahead of this one"
            ),
            Phase::Approval => {
                "from a fork: planned, not deployed until approved (`micro previews approve N`)"
                    .into()
            }
            Phase::Building => "building".into(),
            Phase::Ready => "ready".into(),
            Phase::Failed { reason, .. } => format!("failed: {reason}"),
        }
    }
}

/// A preview as shown: its row, its phase, its URLs and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub env: Environment,
    pub phase: Phase,
    /// (service, URL) of its public services.
    pub urls: Vec<(String, String)>,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// The phase of a running preview (its namespace exists): building until its head is
/// applied and every service runs, failed when the head does not validate or a service
/// fails.
pub fn of_running(
    env: &Environment,
    namespace: Option<&NamespaceStatus>,
    services: &[ServiceStatus],
) -> Result<Phase, String> {
    let Some(status) = namespace else {
        return Ok(Phase::Building);
    };
    if status.head == env.head
        && let Some(error) = &status.error
        && status.applied.as_deref() != Some(env.head.as_str())
    {
        return Ok(Phase::Failed {
            reason: error.clone(),
            logs: Vec::new(),
        });
    }
    if status.applied.as_deref() != Some(env.head.as_str()) {
        return Ok(Phase::Building);
    }
    if let Some(bad) = services.iter().find(|s| {
        matches!(
            s.status,
            ServiceState::CrashLoop | ServiceState::Error | ServiceState::Unhealthy
        )
    }) {
        // The caller fetches its logs.
        return Err(bad.name.clone());
    }
    let ready = services
        .iter()
        .all(|s| s.status == ServiceState::Running && s.ready >= s.desired);
    Ok(if ready { Phase::Ready } else { Phase::Building })
}

/// `text` with every one of `secrets` (values of at least 4 characters) masked.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "••••");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(head: &str) -> Environment {
        Environment {
            namespace: "a-pr-1".into(),
            parent: "a".into(),
            source: "#1".into(),
            number: Some(1),
            head: head.into(),
            state: "running".into(),
            fork: false,
            approved: false,
            active_at: 0,
            created_at: 0,
        }
    }

    fn ns(head: &str, applied: Option<&str>, error: Option<&str>) -> NamespaceStatus {
        NamespaceStatus {
            namespace: "a-pr-1".into(),
            head: head.into(),
            applied: applied.map(Into::into),
            error: error.map(Into::into),
            updated_at: 0,
        }
    }

    fn svc(name: &str, status: ServiceState, ready: u32) -> ServiceStatus {
        ServiceStatus {
            namespace: "a-pr-1".into(),
            name: name.into(),
            revision: "h".into(),
            source: String::new(),
            status,
            ready,
            desired: 1,
            message: String::new(),
            updated_at: 0,
        }
    }

    #[test]
    fn building_until_the_head_is_applied_and_every_service_is_ready() {
        let e = env("h2");
        assert_eq!(of_running(&e, None, &[]), Ok(Phase::Building));
        let old = ns("h2", Some("h1"), None);
        assert_eq!(of_running(&e, Some(&old), &[]), Ok(Phase::Building));
        let applied = ns("h2", Some("h2"), None);
        let starting = [
            svc("web", ServiceState::Running, 1),
            svc("api", ServiceState::Starting, 0),
        ];
        assert_eq!(
            of_running(&e, Some(&applied), &starting),
            Ok(Phase::Building)
        );
        let up = [
            svc("web", ServiceState::Running, 1),
            svc("api", ServiceState::Running, 1),
        ];
        assert_eq!(of_running(&e, Some(&applied), &up), Ok(Phase::Ready));
        let crashing = [svc("web", ServiceState::CrashLoop, 0)];
        assert_eq!(of_running(&e, Some(&applied), &crashing), Err("web".into()));
        let invalid = ns("h2", Some("h1"), Some("services/web/service.yaml:1:1: bad"));
        assert!(matches!(
            of_running(&e, Some(&invalid), &[]),
            Ok(Phase::Failed { reason, .. }) if reason.contains("service.yaml:1:1")
        ));
    }

    #[test]
    fn secrets_are_masked_in_log_lines() {
        let line = "connecting with sk_test_abc123 to db";
        assert_eq!(
            mask(line, &["sk_test_abc123".into(), "x".into()]),
            "connecting with •••• to db"
        );
    }
}
