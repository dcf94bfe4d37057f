//! The API's one door to the blocking pool: handlers read repos and write files only
//! through [`blocking`], never on an async worker thread.

use crate::ApiError;

/// Runs `work` on the blocking pool; a panic there is an internal error.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task: {e}")))
}
