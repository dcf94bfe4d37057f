//! Commits made straight into a repo, as a push would leave them: the one way tests and
//! benchmarks put files into a tenant's repo without the CLI.

use git2::{Oid, Repository, Signature};
use micro_tenant::Repos;

/// Commits `files` (path, content) on top of `refname` (a first commit when it does not
/// exist yet), keeping every other file; the new commit.
pub fn commit_files(repo: &Repository, refname: &str, files: &[(&str, &str)]) -> Oid {
    let parent = repo
        .refname_to_id(refname)
        .ok()
        .map(|id| repo.find_commit(id).unwrap());
    let mut index = git2::Index::new().unwrap();
    if let Some(parent) = &parent {
        index.read_tree(&parent.tree().unwrap()).unwrap();
    }
    for (path, content) in files {
        let blob = repo.blob(content.as_bytes()).unwrap();
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: u32::try_from(content.len()).unwrap(),
            id: blob,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).unwrap();
    }
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    let sig = Signature::now("test", "test@example.com").unwrap();
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let message = format!(
        "Change {}",
        files.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
    );
    repo.commit(Some(refname), &sig, &sig, &message, &tree, &parents)
        .unwrap()
}

/// [`commit_files`] on the branch a namespace runs, in its bare repo under `repos`.
pub fn commit_to_namespace(repos: &Repos, namespace: &str, files: &[(&str, &str)]) -> Oid {
    let repo = Repository::open_bare(repos.path(namespace)).unwrap();
    commit_files(&repo, micro_tenant::repo::BRANCH, files)
}
