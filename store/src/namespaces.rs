use crate::{BillingState, Store, StoreError, now_millis};
use sqlx::Row;

/// Every table holding rows of one namespace in a `namespace` column (accounts and
/// tokens aside: an admin's account may name a namespace and must stay).
const NAMESPACED_TABLES: [&str; 14] = [
    "api_keys",
    "domains",
    "config_values",
    "kv_records",
    "service_status",
    "namespace_status",
    "reconcile_history",
    "quotas",
    "links",
    "previews",
    "billing",
    "pending_signups",
    "preview_envs",
    "service_calls",
];

/// The first uid given to a namespace; every later one counts up from it.
pub const FIRST_UID: u32 = 3_000_000;

/// Marks `namespace`'s uid released, within a deletion.
async fn release_uid(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    namespace: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE namespace_uids SET released_at = $2 WHERE namespace = $1 AND released_at IS NULL",
    )
    .bind(namespace)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What [`Store::delete_namespace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Gone, with this many accounts (developers and service identities).
    Deleted { accounts: u64 },
    /// No such namespace.
    Missing,
    /// Kept: its subscription is live.
    Billed(BillingState),
}

impl Store {
    /// Records a new namespace; `Exists` if it is already there, `BeingDeleted` while a
    /// deletion of the same name is not torn down yet.
    pub async fn create_namespace(&self, name: &str) -> Result<(), StoreError> {
        // One statement: a deletion recorded in between cannot slip past the check.
        let done = sqlx::query(
            "INSERT INTO namespaces (name, created_at) SELECT $1, $2 \
             WHERE NOT EXISTS (SELECT 1 FROM namespace_deletions WHERE name = $1) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            if self.deletion_pending(name).await? {
                return Err(StoreError::BeingDeleted(name.to_owned()));
            }
            return Err(StoreError::Exists(format!("namespace {name}")));
        }
        Ok(())
    }

    /// Whether `name` was deleted and its teardown is not finished.
    pub async fn deletion_pending(&self, name: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM namespace_deletions WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Deleted namespaces whose teardown is not finished (a server stopped in between).
    pub async fn pending_deletions(&self) -> Result<Vec<String>, StoreError> {
        self.names("SELECT name FROM namespace_deletions ORDER BY name")
            .await
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

    /// Deletes a namespace and everything the store keeps for it, in one transaction:
    /// its developers' and services' accounts and their tokens, config, key-value data,
    /// statuses, history, quota, link, previews and a canceled subscription. Refused while
    /// a subscription is live (deleting would leave Stripe billing it). An admin whose
    /// account names the namespace keeps it (admins reach every namespace).
    pub async fn delete_namespace(&self, name: &str) -> Result<Deletion, StoreError> {
        // The row first: on SQLite a transaction that read before writing fails at once
        // ("database is locked") if another writer committed meanwhile, instead of waiting.
        // An early return rolls it back.
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM namespaces WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(Deletion::Missing);
        }
        let billing: Option<String> =
            sqlx::query_scalar("SELECT state FROM billing WHERE namespace = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(state) = billing {
            let state = BillingState::parse(&state)?;
            if state != BillingState::Canceled {
                return Ok(Deletion::Billed(state));
            }
        }
        let admin = crate::Role::Admin.as_str();
        sqlx::query(
            "DELETE FROM tokens WHERE account_id IN \
             (SELECT id FROM accounts WHERE namespace = $1 AND role <> $2)",
        )
        .bind(name)
        .bind(admin)
        .execute(&mut *tx)
        .await?;
        let accounts = sqlx::query("DELETE FROM accounts WHERE namespace = $1 AND role <> $2")
            .bind(name)
            .bind(admin)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for table in NAMESPACED_TABLES {
            // The table names are the constants above, never input.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE namespace = $1"
            )))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        release_uid(&mut tx, name).await?;
        sqlx::query(
            "INSERT INTO namespace_deletions (name, deleted_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.auth.forget_namespace(name);
        self.holdings.forget(name);
        Ok(Deletion::Deleted { accounts })
    }

    /// Ends a deletion once its repo and services are gone: drops what a reconcile still
    /// in flight when the namespace was deleted may have written after the deletion (its
    /// status and history), then the deletion's record, so the name can be created again.
    /// Nothing is purged if the namespace exists again.
    pub async fn purge_deleted_namespace(&self, name: &str) -> Result<(), StoreError> {
        for table in NAMESPACED_TABLES {
            // One statement each, so no transaction reads before it writes (see above).
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE namespace = $1 \
                 AND NOT EXISTS (SELECT 1 FROM namespaces WHERE name = $1)"
            )))
            .bind(name)
            .execute(&self.pool)
            .await?;
        }
        // A uid a reconcile still in flight allocated after the deletion goes too.
        sqlx::query(
            "UPDATE namespace_uids SET released_at = $2 WHERE namespace = $1 \
             AND released_at IS NULL AND NOT EXISTS (SELECT 1 FROM namespaces WHERE name = $1)",
        )
        .bind(name)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM namespace_deletions WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The uid (and gid) `namespace`'s processes run as: allocated on first use, never
    /// shared with another namespace, and never given out again once the namespace is
    /// deleted (a namespace made again under its name gets a new one). Counting up from
    /// [`FIRST_UID`], far from system and user ids.
    pub async fn namespace_uid(&self, namespace: &str) -> Result<u32, StoreError> {
        // Racing allocations: the primary key refuses a second of one uid, the partial
        // index a second live uid of one namespace; the loser reads the winner's.
        for _ in 0..16 {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT uid FROM namespace_uids WHERE namespace = $1 AND released_at IS NULL",
            )
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(uid) = live {
                return u32::try_from(uid)
                    .map_err(|_| StoreError::Corrupt(format!("uid {uid} of {namespace}")));
            }
            // `WHERE true`: without it SQLite would read `ON CONFLICT` as a join's `ON`.
            sqlx::query(
                "INSERT INTO namespace_uids (uid, namespace) \
                 SELECT COALESCE(MAX(uid), $2) + 1, $1 FROM namespace_uids WHERE true \
                 ON CONFLICT DO NOTHING",
            )
            .bind(namespace)
            .bind(i64::from(FIRST_UID) - 1)
            .execute(&self.pool)
            .await?;
        }
        Err(StoreError::Corrupt(format!(
            "no uid could be allocated for {namespace}"
        )))
    }

    /// All namespaces, by name.
    pub async fn list_namespaces(&self) -> Result<Vec<String>, StoreError> {
        self.names("SELECT name FROM namespaces ORDER BY name")
            .await
    }

    async fn names(&self, query: &'static str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(query).fetch_all(&self.pool).await?;
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
