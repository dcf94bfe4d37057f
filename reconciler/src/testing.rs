//! Test support for this crate and the runtimes built on it: a controller with a real
//! store and bare repos. (Commits straight into a namespace's branch are
//! `micro-testkit`'s.)

use crate::Controller;
use crate::controller::PlatformAccess;
use micro_runtime::Runtime;
use micro_store::Store;
use micro_tenant::repo::Repos;
use std::path::Path;
use std::sync::Arc;

/// Where fixtures' services are told the platform is; no certificate identities.
pub fn access() -> PlatformAccess {
    PlatformAccess {
        api_url: "https://platform.test:8081".into(),
        identity: None,
    }
}

/// The given namespaces, each with its repo, driven by `runtime`.
pub async fn fixture_with(
    namespaces: &[&str],
    runtime: Arc<dyn Runtime>,
) -> (tempfile::TempDir, Repos, Arc<Controller>) {
    fixture_with_access(namespaces, runtime, access()).await
}

/// [`fixture_with`], its deployments handed `access`.
pub async fn fixture_with_access(
    namespaces: &[&str],
    runtime: Arc<dyn Runtime>,
    access: PlatformAccess,
) -> (tempfile::TempDir, Repos, Arc<Controller>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
    let repos = Repos::new(dir.path().join("repos"));
    for ns in namespaces {
        repos.create(ns, Path::new("/bin/true")).unwrap();
        store.create_namespace(ns).await.unwrap();
    }
    let controller = Controller::new(repos.clone(), store, runtime, access);
    (dir, repos, controller)
}
