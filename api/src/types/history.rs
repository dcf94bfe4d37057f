//! Reconciles on the wire: `micro history`.

use micro_store::{HistoryEntry, ReconcileResult, Trigger};
use serde::{Deserialize, Serialize};

/// One reconcile, with the commit it took up as people know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryItem {
    pub namespace: String,
    /// Microseconds since the epoch; orders a namespace's reconciles.
    pub started_us: i64,
    pub revision: String,
    /// What triggered it (several when triggers coalesced); triggers this client does
    /// not know (a newer server's) are left out.
    #[serde(default, deserialize_with = "known_triggers")]
    pub triggers: Vec<Trigger>,
    /// The commit's `Micro-Action` trailer (`rollback`), for a pushed commit that has one.
    #[serde(default)]
    pub action: Option<String>,
    /// In one word or a few, for people: the action of a pushed commit, else the
    /// triggers comma-separated.
    pub reason: String,
    pub result: ReconcileResult,
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
    /// Who pushed it: the account behind the push's token, or `forge:login` for a linked
    /// repo's pusher (absent when the platform did not see the push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_by: Option<String>,
    /// Applied, but a service this revision changed failed its rollout since (its build,
    /// or its replicas): `web: build exited with code 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_failed: Option<String>,
    /// What a later event added: the pull request a merge came from, and whether what
    /// was applied is what its preview showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl HistoryItem {
    /// A history entry with what its commit says (subject, author, action trailer).
    pub fn new(e: HistoryEntry, info: Option<micro_tenant::repo::CommitInfo>) -> Self {
        let action = info
            .as_ref()
            .and_then(|i| i.action.clone())
            .filter(|_| e.triggers.contains(&Trigger::Push));
        let reason = match &action {
            Some(action) => action.clone(),
            None => e
                .triggers
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
        };
        HistoryItem {
            namespace: e.namespace,
            started_us: e.started_us,
            revision: e.revision,
            triggers: e.triggers,
            action,
            reason,
            result: e.result,
            summary: e.summary,
            error: e.error,
            duration_ms: e.duration_ms,
            plan_ms: e.plan_ms,
            apply_ms: e.apply_ms,
            subject: info.as_ref().map(|i| i.subject.clone()),
            author: info.map(|i| i.author),
            pushed_by: None,
            rollout_failed: None,
            note: e.note,
        }
    }
}

fn known_triggers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Trigger>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    Ok(names
        .iter()
        .filter_map(|n| Trigger::ALL.into_iter().find(|t| t.as_str() == n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_servers_history_still_reads() {
        let json = r#"{"namespace":"a","started_us":1,"revision":"r","triggers":["push","teleport"],
            "reason":"push,teleport","result":"applied","summary":"","error":null,"duration_ms":1,
            "plan_ms":0,"apply_ms":1,"shiny_new_field":[1,2]}"#;
        let item: HistoryItem = serde_json::from_str(json).unwrap();
        assert_eq!(item.triggers, vec![Trigger::Push]);
        assert_eq!(item.reason, "push,teleport");
    }
}
