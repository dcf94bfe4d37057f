//! The platform store: namespaces, accounts, API tokens and caller authentication,
//! config values with versions and ACLs, the key-value store, the last known status of
//! every service, reconcile history, links, previews, sign-ups and billing.
//!
//! It is the only crate that speaks SQL. It knows nothing of git, HTTP or runtimes and
//! depends on no sibling crate. Queries are checked at run time (no database is needed to
//! build) and stay within the SQL that SQLite, PostgreSQL and CockroachDB share.

mod accounts;
mod api_keys;
mod backup;
mod billing;
mod cache;
mod config;
mod domains;
mod environments;
mod error;
mod history;
mod holdings;
mod invites;
mod kv;
mod links;
mod namespaces;
mod passwords;
mod previews;
mod sealing;
mod signups;
mod status;
mod time;
mod tokens;

pub use accounts::{Account, Role, is_reserved_email};
pub use api_keys::{ApiKey, MAX_KEYS};
pub use backup::{Dump, TABLES, TableDump};
pub use billing::{Billing, BillingState, PendingSignup, Suspension, Unpaid};
pub use config::ConfigValue;
pub use domains::{Domain, DomainState, MAX_DOMAINS};
pub use environments::Environment;
pub use error::StoreError;
pub use history::{HistoryEntry, ReconcileResult, Trigger};
pub use invites::{Invite, MAX_INVITES};
pub use kv::{Query as KvQuery, Record};
pub use links::{Delivery, Link};
pub use namespaces::{Deletion, FIRST_UID};
pub use previews::Preview;
pub use sealing::{SealError, Sealer, open_with_passphrase, seal_with_passphrase};
pub use signups::{CodeCheck, CodeRequest, Mail};
pub use status::{NamespaceStatus, ServiceState, ServiceStatus};
pub use time::{now_micros, now_millis};
pub use tokens::{DeploymentId, LiveDeployment};

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use std::path::Path;

/// Brings the schema up to this build's, forward only; a store a newer build migrated
/// is refused before anything is written to it.
async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    let migrator = sqlx::migrate!("./migrations");
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    // No table yet: a new store.
    let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .ok()
        .flatten();
    if let Some(store) = applied.filter(|v| *v > known) {
        return Err(StoreError::TooNew { store, known });
    }
    migrator.run(pool).await?;
    Ok(())
}

/// A handle on the platform store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: &'static str,
    /// Seals config values at rest; none in tests that do not care.
    sealer: Option<std::sync::Arc<Sealer>>,
    /// Bumped on every link change, for caches of links (see `watch_links`).
    link_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// Tokens, deployments, namespaces and suspensions as last read, dropped by every
    /// change to them.
    auth: std::sync::Arc<cache::AuthCache>,
    /// What each namespace keeps in the store, against its quota.
    holdings: std::sync::Arc<holdings::Holdings>,
}

/// How long a pooled connection may sit unused before it is checked on its way out.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`, in WAL mode, and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Self::connect(&url).await?;
        // The mode sticks to the file; SQLite answers with the mode it is now in.
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&store.pool)
            .await?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unusable(format!(
                "{} cannot use write-ahead logging (journal mode stays {mode})",
                path.display()
            )));
        }
        Ok(store)
    }

    /// Connects to the store at `url` (`sqlite://…`, `postgres://…`; CockroachDB speaks
    /// the latter) and migrates it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let mut options = AnyPoolOptions::new()
            .max_connections(8)
            // sqlx pings every connection it hands out by default: a round trip to the
            // database (or, for SQLite, to the connection's thread) before every query.
            // Only a connection that sat idle can have been cut off (a restarted
            // database), so only that one is asked; one that fails is replaced quietly.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for < IDLE_BEFORE_PING {
                        return Ok(true);
                    }
                    Ok(sqlx::Connection::ping(conn).await.is_ok())
                })
            });
        if url.starts_with("sqlite") {
            // In WAL mode NORMAL never corrupts and survives any crash of the process
            // (kill -9 included); only an OS crash or power loss may drop the last commits.
            // FULL would fsync every commit, which made each deployment wait on the disk.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, "PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        migrate(&pool).await?;
        let backend = if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        };
        Ok(Self {
            pool,
            backend,
            sealer: None,
            link_changes: Default::default(),
            auth: Default::default(),
            holdings: Default::default(),
        })
    }

    /// A store that lives as long as this process: one in-memory SQLite connection that
    /// is never closed. For tests and throwaway runs.
    pub async fn memory() -> Result<Self, StoreError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await?;
        migrate(&pool).await?;
        Ok(Self {
            pool,
            backend: "memory",
            sealer: None,
            link_changes: Default::default(),
            auth: Default::default(),
            holdings: Default::default(),
        })
    }

    /// Opens the backend a `--store` / `MICRO_STORE` value names: `sqlite` (a file in
    /// `data_dir`), `memory`, or a `postgres://` URL.
    pub async fn open(spec: &str, data_dir: &Path) -> Result<Self, StoreError> {
        match spec {
            "sqlite" | "" => Self::open_sqlite(&data_dir.join("store.db")).await,
            "memory" => Self::memory().await,
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::connect(url).await
            }
            other => Err(StoreError::Unusable(format!(
                "unknown store {other:?}: use sqlite, memory or a postgres:// URL"
            ))),
        }
    }

    /// Seals config values written from now on with `sealer`, and opens sealed ones.
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(std::sync::Arc::new(sealer));
        self
    }

    /// The backend in use, for logs (never the URL: it may hold a password).
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the report
pub mod testing;
#[cfg(test)]
mod tests;
