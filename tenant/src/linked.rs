//! Namespaces that follow a branch of a repo elsewhere (a forge) instead of their
//! platform-hosted one: the mirrors the platform fetches into, the copy of a fetched
//! commit into the namespace's repo. (The mark that makes the pre-receive hook send
//! pushes to where the namespace's truth now lives is kept with the others, in `marks`.)
//!
//! One mirror per (URL, credentials): namespaces that link the same repo share one fetch,
//! and a tenant never reads, through a shared mirror, what only another's token may see.

use crate::layout::BRANCH;
use crate::sources::{SourceError, SourcePolicy, fetch_refs};
use git2::{Oid, Repository};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// A remote repo and how to sign in to it.
#[derive(Clone)]
pub struct Origin {
    pub url: String,
    /// User name and token, sent as HTTP Basic credentials.
    pub login: Option<(String, String)>,
}

/// The platform's mirrors of linked repos.
pub struct Mirrors {
    root: PathBuf,
    policy: SourcePolicy,
    locks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
}

/// A check of a mirror's objects folder before its commits reach a namespace: the
/// namespace's repo-size quota.
pub type Admit<'a> = &'a dyn Fn(&Path) -> Result<(), String>;

/// What a fetch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub commit: Oid,
    /// False when the mirror already held the wanted commit and nothing was fetched.
    pub fetched: bool,
}

impl Mirrors {
    pub fn new(root: impl Into<PathBuf>, policy: SourcePolicy) -> Self {
        Mirrors {
            root: root.into(),
            policy,
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, origin: &Origin) -> PathBuf {
        let mut h = Sha256::new();
        h.update(origin.url.as_bytes());
        if let Some((user, token)) = &origin.login {
            h.update([0]);
            h.update(user.as_bytes());
            h.update([0]);
            h.update(token.as_bytes());
        }
        self.root
            .join(format!("{}.git", hex::encode(&h.finalize()[..12])))
    }

    /// Brings `refname` (`refs/heads/main`, `refs/pull/7/head`, …) of `origin` into its
    /// mirror and copies its commit into the namespace repo at `repo_dir` as `dest`.
    /// When the mirror's copy of `refname` already is `want` (another namespace linked
    /// to the same repo fetched it a moment ago), nothing is fetched.
    pub fn fetch_into(
        &self,
        origin: &Origin,
        refname: &str,
        want: Option<Oid>,
        repo_dir: &Path,
        dest: &str,
        admit: Admit<'_>,
    ) -> Result<Fetched, SourceError> {
        let url = origin.url.as_str();
        let path = self.path(origin);
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(path.clone()).or_default().clone()
        };
        let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mirror = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(|e| git(url, &e))?,
        };
        let have = mirror.refname_to_id(refname).ok();
        let fetched = want.is_none() || have != want;
        if fetched {
            fetch_refs(
                &mirror,
                url,
                &[&format!("+{refname}:{refname}")],
                Some(&self.policy),
                origin.login.clone(),
                None,
            )?;
        }
        let commit = mirror
            .refname_to_id(refname)
            .map_err(|_| SourceError::NoSuchRef {
                url: url.to_owned(),
                reference: refname.to_owned(),
            })?;
        admit(&path.join("objects")).map_err(SourceError::Refused)?;
        // What a namespace runs is a namespace's repo: anything else would replace its
        // history with a stranger's.
        if dest == BRANCH {
            let layout = mirror
                .find_commit(commit)
                .and_then(|c| c.tree())
                .map(|t| t.get_name("micro.yaml").is_some())
                .map_err(|e| git(url, &e))?;
            if !layout {
                return Err(SourceError::Refused(format!(
                    "{refname} has no micro.yaml at its top: it is not a namespace's repo (push the namespace's repo there, or link an empty branch with `micro repo link URL --seed`)"
                )));
            }
        }
        // A local fetch copies only the objects the namespace's repo lacks.
        let repo = Repository::open_bare(repo_dir).map_err(|e| git(url, &e))?;
        let local = path.to_str().ok_or_else(|| SourceError::Git {
            url: url.to_owned(),
            message: "the mirror's path is not UTF-8".into(),
        })?;
        fetch_refs(
            &repo,
            local,
            &[&format!("+{refname}:{dest}")],
            None,
            None,
            None,
        )
        .map_err(|e| {
            tracing::error!(url, error = %e, "copying from the mirror");
            SourceError::Git {
                url: url.to_owned(),
                message: "the platform could not copy the fetched commit".into(),
            }
        })?;
        Ok(Fetched { commit, fetched })
    }

    /// [`Mirrors::fetch_into`] the namespace's branch itself: what it runs follows.
    pub fn follow(
        &self,
        origin: &Origin,
        branch: &str,
        want: Option<Oid>,
        repo_dir: &Path,
        admit: Admit<'_>,
    ) -> Result<Fetched, SourceError> {
        self.fetch_into(
            origin,
            &format!("refs/heads/{branch}"),
            want,
            repo_dir,
            BRANCH,
            admit,
        )
    }
}

