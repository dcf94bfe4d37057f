//! Test fixtures: a store, bare repos and an in-memory runtime, and commits made
//! straight into a namespace's branch.

use super::*;
pub use crate::testing::{fixture_with, fixture_with_access};
use micro_runtime::memory::MemoryRuntime;
pub use micro_testkit::commit_to_namespace as commit;

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

/// Namespace `a` with an in-memory runtime, its deployments given certificates by `issuer`.
pub async fn fixture_issuing(
    issuer: IdentityIssuer,
) -> (
    tempfile::TempDir,
    Repos,
    Arc<MemoryRuntime>,
    Arc<Controller>,
) {
    let runtime = Arc::new(MemoryRuntime::default());
    let access = PlatformAccess {
        identity: Some(issuer),
        ..crate::testing::access()
    };
    let (dir, repos, controller) = fixture_with_access(&["a"], runtime.clone(), access).await;
    (dir, repos, runtime, controller)
}

pub fn reasons(t: Trigger) -> Reasons {
    [t].into_iter().collect()
}
