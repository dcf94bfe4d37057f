//! Code from other repositories: resolving what a branch or tag points at, and a bare
//! cache repo per URL (shared by every service and namespace that uses it) from which a
//! pinned commit is checked out.

use crate::repo::write_tree;
use git2::{Direction, Oid, Repository};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {message}")]
    Git { url: String, message: String },
    #[error("{url}: no branch or tag named {reference:?}")]
    NoSuchRef { url: String, reference: String },
    #[error("{url}: commit {commit} not found (was it force-pushed away?)")]
    NoSuchCommit { url: String, commit: String },
    #[error("{url}@{commit}: no folder {path:?}")]
    NoSuchPath {
        url: String,
        commit: String,
        path: String,
    },
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
}

fn git_err(url: &str) -> impl Fn(git2::Error) -> SourceError + '_ {
    move |e| SourceError::Git {
        url: url.to_owned(),
        message: e.message().to_owned(),
    }
}

/// A ref resolved to the commit it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub commit: Oid,
    /// The branch or tag to follow later; `None` when a commit id was asked for.
    pub track: Option<String>,
}

/// What `reference` (a branch, a tag, a commit id; default: the remote's HEAD branch)
/// points at in the repo at `url`, asked of the remote without fetching.
pub fn resolve(url: &str, reference: Option<&str>) -> Result<Resolved, SourceError> {
    if let Some(r) = reference
        && r.len() == 40
        && let Ok(commit) = Oid::from_str(r)
    {
        return Ok(Resolved {
            commit,
            track: None,
        });
    }
    let mut remote = git2::Remote::create_detached(url).map_err(git_err(url))?;
    let conn = remote
        .connect_auth(Direction::Fetch, None, None)
        .map_err(git_err(url))?;
    let heads: Vec<(String, Oid, Option<String>)> = conn
        .list()
        .map_err(git_err(url))?
        .iter()
        .map(|h| {
            (
                h.name().to_owned(),
                h.oid(),
                h.symref_target().map(str::to_owned),
            )
        })
        .collect();
    let find = |name: &str| {
        heads
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, oid, _)| *oid)
    };
    match reference {
        None => {
            let (_, oid, target) = heads.iter().find(|(n, _, _)| n == "HEAD").ok_or_else(|| {
                SourceError::NoSuchRef {
                    url: url.to_owned(),
                    reference: "HEAD".into(),
                }
            })?;
            let track = target
                .as_deref()
                .and_then(|t| t.strip_prefix("refs/heads/"))
                .map(str::to_owned);
            Ok(Resolved {
                commit: *oid,
                track,
            })
        }
        Some(r) => {
            // A tag's peeled entry names the commit, not the tag object.
            let commit = find(&format!("refs/heads/{r}"))
                .or_else(|| find(&format!("refs/tags/{r}^{{}}")))
                .or_else(|| find(&format!("refs/tags/{r}")))
                .ok_or_else(|| SourceError::NoSuchRef {
                    url: url.to_owned(),
                    reference: r.to_owned(),
                })?;
            Ok(Resolved {
                commit,
                track: Some(r.to_owned()),
            })
        }
    }
}

/// Bare cache repos, one per source URL.
pub struct SourceCache {
    root: PathBuf,
    locks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
}

impl SourceCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SourceCache {
            root: root.into(),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn repo_path(&self, url: &str) -> PathBuf {
        let digest = hex::encode(&Sha256::digest(url.as_bytes())[..12]);
        self.root.join(format!("{digest}.git"))
    }

    /// Opens the cache for `url` with `commit` in it, fetching branches and tags if it is
    /// not there yet. Callers hold the URL's lock.
    fn with_commit<T>(
        &self,
        url: &str,
        commit: Oid,
        f: impl FnOnce(&Repository) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        let path = self.repo_path(url);
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(path.clone()).or_default().clone()
        };
        let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(git_err(url))?,
        };
        if repo.find_commit(commit).is_err() {
            let mut remote = repo.remote_anonymous(url).map_err(git_err(url))?;
            remote
                .fetch(
                    &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                    None,
                    None,
                )
                .map_err(git_err(url))?;
            if repo.find_commit(commit).is_err() {
                return Err(SourceError::NoSuchCommit {
                    url: url.to_owned(),
                    commit: commit.to_string(),
                });
            }
        }
        f(&repo)
    }

    /// Writes the files of `path` (default: the whole repo) at `commit` into `dest`.
    pub fn checkout(
        &self,
        url: &str,
        commit: Oid,
        path: Option<&str>,
        dest: &Path,
    ) -> Result<(), SourceError> {
        self.with_commit(url, commit, |repo| {
            let tree = subtree(repo, url, commit, path)?;
            Ok(write_tree(repo, &tree, dest)?)
        })
    }

    /// The bytes of `file` inside `path` at `commit`, if it exists.
    pub fn read_file(
        &self,
        url: &str,
        commit: Oid,
        path: Option<&str>,
        file: &str,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        self.with_commit(url, commit, |repo| {
            let tree = subtree(repo, url, commit, path)?;
            let Some(entry) = tree.get_name(file) else {
                return Ok(None);
            };
            let blob = repo.find_blob(entry.id()).map_err(git_err(url))?;
            Ok(Some(blob.content().to_vec()))
        })
    }
}

