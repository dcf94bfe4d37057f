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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_count_up_per_key_and_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        assert_eq!(
            store
                .put_config("a", "db.password", "\"one\"", true)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .put_config("a", "db.password", "\"two\"", true)
                .await
                .unwrap(),
            2
        );
        assert_eq!(store.put_config("a", "other", "1", false).await.unwrap(), 1);
        assert_eq!(
            store
                .put_config("b", "db.password", "\"b\"", false)
                .await
                .unwrap(),
            1
        );
        let v1 = store
            .config_value("a", "db.password", 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((v1.value.as_str(), v1.secret), ("\"one\"", true));
        assert!(
            store
                .config_value("a", "db.password", 3)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .config_value("c", "db.password", 1)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn concurrent_writers_each_get_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put_config("a", "k", &i.to_string(), false)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut versions: Vec<u64> = futures_join(writers).await;
        versions.sort_unstable();
        assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    }

    async fn futures_join(handles: Vec<tokio::task::JoinHandle<u64>>) -> Vec<u64> {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
