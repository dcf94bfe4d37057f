use crate::{Store, StoreError, now_millis};
use sqlx::Row;

/// One stored version of a config value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValue {
    pub version: u64,
    /// JSON text.
    pub value: String,
    pub secret: bool,
}

/// Attempts at allocating a version before giving up (only under heavy contention).
const ATTEMPTS: usize = 20;

impl Store {
    /// Stores `value` (JSON text) as the next version of `name`; returns that version.
    /// Concurrent writers each get their own version.
    pub async fn put_config(
        &self,
        namespace: &str,
        name: &str,
        value: &str,
        secret: bool,
    ) -> Result<u64, StoreError> {
        for _ in 0..ATTEMPTS {
            let inserted = sqlx::query(
                "INSERT INTO config_values (namespace, name, version, value, secret, created_at) \
                 SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5 FROM config_values \
                 WHERE namespace = $1 AND name = $2 \
                 ON CONFLICT (namespace, name, version) DO NOTHING RETURNING version",
            )
            .bind(namespace)
            .bind(name)
            .bind(value)
            .bind(i64::from(secret))
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await;
            match inserted {
                Ok(Some(row)) => {
                    let v: i64 = row.try_get("version")?;
                    return u64::try_from(v)
                        .map_err(|_| StoreError::Corrupt(format!("version {v}")));
                }
                // Lost the race for this version number (or the database said busy): again.
                Ok(None) | Err(sqlx::Error::Database(_)) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Corrupt(format!(
            "could not allocate a version of {name}"
        )))
    }

    /// One version of a value, if stored.
    pub async fn config_value(
        &self,
        namespace: &str,
        name: &str,
        version: u64,
    ) -> Result<Option<ConfigValue>, StoreError> {
        let row = sqlx::query(
            "SELECT version, value, secret FROM config_values WHERE namespace = $1 AND name = $2 AND version = $3",
        )
        .bind(namespace)
        .bind(name)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ConfigValue {
                version: u64::try_from(r.try_get::<i64, _>("version")?).unwrap_or(0),
                value: r.try_get("value")?,
                secret: r.try_get::<i64, _>("secret")? != 0,
            })
        })
        .transpose()
    }
}
