//! Test fixtures: a store, bare repos and an in-memory runtime, and commits made
//! straight into a namespace's branch.

use super::*;
use crate::runtime::memory::MemoryRuntime;
pub use crate::testing::{commit, fixture_with};

/// Namespace `a` with an in-memory runtime.
pub async fn fixture() -> (
    tempfile::TempDir,
    Repos,
    Arc<MemoryRuntime>,
    Arc<Controller>,
) {
    let runtime = Arc::new(MemoryRuntime::default());
    let (dir, repos, controller) = fixture_with(&["a"], runtime.clone()).await;
    (dir, repos, runtime, controller)
}

pub fn reasons(t: Trigger) -> Reasons {
    [t].into_iter().collect()
}
