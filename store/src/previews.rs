//! The previews of linked repos' pull requests: what each would do, as last computed.

use crate::{Store, StoreError, now_millis};
use sqlx::Row;

/// One pull request's last preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    pub namespace: String,
    pub number: u64,
    pub head: String,
    /// `1 to create, …`, empty when the head does not validate.
    pub summary: String,
    /// `planned`, `invalid` or `failed`.
    pub result: String,
    pub error: Option<String>,
    /// The plan's fingerprint, to tell whether a merge applied what was previewed.
    pub fingerprint: Option<String>,
    /// Set once the pull request merged: the commit the merge made.
    pub merge_commit: Option<String>,
    pub updated_at: i64,
}

impl Store {
    pub async fn put_preview(&self, p: &Preview) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO previews (namespace, number, head, summary, result, error, fingerprint, \
             merge_commit, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (namespace, number) DO UPDATE SET head = excluded.head, \
             summary = excluded.summary, result = excluded.result, error = excluded.error, \
             fingerprint = excluded.fingerprint, merge_commit = excluded.merge_commit, \
             updated_at = excluded.updated_at",
        )
        .bind(&p.namespace)
        .bind(i64::try_from(p.number).unwrap_or(i64::MAX))
        .bind(&p.head)
        .bind(&p.summary)
        .bind(&p.result)
        .bind(&p.error)
        .bind(&p.fingerprint)
        .bind(&p.merge_commit)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A namespace's previews, by number.
    pub async fn previews(&self, namespace: &str) -> Result<Vec<Preview>, StoreError> {
        let rows = sqlx::query(
            "SELECT namespace, number, head, summary, result, error, fingerprint, merge_commit, updated_at \
             FROM previews WHERE namespace = $1 ORDER BY number",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Preview {
                    namespace: r.try_get("namespace")?,
                    number: u64::try_from(r.try_get::<i64, _>("number")?).unwrap_or(0),
                    head: r.try_get("head")?,
                    summary: r.try_get("summary")?,
                    result: r.try_get("result")?,
                    error: r.try_get("error")?,
                    fingerprint: r.try_get("fingerprint")?,
                    merge_commit: r.try_get("merge_commit")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Forgets a pull request's preview (it closed); whether there was one.
    pub async fn delete_preview(&self, namespace: &str, number: u64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM previews WHERE namespace = $1 AND number = $2")
            .bind(namespace)
            .bind(i64::try_from(number).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets every preview of a namespace (it was unlinked).
    pub async fn delete_previews(&self, namespace: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM previews WHERE namespace = $1")
            .bind(namespace)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
