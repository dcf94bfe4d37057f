use crate::{Store, StoreError, now_millis};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// One record of a namespace's key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub value: String,
    /// Milliseconds since the epoch; never in the past when returned.
    pub expires_at: Option<i64>,
}

/// Which records a read or list covers.
#[derive(Clone, Debug, Default)]
pub struct Query<'a> {
    pub key: &'a str,
    /// `key` is a prefix, not the whole key.
    pub prefix: bool,
    pub limit: i64,
    pub offset: i64,
}

/// `prefix%`, with LIKE's own characters escaped (`\\` is the escape).
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// Writes (replaces) a record; `ttl_ms` makes it expire.
    pub async fn kv_write(
        &self,
        ns: &str,
        table: &str,
        key: &str,
        value: &str,
        ttl_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO kv_records (namespace, tbl, name, value, expires_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (namespace, tbl, name) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at, updated_at = excluded.updated_at",
        )
        .bind(ns)
        .bind(table)
        .bind(key)
        .bind(value)
        .bind(ttl_ms.map(|t| now.saturating_add(t)))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Live records matching `q`, by key. Expired records are never returned.
    pub async fn kv_read(
        &self,
        ns: &str,
        table: &str,
        q: &Query<'_>,
    ) -> Result<Vec<Record>, StoreError> {
        let (op, pattern) = if q.prefix {
            ("LIKE $3 ESCAPE '\\'", like_prefix(q.key))
        } else {
            ("= $3", q.key.to_owned())
        };
        // LIMIT and OFFSET are written into the statement, not bound: SQLite reads a bound
        // LIMIT while planning, and so compiles the statement again every time one is
        // bound. They are integers: nothing can be injected through them.
        let sql = format!(
            "SELECT name, value, expires_at FROM kv_records WHERE namespace = $1 AND tbl = $2 AND name {op} \
             AND (expires_at IS NULL OR expires_at > $4) ORDER BY name LIMIT {} OFFSET {}",
            q.limit, q.offset
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ns)
            .bind(table)
            .bind(pattern)
            .bind(now_millis())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Record {
                    key: r.try_get("name")?,
                    value: r.try_get("value")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Deletes a record; `false` if there was no live one.
    pub async fn kv_delete(&self, ns: &str, table: &str, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM kv_records WHERE namespace = $1 AND tbl = $2 AND name = $3 \
             AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(ns)
        .bind(table)
        .bind(key)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether `table` has ever been written in `ns` (and still has a live record).
    pub async fn kv_table_exists(&self, ns: &str, table: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM kv_records WHERE namespace = $1 AND tbl = $2 \
             AND (expires_at IS NULL OR expires_at > $3) LIMIT 1",
        )
        .bind(ns)
        .bind(table)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
