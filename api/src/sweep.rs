//! Housekeeping on a timer: expired key-value records leave the store (and stop
//! counting against their namespace's quota).

use micro_store::Store;
use std::time::Duration;

/// How often expired records are swept: until then they count against the quota (never
/// returned to anyone).
pub const KV_SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Sweeps expired key-value records every `every`, for as long as it runs.
pub async fn sweep_kv(store: Store, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match store.sweep_kv().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "swept expired key-value records"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired key-value records"),
        }
    }
}
