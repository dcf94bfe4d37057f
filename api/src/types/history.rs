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
    /// What triggered it (several when triggers coalesced).
    #[serde(default)]
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
}

impl HistoryItem {
    /// A history entry with what its commit says (subject, author, action trailer).
    pub fn new(e: HistoryEntry, info: Option<micro_reconciler::repo::CommitInfo>) -> Self {
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
        }
    }
}
