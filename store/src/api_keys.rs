//! API keys: a namespace's keys for its services behind `auth: key` at the public edge.
//! Kept as SHA-256 digests (a key is 32 random bytes: a fast digest is enough); a key
//! is shown once, when made. Looked up on every request, so a revocation holds at once.

use crate::{Store, StoreError, now_millis};
use sha2::{Digest, Sha256};

/// Most keys one namespace may hold.
pub const MAX_KEYS: i64 = 100;

/// One key as listed: never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Store {
    /// Makes the key `name` of `namespace` and returns it (the only time it is seen).
    pub async fn create_api_key(&self, namespace: &str, name: &str) -> Result<String, StoreError> {
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE namespace = $1")
            .bind(namespace)
            .fetch_one(&self.pool)
            .await?;
        if held >= MAX_KEYS {
            return Err(StoreError::Exists(format!(
                "the most keys a namespace may hold ({MAX_KEYS}): revoke one first"
            )));
        }
        let key = format!("mk_{}", hex::encode(rand::random::<[u8; 32]>()));
        let made = sqlx::query(
            "INSERT INTO api_keys (namespace, name, digest, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (namespace, name) DO NOTHING",
        )
        .bind(namespace)
        .bind(name)
        .bind(digest(&key))
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        if made.rows_affected() == 0 {
            return Err(StoreError::Exists(format!("key {name}")));
        }
        Ok(key)
    }

    /// `namespace`'s keys, by name.
    pub async fn api_keys(&self, namespace: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, created_at FROM api_keys WHERE namespace = $1 ORDER BY name",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at)| ApiKey { name, created_at })
            .collect())
    }

    /// Revokes the key `name`; whether there was one.
    pub async fn revoke_api_key(&self, namespace: &str, name: &str) -> Result<bool, StoreError> {
        let gone = sqlx::query("DELETE FROM api_keys WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(gone.rows_affected() > 0)
    }

    /// The namespace whose key `key` is, if it is one.
    pub async fn api_key_namespace(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT namespace FROM api_keys WHERE digest = $1")
                .bind(digest(key))
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
