/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Exists(String),
    /// A namespace of this name was deleted and its teardown is not finished.
    #[error("namespace {0} is still being deleted; try again in a moment")]
    BeingDeleted(String),
    #[error("store holds an unreadable value: {0}")]
    Corrupt(String),
    /// The store named on the command line (or its file) cannot be used.
    #[error("{0}")]
    Unusable(String),
    /// Others kept winning the race for a row (say, a config version).
    #[error("store contention: {0}")]
    Contention(String),
    /// A write that would take what a namespace keeps in the store past its quota.
    #[error(
        "over quota: namespace {namespace} would keep {wanted} bytes in the store and may keep {limit}"
    )]
    StoreFull {
        namespace: String,
        wanted: i64,
        limit: i64,
    },
    /// The store was last migrated by a newer build: this one would not know its tables.
    #[error(
        "the store was written by a newer micro (its schema is at version {store}; this server knows up to {known}): run that version or a newer one; nothing was changed"
    )]
    TooNew { store: i64, known: i64 },
    /// Hashing or another CPU task failed.
    #[error("store task: {0}")]
    Task(String),
}
