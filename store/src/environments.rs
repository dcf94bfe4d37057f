//! Preview environments' rows (one per preview namespace) and the calls seen between a
//! namespace's services, which decide what a preview runs by default.

use crate::{Store, StoreError, now_millis};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// One preview environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// The preview's own namespace (`acme-pr-7`).
    pub namespace: String,
    pub parent: String,
    /// `#7` or the branch's name.
    pub source: String,
    pub number: Option<u64>,
    /// The commit it runs (or will).
    pub head: String,
    /// `waiting`, `approval` or `running`.
    pub state: String,
    /// A pull request from a fork: runs only once approved.
    pub fork: bool,
    pub approved: bool,
    /// Its last push (or approval): it expires a TTL after.
    pub active_at: i64,
    pub created_at: i64,
}

impl Environment {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
        Ok(Environment {
            namespace: r.try_get("namespace")?,
            parent: r.try_get("parent")?,
            source: r.try_get("source")?,
            number: r
                .try_get::<Option<i64>, _>("number")?
                .and_then(|n| u64::try_from(n).ok()),
            head: r.try_get("head")?,
            state: r.try_get("state")?,
            fork: r.try_get::<i64, _>("fork")? != 0,
            approved: r.try_get::<i64, _>("approved")? != 0,
            active_at: r.try_get("active_at")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

const COLUMNS: &str =
    "namespace, parent, source, number, head, state, fork, approved, active_at, created_at";

impl Store {
    /// Writes a preview's row whole (its creation time kept when it exists).
    pub async fn put_environment(&self, e: &Environment) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO preview_envs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (namespace) DO UPDATE SET head = excluded.head, state = excluded.state, \
             fork = excluded.fork, approved = excluded.approved, active_at = excluded.active_at"
        )))
        .bind(&e.namespace)
        .bind(&e.parent)
        .bind(&e.source)
        .bind(e.number.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
        .bind(&e.head)
        .bind(&e.state)
        .bind(i64::from(e.fork))
        .bind(i64::from(e.approved))
        .bind(e.active_at)
        .bind(if e.created_at == 0 {
            now_millis()
        } else {
            e.created_at
        })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A parent's previews, oldest first.
    pub async fn environments(&self, parent: &str) -> Result<Vec<Environment>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM preview_envs WHERE parent = $1 ORDER BY created_at, namespace"
        )))
        .bind(parent)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Environment::from_row).collect()
    }

    /// Every preview, oldest first (for the expiry sweep).
    pub async fn all_environments(&self) -> Result<Vec<Environment>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM preview_envs ORDER BY created_at, namespace"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Environment::from_row).collect()
    }

    /// The preview whose namespace is `namespace`, if it is one.
    pub async fn environment(&self, namespace: &str) -> Result<Option<Environment>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM preview_envs WHERE namespace = $1"
        )))
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Environment::from_row).transpose()
    }

    /// Forgets a preview's row (one never deployed; a deployed one goes with its
    /// namespace); whether there was one.
    pub async fn delete_environment(&self, namespace: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM preview_envs WHERE namespace = $1")
            .bind(namespace)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Copies version `version` of config key `name` from `from` to `to` (a preview), as
    /// that same version; whether the parent had it.
    pub async fn copy_config_version(
        &self,
        from: &str,
        to: &str,
        name: &str,
        version: u64,
    ) -> Result<bool, StoreError> {
        let Some(value) = self.config_value(from, name, version).await? else {
            return Ok(false);
        };
        let stored = self.seal(to, name, &value.value);
        let size = i64::try_from(name.len() + stored.len()).unwrap_or(i64::MAX);
        let reserved = self.reserve(to, None, size).await?;
        let put = sqlx::query(
            "INSERT INTO config_values (namespace, name, version, value, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (namespace, name, version) DO NOTHING",
        )
        .bind(to)
        .bind(name)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(&stored)
        .bind(i64::from(value.secret))
        .bind(now_millis())
        .execute(&self.pool)
        .await;
        match put {
            Ok(done) => {
                if done.rows_affected() == 0 {
                    self.holdings.settle(to, -reserved);
                }
                Ok(true)
            }
            Err(e) => {
                self.holdings.settle(to, -reserved);
                Err(e.into())
            }
        }
    }

    /// Every secret config value `namespace` holds (a preview's copied ones), to mask
    /// them wherever the platform shows a service's own output.
    pub async fn secret_values(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, value FROM config_values WHERE namespace = $1 AND secret <> 0",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let name: String = r.try_get("name")?;
            let stored: String = r.try_get("value")?;
            let json = self.open_sealed(namespace, &name, &stored)?;
            // A JSON string is used as the string itself.
            out.push(match serde_json::from_str::<serde_json::Value>(&json) {
                Ok(serde_json::Value::String(s)) => s,
                _ => json,
            });
        }
        Ok(out)
    }

    /// Records that `caller` called `callee`, both services of `namespace`.
    pub async fn record_call(
        &self,
        namespace: &str,
        caller: &str,
        callee: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO service_calls (namespace, caller, callee, seen_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (namespace, caller, callee) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(namespace)
        .bind(caller)
        .bind(callee)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What each service of `namespace` was seen calling.
    pub async fn calls(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
        let rows = sqlx::query("SELECT caller, callee FROM service_calls WHERE namespace = $1")
            .bind(namespace)
            .fetch_all(&self.pool)
            .await?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &rows {
            out.entry(r.try_get("caller")?)
                .or_default()
                .insert(r.try_get("callee")?);
        }
        Ok(out)
    }
}
