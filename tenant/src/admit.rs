//! Whether a commit may become what a namespace runs: one answer, which the pre-receive
//! hook gives a push and the controller gives the branch head, so the two never
//! disagree. It weighs the spec (valid, and runnable by this platform's runtime), the
//! quota, the suspension and the link, all read once from the marks beside the repo.

use crate::desired::DesiredNamespace;
use crate::marks::{Followed, Marks};
use crate::quota::Quota;
use crate::repo::{LoadError, SpecCache, load_cached};
use crate::spec::SpecError;
use git2::{Oid, Repository};
use std::path::Path;

/// Who asks for a commit to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// A push to the platform's copy of the repo (the pre-receive hook): refused while
    /// the namespace follows a forge, and never a deletion of the branch.
    Push,
    /// The branch head as it stands (the controller), wherever it came from (a push, or
    /// a linked forge's branch fetched by the platform).
    Head,
}

/// Why a commit may not run; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The namespace is suspended: no push is taken (the line says why).
    #[error("{0}")]
    Suspended(String),
    #[error(
        "this namespace follows {} (branch {}): push there, or `micro repo unlink` to push here again",
        .0.url,
        .0.branch
    )]
    Linked(Followed),
    #[error("main cannot be deleted: it is what your namespace runs")]
    Deleted,
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// Valid, but more than the namespace may have.
    #[error("{0}")]
    Quota(String),
    #[error("git: {}", .0.message())]
    Git(#[from] git2::Error),
}

impl From<LoadError> for Refused {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Invalid(e) => Refused::Invalid(e),
            LoadError::Quota(e) => Refused::Quota(e),
            LoadError::Git(e) => Refused::Git(e),
        }
    }
}

/// A commit that may run, and on what terms.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub desired: DesiredNamespace,
    /// The namespace's quota, the one it was admitted under.
    pub quota: Quota,
    /// Suspended: it runs at zero replicas (nothing deleted, so lifting the suspension
    /// brings back exactly what ran).
    pub suspended: bool,
}

/// What a push must pass as a whole, whatever refs it updates (once per push): the
/// namespace is not suspended, and the repo with the push's objects (`objects`, git's
/// quarantine included) fits its size quota.
pub fn admit_push(namespace: &str, marks: &Marks, objects: &[&Path]) -> Result<(), Refused> {
    if let Some(line) = &marks.suspended {
        return Err(Refused::Suspended(line.clone()));
    }
    marks
        .quota
        .check_repo_size(namespace, objects)
        .map_err(|e| Refused::Quota(e.to_string()))
}

