use crate::{Store, StoreError, now_millis};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::fmt;

/// Where a service is in its life, as `micro status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Building,
    Starting,
    Running,
    Unhealthy,
    /// Its process keeps exiting and is started again with backoff.
    #[serde(rename = "crashloop", alias = "crashed")]
    CrashLoop,
    Error,
    Stopping,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Building => "building",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Unhealthy => "unhealthy",
            ServiceState::CrashLoop => "crashloop",
            ServiceState::Error => "error",
            ServiceState::Stopping => "stopping",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "building" => ServiceState::Building,
            "starting" => ServiceState::Starting,
            "running" => ServiceState::Running,
            "unhealthy" => ServiceState::Unhealthy,
            // What servers before `crashloop` wrote.
            "crashloop" | "crashed" => ServiceState::CrashLoop,
            "error" => ServiceState::Error,
            "stopping" => ServiceState::Stopping,
            other => return Err(StoreError::Corrupt(format!("service state {other:?}"))),
        })
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last known status of one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub namespace: String,
    pub name: String,
    /// The commit that last changed this service.
    pub revision: String,
    pub source: String,
    pub status: ServiceState,
    pub ready: u32,
    pub desired: u32,
    pub message: String,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

/// What the reconciler last made of a namespace's branch head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceStatus {
    pub namespace: String,
    /// The branch head last seen.
    pub head: String,
    /// The last revision applied successfully.
    pub applied: Option<String>,
    /// Why `head` is not applied, when it is not.
    pub error: Option<String>,
    pub updated_at: i64,
}

impl Store {
    pub async fn put_service_status(&self, s: &ServiceStatus) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO service_status (namespace, name, revision, source, status, ready, desired, message, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (namespace, name) DO UPDATE SET revision = excluded.revision, source = excluded.source, \
             status = excluded.status, ready = excluded.ready, desired = excluded.desired, \
             message = excluded.message, updated_at = excluded.updated_at",
        )
        .bind(&s.namespace)
        .bind(&s.name)
        .bind(&s.revision)
        .bind(&s.source)
        .bind(s.status.as_str())
        .bind(i64::from(s.ready))
        .bind(i64::from(s.desired))
        .bind(&s.message)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// After a restart of a runtime whose services died with it: nothing runs until the
    /// reconciler starts it again, and status must not say otherwise.
    pub async fn reset_service_statuses(&self, message: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE service_status SET status = $1, ready = 0, message = $2, updated_at = $3",
        )
        .bind(ServiceState::Starting.as_str())
        .bind(message)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_service_status(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM service_status WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every service of `namespace`, by name.
    pub async fn service_statuses(
        &self,
        namespace: &str,
    ) -> Result<Vec<ServiceStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT namespace, name, revision, source, status, ready, desired, message, updated_at \
             FROM service_status WHERE namespace = $1 ORDER BY name",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceStatus {
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("name")?,
                    revision: r.try_get("revision")?,
                    source: r.try_get("source")?,
                    status: ServiceState::parse(&r.try_get::<String, _>("status")?)?,
                    ready: count(r.try_get("ready")?)?,
                    desired: count(r.try_get("desired")?)?,
                    message: r.try_get("message")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn put_namespace_status(
        &self,
        namespace: &str,
        head: &str,
        applied: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO namespace_status (namespace, head, applied, error, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (namespace) DO UPDATE SET head = excluded.head, \
             applied = COALESCE(excluded.applied, namespace_status.applied), \
             error = excluded.error, updated_at = excluded.updated_at",
        )
        .bind(namespace)
        .bind(head)
        .bind(applied)
        .bind(error)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn namespace_status(
        &self,
        namespace: &str,
    ) -> Result<Option<NamespaceStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT namespace, head, applied, error, updated_at FROM namespace_status WHERE namespace = $1",
        )
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(NamespaceStatus {
                namespace: r.try_get("namespace")?,
                head: r.try_get("head")?,
                applied: r.try_get("applied")?,
                error: r.try_get("error")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }
}

fn count(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("count {v}")))
}
