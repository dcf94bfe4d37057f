//! Test support for this crate and the runtimes built on it: a controller with a real
//! store and bare repos, and commits made straight into a namespace's branch.

use crate::Controller;
use crate::controller::PlatformAccess;
use git2::{Repository, Signature};
use micro_runtime::Runtime;
use micro_store::Store;
use micro_tenant::repo::{self, Repos};
use std::path::Path;
use std::sync::Arc;

/// Commits `files` (path, content) on main of the namespace's bare repo.
pub fn commit(repos: &Repos, ns: &str, files: &[(&str, &str)]) -> git2::Oid {
    let repo = Repository::open_bare(repos.path(ns)).unwrap();
    let parent = repo
        .find_commit(repo.refname_to_id(repo::BRANCH).unwrap())
        .unwrap();
    let mut index = git2::Index::new().unwrap();
    index.read_tree(&parent.tree().unwrap()).unwrap();
    for (path, content) in files {
        let blob = repo.blob(content.as_bytes()).unwrap();
        let mut entry = index.get_path(Path::new("micro.yaml"), 0).unwrap();
        entry.id = blob;
        entry.path = path.as_bytes().to_vec();
        entry.file_size = content.len() as u32;
        index.add(&entry).unwrap();
    }
    let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
    let sig = Signature::now("t", "t@t").unwrap();
    repo.commit(Some(repo::BRANCH), &sig, &sig, "t", &tree, &[&parent])
        .unwrap()
}

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