/// Whether `commit` may become what `namespace` runs, asked `via` a push or the head.
pub fn admit(
    repo: &Repository,
    namespace: &str,
    commit: Oid,
    marks: &Marks,
    via: Via,
    specs: &SpecCache,
) -> Result<Admitted, Refused> {
    if via == Via::Push {
        if let Some(f) = &marks.followed {
            return Err(Refused::Linked(f.clone()));
        }
        if commit.is_zero() {
            return Err(Refused::Deleted);
        }
    }
    let mut desired = load_cached(repo, namespace, commit, specs, marks.support)?;
    if let Some(scope) = &marks.scope {
        scope.apply(&mut desired);
    }
    marks
        .quota
        .check_desired(&desired)
        .and_then(|()| marks.quota.check_checkouts(repo, &desired))
        .map_err(|e| Refused::Quota(e.to_string()))?;
    Ok(Admitted {
        desired,
        quota: marks.quota,
        suspended: marks.suspended.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{BRANCH, Repos};

    /// Namespace `a`'s repo with `files` committed on main; its marks are `marks`.
    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repos, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repos = Repos::new(dir.path().join("repos"));
        repos.create("a", Path::new("/bin/true")).unwrap();
        let repo = Repository::open_bare(repos.path("a")).unwrap();
        let parent = repo
            .find_commit(repo.refname_to_id(BRANCH).unwrap())
            .unwrap();
        let mut builder = repo.treebuilder(Some(&parent.tree().unwrap())).unwrap();
        let mut services = repo.treebuilder(None).unwrap();
        for (name, spec) in files {
            let mut folder = repo.treebuilder(None).unwrap();
            let blob = repo.blob(spec.as_bytes()).unwrap();
            folder.insert("service.yaml", blob, 0o100644).unwrap();
            let id = folder.write().unwrap();
            services.insert(name, id, 0o040000).unwrap();
        }
        builder
            .insert("services", services.write().unwrap(), 0o040000)
            .unwrap();
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let commit = repo
            .commit(Some(BRANCH), &sig, &sig, "t", &tree, &[&parent])
            .unwrap();
        drop(tree);
        drop(parent);
        (dir, repos, commit)
    }

    #[test]
    fn a_public_service_needs_a_host_name_that_is_a_dns_label() {
        let long = "s".repeat(62);
        // `web` (public) beside the long-named service, public or not.
        let admitted = |long_public: bool| {
            let spec = format!("run: x\npublic: {long_public}\n");
            let (dir, repos, commit) =
                repo_with(&[("web", "run: x\npublic: true\n"), (long.as_str(), &spec)]);
            let repo = Repository::open_bare(repos.path("a")).unwrap();
            let marks = Marks::read(&repos.path("a"));
            let answer = admit(&repo, "a", commit, &marks, Via::Push, &SpecCache::default());
            drop(dir);
            answer
        };
        let err = admitted(true).unwrap_err().to_string();
        assert!(
            err.contains(&format!("services/{long}/service.yaml:2:")) && err.contains("63"),
            "{err}"
        );
        // The same name, private, is fine; `web-a` is a label.
        let ok = admitted(false).unwrap();
        assert!(ok.desired.services["web"].model.public);
        assert!(!ok.desired.services[&long].model.public);
    }

    #[test]
    fn the_hook_and_the_controller_get_one_answer_from_the_same_marks() {
        let (_dir, repos, commit) = repo_with(&[("web", "run: x\n"), ("api", "run: y\n")]);
        let repo = Repository::open_bare(repos.path("a")).unwrap();
        let specs = SpecCache::default();
        let mut marks = Marks::read(&repos.path("a"));
        for via in [Via::Push, Via::Head] {
            let ok = admit(&repo, "a", commit, &marks, via, &specs).unwrap();
            assert_eq!(ok.desired.services.len(), 2);
            assert!(!ok.suspended);
        }
        // Over quota: refused both ways, with the same words.
        marks.quota.set("services=1").unwrap();
        let said: Vec<String> = [Via::Push, Via::Head]
            .map(|via| {
                admit(&repo, "a", commit, &marks, via, &specs)
                    .unwrap_err()
                    .to_string()
            })
            .into();
        assert!(said[0].contains("over quota: services"), "{said:?}");
        assert_eq!(said[0], said[1]);
        marks.quota = Quota::default();
        // Suspended: a push is refused as a whole; the head runs at zero.
        marks.suspended = Some("namespace a is suspended: billing".into());
        let refused = admit_push("a", &marks, &[]).unwrap_err();
        assert_eq!(refused.to_string(), "namespace a is suspended: billing");
        assert!(
            admit(&repo, "a", commit, &marks, Via::Head, &specs)
                .unwrap()
                .suspended
        );
        marks.suspended = None;
        // Linked: pushes go to the forge; the head fetched from there runs.
        marks.followed = Some(Followed {
            url: "https://forge.test/a.git".into(),
            branch: "main".into(),
        });
        let refused = admit(&repo, "a", commit, &marks, Via::Push, &specs).unwrap_err();
        assert!(
            refused.to_string().contains("micro repo unlink"),
            "{refused}"
        );
        assert!(admit(&repo, "a", commit, &marks, Via::Head, &specs).is_ok());
        marks.followed = None;
        // A deletion of main is never a push this platform takes.
        let refused = admit(&repo, "a", Oid::ZERO_SHA1, &marks, Via::Push, &specs).unwrap_err();
        assert!(matches!(refused, Refused::Deleted), "{refused}");
    }
}
