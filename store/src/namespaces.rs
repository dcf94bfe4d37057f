use crate::{Store, StoreError, now_millis};
use sqlx::Row;

impl Store {
    /// Records a new namespace; `Exists` if it is already there.
    pub async fn create_namespace(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO namespaces (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Exists(format!("namespace {name}")));
        }
        Ok(())
    }

    pub async fn namespace_exists(&self, name: &str) -> Result<bool, StoreError> {
        if self.auth.namespace_exists(name) {
            return Ok(true);
        }
        let ticket = self.auth.ticket();
        let row = sqlx::query("SELECT 1 FROM namespaces WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if row.is_some() {
            self.auth.put_namespace(ticket, name);
        }
        Ok(row.is_some())
    }

    /// All namespaces, by name.
    pub async fn list_namespaces(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM namespaces ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").map_err(StoreError::from))
            .collect()
    }
}

impl Store {
    /// The quota overrides an admin set for `namespace` (`key=value,...`), if any.
    pub async fn quota_overrides(&self, namespace: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT overrides FROM quotas WHERE namespace = $1")
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("overrides")).transpose()?)
    }

    /// Replaces the quota overrides of `namespace`.
    pub async fn set_quota_overrides(
        &self,
        namespace: &str,
        overrides: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO quotas (namespace, overrides) VALUES ($1, $2) \
             ON CONFLICT (namespace) DO UPDATE SET overrides = excluded.overrides",
        )
        .bind(namespace)
        .bind(overrides)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
