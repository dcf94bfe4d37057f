//! The one door to the blocking pool. Git, the filesystem, `/proc` and cgroupfs are
//! touched from async code only through [`blocking`], never on an async worker thread
//! (one stalled tenant's checkout or a cgroup that takes a second to empty would stall
//! every namespace's reconciles and API calls sharing that thread).

/// Runs `work` on the blocking pool and waits for it.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(work).await
}

/// Runs `work` on the blocking pool without waiting for it.
pub fn in_background(work: impl FnOnce() + Send + 'static) {
    drop(tokio::task::spawn_blocking(work));
}
