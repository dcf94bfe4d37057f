//! The platform store: namespaces, accounts and API tokens, and the last known status of
//! every service and namespace.
//!
//! It is the only crate that speaks SQL. It knows nothing of git, HTTP or runtimes and
//! depends on no sibling crate. Queries are checked at run time (no database is needed to
//! build) and stay within the SQL that SQLite, PostgreSQL and CockroachDB share.

mod accounts;
mod config;
mod error;
mod history;
mod namespaces;
mod passwords;
mod status;
mod time;
mod tokens;

pub use accounts::{Account, Role};
pub use config::ConfigValue;
pub use error::StoreError;
pub use history::HistoryEntry;
pub use status::{NamespaceStatus, ServiceState, ServiceStatus};
pub use time::{now_micros, now_millis};

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use std::path::Path;

/// A handle on the platform store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path`, in WAL mode, and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Self::connect(&url).await?;
        sqlx::query("PRAGMA journal_mode=WAL")
            .execute(&store.pool)
            .await?;
        Ok(store)
    }

    /// Connects to the store at `url` (`sqlite://…`) and migrates it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }
}
