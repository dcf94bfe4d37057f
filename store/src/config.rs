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
        // The version is only known once inserted, so the value is sealed to its place
        // without it; the row is written whole in one statement.
        let stored = self.seal(namespace, name, value);
        // Every version is kept, so each counts against the namespace's store quota.
        let size = i64::try_from(name.len() + stored.len()).unwrap_or(i64::MAX);
        let reserved = self.reserve(namespace, None, size).await?;
        let put = self
            .put_config_version(namespace, name, &stored, secret)
            .await;
        if put.is_err() {
            self.holdings.settle(namespace, -reserved);
        }
        put
    }

    async fn put_config_version(
        &self,
        namespace: &str,
        name: &str,
        stored: &str,
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
            .bind(stored)
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
        Err(StoreError::Contention(format!(
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
            let stored: String = r.try_get("value")?;
            Ok(ConfigValue {
                version: u64::try_from(r.try_get::<i64, _>("version")?).unwrap_or(0),
                value: self.open_sealed(namespace, name, &stored)?,
                secret: r.try_get::<i64, _>("secret")? != 0,
            })
        })
        .transpose()
    }

    pub(crate) fn seal(&self, namespace: &str, name: &str, value: &str) -> String {
        match &self.sealer {
            Some(s) => s.seal(&format!("{namespace}/{name}"), value),
            None => value.to_owned(),
        }
    }

    pub(crate) fn open_sealed(
        &self,
        namespace: &str,
        name: &str,
        stored: &str,
    ) -> Result<String, StoreError> {
        match &self.sealer {
            Some(s) => s
                .open(&format!("{namespace}/{name}"), stored)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None if crate::sealing::is_sealed(stored) => Err(StoreError::Corrupt(
                "a sealed config value, and the store was opened without its key".into(),
            )),
            None => Ok(stored.to_owned()),
        }
    }
}
