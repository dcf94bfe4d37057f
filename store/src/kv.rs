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

/// What a record counts against its namespace's store quota.
fn record_size(table: &str, key: &str, value: &str) -> i64 {
    i64::try_from(table.len() + key.len() + value.len()).unwrap_or(i64::MAX)
}

impl Store {
    /// Writes (replaces) a record; `ttl_ms` makes it expire. `StoreFull` if it would
    /// take the namespace past its limit (a write that shrinks the store never is).
    pub async fn kv_write(
        &self,
        ns: &str,
        table: &str,
        key: &str,
        value: &str,
        ttl_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let size = record_size(table, key, value);
        let reserved = self.reserve(ns, Some((table, key)), size).await?;
        let replaced = sqlx::query_scalar::<_, i64>(
            "INSERT INTO kv_records (namespace, tbl, name, value, expires_at, updated_at, size, replaced_size) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0) \
             ON CONFLICT (namespace, tbl, name) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at, updated_at = excluded.updated_at, \
             replaced_size = kv_records.size, size = excluded.size \
             RETURNING replaced_size",
        )
        .bind(ns)
        .bind(table)
        .bind(key)
        .bind(value)
        .bind(ttl_ms.map(|t| now.saturating_add(t)))
        .bind(now)
        .bind(size)
        .fetch_one(&self.pool)
        .await;
        match replaced {
            Ok(replaced) => {
                self.holdings.settle(ns, size - replaced - reserved);
                Ok(())
            }
            Err(e) => {
                self.holdings.settle(ns, -reserved);
                Err(e.into())
            }
        }
    }

    /// Forgets every expired record; how many went.
    pub async fn sweep_kv(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "DELETE FROM kv_records WHERE expires_at IS NOT NULL AND expires_at <= $1 \
             RETURNING namespace, size",
        )
        .bind(now_millis())
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let (ns, size): (String, i64) = (row.try_get("namespace")?, row.try_get("size")?);
            self.holdings.settle(&ns, -size);
        }
        Ok(rows.len() as u64)
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
        let size: Option<i64> = sqlx::query_scalar(
            "DELETE FROM kv_records WHERE namespace = $1 AND tbl = $2 AND name = $3 \
             AND (expires_at IS NULL OR expires_at > $4) RETURNING size",
        )
        .bind(ns)
        .bind(table)
        .bind(key)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(size) = size {
            self.holdings.settle(ns, -size);
        }
        Ok(size.is_some())
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