fn subtree<'r>(
    repo: &'r Repository,
    url: &str,
    commit: Oid,
    path: Option<&str>,
) -> Result<git2::Tree<'r>, SourceError> {
    let root = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(git_err(url))?;
    match path.filter(|p| !p.is_empty() && *p != ".") {
        None => Ok(root),
        Some(p) => root
            .get_path(Path::new(p))
            .and_then(|e| repo.find_tree(e.id()))
            .map_err(|_| SourceError::NoSuchPath {
                url: url.to_owned(),
                commit: commit.to_string(),
                path: p.to_owned(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Signature;

    /// A repo with a branch `main` (two commits) and a tag `v1` on the first.
    fn origin(dir: &Path) -> (String, Oid, Oid) {
        let repo = Repository::init_bare(dir).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        let commit = |content: &str, parents: &[&git2::Commit<'_>]| {
            let mut app = repo.treebuilder(None).unwrap();
            app.insert("main.py", repo.blob(content.as_bytes()).unwrap(), 0o100644)
                .unwrap();
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("app", app.write().unwrap(), 0o040000).unwrap();
            let tree = repo.find_tree(root.write().unwrap()).unwrap();
            repo.commit(Some("refs/heads/main"), &sig, &sig, content, &tree, parents)
                .unwrap()
        };
        let first = commit("v1", &[]);
        let first_commit = repo.find_commit(first).unwrap();
        repo.tag("v1", first_commit.as_object(), &sig, "v1", false)
            .unwrap();
        let second = commit("v2", &[&first_commit]);
        (format!("file://{}", dir.display()), first, second)
    }

    #[test]
    fn resolves_branches_tags_head_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (url, first, second) = origin(&dir.path().join("origin.git"));
        assert_eq!(
            resolve(&url, None).unwrap(),
            Resolved {
                commit: second,
                track: Some("main".into())
            }
        );
        assert_eq!(resolve(&url, Some("main")).unwrap().commit, second);
        assert_eq!(
            resolve(&url, Some("v1")).unwrap(),
            Resolved {
                commit: first,
                track: Some("v1".into())
            }
        );
        let pinned = resolve(&url, Some(&first.to_string())).unwrap();
        assert_eq!(
            pinned,
            Resolved {
                commit: first,
                track: None
            }
        );
        assert!(matches!(
            resolve(&url, Some("nope")),
            Err(SourceError::NoSuchRef { .. })
        ));
    }

    #[test]
    fn checks_out_a_folder_at_a_commit_from_a_shared_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (url, first, second) = origin(&dir.path().join("origin.git"));
        let cache = SourceCache::new(dir.path().join("cache"));
        cache
            .checkout(&url, first, Some("app"), &dir.path().join("a"))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/main.py")).unwrap(),
            "v1"
        );
        cache
            .checkout(&url, second, Some("app"), &dir.path().join("b"))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b/main.py")).unwrap(),
            "v2"
        );
        assert_eq!(
            cache
                .read_file(&url, second, Some("app"), "main.py")
                .unwrap()
                .unwrap(),
            b"v2"
        );
        assert!(
            cache
                .read_file(&url, second, Some("app"), "nope")
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            cache.checkout(&url, second, Some("missing"), &dir.path().join("c")),
            Err(SourceError::NoSuchPath { .. })
        ));
        let unknown = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert!(matches!(
            cache.checkout(&url, unknown, None, &dir.path().join("d")),
            Err(SourceError::NoSuchCommit { .. })
        ));
        // One cache repo for the URL, whatever the commits.
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
            1
        );
    }
}
