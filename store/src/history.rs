use crate::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// One reconcile of one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub namespace: String,
    /// Microseconds since the epoch; orders a namespace's entries.
    pub started_us: i64,
    pub revision: String,
    /// What triggered it: `push`, `resync`, `drift`, … (comma-separated when coalesced).
    pub reason: String,
    /// `applied`, `invalid` or `failed`.
    pub result: String,
    /// The plan in one line: `1 to create, 0 to update, …`.
    pub summary: String,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub plan_ms: i64,
    pub apply_ms: i64,
}

impl Store {
    pub async fn record_reconcile(&self, h: &HistoryEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reconcile_history (namespace, started_us, revision, reason, result, summary, error, \
             duration_ms, plan_ms, apply_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (namespace, started_us) DO NOTHING",
        )
        .bind(&h.namespace)
        .bind(h.started_us)
        .bind(&h.revision)
        .bind(&h.reason)
        .bind(&h.result)
        .bind(&h.summary)
        .bind(&h.error)
        .bind(h.duration_ms)
        .bind(h.plan_ms)
        .bind(h.apply_ms)
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
        let rows = sqlx::query(
            "SELECT namespace, started_us, revision, reason, result, summary, error, duration_ms, plan_ms, apply_ms \
             FROM reconcile_history WHERE namespace = $1 ORDER BY started_us DESC LIMIT $2",
        )
        .bind(namespace)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    namespace: r.try_get("namespace")?,
                    started_us: r.try_get("started_us")?,
                    revision: r.try_get("revision")?,
                    reason: r.try_get("reason")?,
                    result: r.try_get("result")?,
                    summary: r.try_get("summary")?,
                    error: r.try_get("error")?,
                    duration_ms: r.try_get("duration_ms")?,
                    plan_ms: r.try_get("plan_ms")?,
                    apply_ms: r.try_get("apply_ms")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_is_newest_first_and_per_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        let entry = |ns: &str, t: i64, rev: &str| HistoryEntry {
            namespace: ns.into(),
            started_us: t,
            revision: rev.into(),
            reason: "push".into(),
            result: "applied".into(),
            summary: "1 to create".into(),
            error: None,
            duration_ms: 3,
            plan_ms: 1,
            apply_ms: 2,
        };
        store.record_reconcile(&entry("a", 1, "r1")).await.unwrap();
        store.record_reconcile(&entry("a", 2, "r2")).await.unwrap();
        store.record_reconcile(&entry("b", 3, "x")).await.unwrap();
        let revs: Vec<String> = store
            .history("a", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.revision)
            .collect();
        assert_eq!(revs, vec!["r2", "r1"]);
        assert_eq!(store.history("a", 1).await.unwrap().len(), 1);
    }
}
