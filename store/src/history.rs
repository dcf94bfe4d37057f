use crate::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// How a reconcile ended: in history, in metrics and in the CLI, spelled once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReconcileResult {
    /// The head was applied (its plan may have been empty).
    Applied,
    /// The head does not validate; what ran before keeps running.
    Invalid,
    /// Something went wrong on the platform's side; it is retried.
    Failed,
    /// Same head and runtime state as last time: skipped (never recorded in history).
    Unchanged,
}

impl ReconcileResult {
    pub const ALL: [ReconcileResult; 4] = [
        ReconcileResult::Applied,
        ReconcileResult::Invalid,
        ReconcileResult::Failed,
        ReconcileResult::Unchanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Applied => "applied",
            ReconcileResult::Invalid => "invalid",
            ReconcileResult::Failed => "failed",
            ReconcileResult::Unchanged => "unchanged",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("reconcile result {s:?}")))
    }
}

impl std::fmt::Display for ReconcileResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a namespace is reconciled: in the queue, in history and in the CLI, spelled once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The server started.
    Startup,
    /// The branch changed (a push, or any other ref update).
    Push,
    /// The runtime saw something change under it.
    Drift,
    /// A failed reconcile is tried again.
    Retry,
    /// The periodic safety net.
    Resync,
    /// The namespace was just created.
    Created,
    /// Someone asked for a service to be rolled out again (`micro restart`).
    Restart,
    /// A linked repo was fetched (or could not be).
    Fetch,
    /// The namespace was suspended or resumed (billing, or an admin).
    Suspension,
    /// An admin deleted the namespace: what ran for it is stopped.
    Deleted,
}

impl Trigger {
    pub const ALL: [Trigger; 10] = [
        Trigger::Startup,
        Trigger::Push,
        Trigger::Drift,
        Trigger::Retry,
        Trigger::Resync,
        Trigger::Created,
        Trigger::Restart,
        Trigger::Fetch,
        Trigger::Suspension,
        Trigger::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Push => "push",
            Trigger::Drift => "drift",
            Trigger::Retry => "retry",
            Trigger::Resync => "resync",
            Trigger::Created => "created",
            Trigger::Restart => "restart",
            Trigger::Fetch => "fetch",
            Trigger::Suspension => "suspension",
            Trigger::Deleted => "deleted",
        }
    }
}

/// Triggers as one history column: `push,drift` (in order, each once).
fn join_triggers(triggers: &[Trigger]) -> String {
    triggers
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_triggers(column: &str) -> Result<Vec<Trigger>, StoreError> {
    column
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            Trigger::ALL
                .into_iter()
                .find(|k| k.as_str() == t)
                .ok_or_else(|| StoreError::Corrupt(format!("reconcile trigger {t:?}")))
        })
        .collect()
}

/// One reconcile of one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub namespace: String,
    /// Microseconds since the epoch; orders a namespace's entries.
    pub started_us: i64,
    pub revision: String,
    /// What triggered it: several when triggers coalesced.
    pub triggers: Vec<Trigger>,
    pub result: ReconcileResult,
    /// The plan in one line: `1 to create, 0 to update, …`.
    pub summary: String,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub plan_ms: i64,
    pub apply_ms: i64,
    /// What a later event added (say, the pull request a merge came from).
    pub note: Option<String>,
}

impl Store {
    pub async fn record_reconcile(&self, h: &HistoryEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reconcile_history (namespace, started_us, revision, reason, result, summary, error, \
             duration_ms, plan_ms, apply_ms, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (namespace, started_us) DO NOTHING",
        )
        .bind(&h.namespace)
        .bind(h.started_us)
        .bind(&h.revision)
        .bind(join_triggers(&h.triggers))
        .bind(h.result.as_str())
        .bind(&h.summary)
        .bind(&h.error)
        .bind(h.duration_ms)
        .bind(h.plan_ms)
        .bind(h.apply_ms)
        .bind(&h.note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds `note` to one reconcile of `namespace`.
    pub async fn annotate_history(
        &self,
        namespace: &str,
        started_us: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE reconcile_history SET note = $3 WHERE namespace = $1 AND started_us = $2",
        )
        .bind(namespace)
        .bind(started_us)
        .bind(note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A namespace's reconciles, newest first.
    pub async fn history(
        &self,
        namespace: &str,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        // The limit is written in, not bound: see `kv_read`.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT namespace, started_us, revision, reason, result, summary, error, duration_ms, plan_ms, apply_ms, note \
             FROM reconcile_history WHERE namespace = $1 ORDER BY started_us DESC LIMIT {limit}"
        )))
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    namespace: r.try_get("namespace")?,
                    started_us: r.try_get("started_us")?,
                    revision: r.try_get("revision")?,
                    triggers: parse_triggers(r.try_get("reason")?)?,
                    result: ReconcileResult::parse(r.try_get("result")?)?,
                    summary: r.try_get("summary")?,
                    error: r.try_get("error")?,
                    duration_ms: r.try_get("duration_ms")?,
                    plan_ms: r.try_get("plan_ms")?,
                    apply_ms: r.try_get("apply_ms")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }
}