fn git(url: &str, e: &git2::Error) -> SourceError {
    SourceError::Git {
        url: url.to_owned(),
        message: e.message().to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, refname: &str, file: &str) -> Oid {
        let blob = repo.blob(file.as_bytes()).unwrap();
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("f", blob, 0o100644).unwrap();
        // A namespace's repo: its micro.yaml at the top.
        tb.insert("micro.yaml", blob, 0o100644).unwrap();
        let tree = repo.find_tree(tb.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let parents: Vec<_> = repo
            .refname_to_id(refname)
            .ok()
            .map(|id| repo.find_commit(id).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<_> = parents.iter().collect();
        repo.commit(Some(refname), &sig, &sig, file, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn a_branch_that_is_not_a_namespaces_repo_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let forge = Repository::init_bare(dir.path().join("forge.git")).unwrap();
        let blob = forge.blob(b"theirs").unwrap();
        let mut tb = forge.treebuilder(None).unwrap();
        tb.insert("README.md", blob, 0o100644).unwrap();
        let tree = forge.find_tree(tb.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        forge
            .commit(Some("refs/heads/main"), &sig, &sig, "theirs", &tree, &[])
            .unwrap();
        let ns = Repository::init_bare(dir.path().join("ns.git")).unwrap();
        let mirrors = Mirrors::new(
            dir.path().join("mirrors"),
            SourcePolicy {
                allow_local: true,
                forbidden: vec![],
            },
        );
        let origin = Origin {
            url: format!("file://{}", dir.path().join("forge.git").display()),
            login: None,
        };
        let err = mirrors
            .follow(&origin, "main", None, ns.path(), &|_| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("no micro.yaml"), "{err}");
        assert!(ns.refname_to_id(BRANCH).is_err(), "its history came in");
    }

    #[test]
    fn follows_a_branch_with_one_fetch_for_many_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let forge = Repository::init_bare(dir.path().join("forge.git")).unwrap();
        let first = commit(&forge, "refs/heads/main", "one");
        let a = Repository::init_bare(dir.path().join("a.git")).unwrap();
        let b = Repository::init_bare(dir.path().join("b.git")).unwrap();
        let mirrors = Mirrors::new(
            dir.path().join("mirrors"),
            SourcePolicy {
                allow_local: true,
                forbidden: vec![],
            },
        );
        let origin = Origin {
            url: format!("file://{}", dir.path().join("forge.git").display()),
            login: None,
        };
        let got = mirrors
            .follow(&origin, "main", None, a.path(), &|_| Ok(()))
            .unwrap();
        assert_eq!(
            got,
            Fetched {
                commit: first,
                fetched: true
            }
        );
        assert_eq!(a.refname_to_id(BRANCH).unwrap(), first);

        let second = commit(&forge, "refs/heads/main", "two");
        let got = mirrors
            .follow(&origin, "main", Some(second), a.path(), &|_| Ok(()))
            .unwrap();
        assert_eq!(
            got,
            Fetched {
                commit: second,
                fetched: true
            }
        );
        // The second namespace wanting the same head finds it in the mirror.
        let got = mirrors
            .follow(&origin, "main", Some(second), b.path(), &|_| Ok(()))
            .unwrap();
        assert_eq!(
            got,
            Fetched {
                commit: second,
                fetched: false
            }
        );
        assert_eq!(b.refname_to_id(BRANCH).unwrap(), second);

        // Over what the namespace may hold: refused before anything reaches it.
        let third = commit(&forge, "refs/heads/main", "three");
        let full = |_: &Path| Err("over quota".to_owned());
        let err = mirrors
            .follow(&origin, "main", Some(third), b.path(), &full)
            .unwrap_err();
        assert_eq!(err.to_string(), "over quota");
        assert_eq!(b.refname_to_id(BRANCH).unwrap(), second);

        // A branch that is not there is an error, and what the namespace had stays.
        assert!(
            mirrors
                .follow(&origin, "nope", None, b.path(), &|_| Ok(()))
                .is_err()
        );
        assert_eq!(b.refname_to_id(BRANCH).unwrap(), second);
    }

    #[test]
    fn the_platform_policy_applies_and_credentials_get_their_own_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let ns = Repository::init_bare(dir.path().join("a.git")).unwrap();
        let strict = Mirrors::new(dir.path().join("m"), SourcePolicy::default());
        let origin = Origin {
            url: format!("file://{}", dir.path().display()),
            login: None,
        };
        let err = strict
            .follow(&origin, "main", None, ns.path(), &|_| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
        let with_token = Origin {
            login: Some(("x".into(), "t".into())),
            ..origin.clone()
        };
        assert_ne!(strict.path(&origin), strict.path(&with_token));
    }
}
