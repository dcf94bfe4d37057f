//! Changing a tenant repo the way a person would: fetch the branch, build the new tree
//! from git objects, commit, push; when someone else's push landed first, fetch again and
//! redo the change on the new head. Used by the CLI for every write verb.

use crate::layout::BRANCH;
use git2::{Cred, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository, Signature, Tree};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

const REMOTE_MAIN: &str = "refs/remotes/origin/main";
const ATTEMPTS: usize = 5;

/// What a change did.
pub enum Pushed {
    /// Nothing to commit: the tree would be the same.
    Unchanged(Oid),
    Committed(Oid),
}

/// The error an edit returns; it stops the change and comes back as [`ChangeError::Edit`].
pub type EditError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Edit(EditError),
    #[error("the repository was not found")]
    NotFound,
    #[error("the platform cannot be reached")]
    Unreachable,
    #[error("the platform refused the token")]
    Unauthorized,
    /// The pre-receive check refused it; its own words.
    #[error("push rejected: {0}")]
    Rejected(String),
    #[error("the namespace's branch kept moving; gave up after {ATTEMPTS} attempts")]
    KeptMoving,
    #[error("{path}: {error}", path = .0.display(), error = .1)]
    Io(PathBuf, std::io::Error),
    #[error("git: {message}", message = .0.message())]
    Git(#[from] git2::Error),
}

/// Checks the certificate an https remote presented (DER) for a host name: the caller's
/// own trust (a pinned CA), which replaces libgit2's.
#[derive(Clone)]
pub struct CertCheck(pub std::sync::Arc<CheckFn>);

/// (certificate DER, host) → accepted, or why not.
pub type CheckFn = dyn Fn(&[u8], &str) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for CertCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertCheck")
    }
}

/// Where a tenant repo is pushed to, and as whom.
#[derive(Clone, Debug)]
pub struct Remote {
    pub url: String,
    /// Sent as the password of user `micro`.
    pub token: Option<String>,
    /// The committer's and author's email.
    pub email: String,
    /// The branch a change starts from (the platform's: `main`).
    pub base: String,
    /// The branch a change is pushed to: the base, or a new branch for a pull request.
    pub target: String,
    /// Fetch and push with the user's own `git` and credentials (a linked repo on a
    /// forge), not libgit2 with the platform's token.
    pub user_git: bool,
    /// How the platform's certificate is checked (its pinned CA); libgit2's own trust
    /// without it.
    pub cert_check: Option<CertCheck>,
}

impl Remote {
    /// The namespace's repo on the platform: main, with the platform's token.
    pub fn platform(url: String, token: Option<String>, email: String) -> Self {
        Remote {
            url,
            token,
            email,
            base: "main".into(),
            target: "main".into(),
            user_git: false,
            cert_check: None,
        }
    }
}

/// A local bare cache of one tenant repo, used to build and push commits.
pub struct RemoteRepo {
    remote: Remote,
    repo: Repository,
    /// Held while this process uses the cache: two commands at once (say, two `config
    /// set`) take turns instead of colliding on git's lock files.
    _lock: std::fs::File,
}

impl RemoteRepo {
    /// Opens (creating if needed) the cache at `path`, locked for this process.
    pub fn open(path: &Path, remote: Remote) -> Result<Self, ChangeError> {
        let io = |p: &Path| {
            let p = p.to_owned();
            move |e| ChangeError::Io(p, e)
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let repo = match Repository::open_bare(path) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(path).map_err(io(path))?;
                Repository::init_bare(path)?
            }
        };
        Ok(RemoteRepo {
            remote,
            repo,
            _lock: lock,
        })
    }

    /// Fetches the namespace's branch and returns its head.
    pub fn fetch(&self) -> Result<Oid, ChangeError> {
        let spec = format!("+refs/heads/{}:{REMOTE_MAIN}", self.remote.base);
        if self.remote.user_git {
            crate::user_git::fetch(self.repo.path(), &self.remote.url, &spec)?;
            return Ok(self.repo.refname_to_id(REMOTE_MAIN)?);
        }
        let lines = RefCell::new(String::new());
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks(&self.remote, &lines));
        let mut remote = self.repo.remote_anonymous(&self.remote.url)?;
        remote
            .fetch(&[spec], Some(&mut opts), None)
            .map_err(classify)?;
        Ok(self.repo.refname_to_id(REMOTE_MAIN)?)
    }

    /// The bytes of `path` at `commit`, if it is a file there.
    pub fn read(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>, ChangeError> {
        let tree = self.repo.find_commit(commit)?.tree()?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        Ok(self
            .repo
            .find_blob(entry.id())
            .ok()
            .map(|b| b.content().to_vec()))
    }

    /// Applies `edit` to the head tree, commits and pushes, retrying on a moved head.
    /// `edit` returns the new root tree, or an error that stops everything.
    pub fn change(
        &self,
        message: &str,
        edit: impl Fn(&Repository, &Tree<'_>) -> Result<Oid, EditError>,
    ) -> Result<Pushed, ChangeError> {
        let sig = Signature::now("micro", &self.remote.email)?;
        for _ in 0..ATTEMPTS {
            let head = self.fetch()?;
            let parent = self.repo.find_commit(head)?;
            let tree = parent.tree()?;
            let new_tree = edit(&self.repo, &tree).map_err(ChangeError::Edit)?;
            if new_tree == tree.id() {
                return Ok(Pushed::Unchanged(head));
            }
            let new_tree = self.repo.find_tree(new_tree)?;
            let commit = self
                .repo
                .commit(None, &sig, &sig, message, &new_tree, &[&parent])?;
            match self.push(commit)? {
                PushResult::Done => return Ok(Pushed::Committed(commit)),
                PushResult::Stale => continue,
            }
        }
        Err(ChangeError::KeptMoving)
    }

    fn push(&self, commit: Oid) -> Result<PushResult, ChangeError> {
        // libgit2 pushes refs, not bare ids: point our private main at the commit first.
        self.repo.reference(BRANCH, commit, true, "micro push")?;
        let refspec = format!("{BRANCH}:refs/heads/{}", self.remote.target);
        let new_branch = self.remote.target != self.remote.base;
        if self.remote.user_git {
            return match crate::user_git::push(self.repo.path(), &self.remote.url, &refspec)? {
                None => Ok(PushResult::Done),
                Some(_) if new_branch => Err(ChangeError::Rejected(format!(
                    "branch {} already exists on {} with other commits; pick another name",
                    self.remote.target, self.remote.url
                ))),
                Some(said) if said.contains("fetch first") || said.contains("non-fast-forward") => {
                    Ok(PushResult::Stale)
                }
                Some(said) => Err(ChangeError::Rejected(said)),
            };
        }
        let refused = match push_refspec(&self.repo, &self.remote, &refspec) {
            // libgit2 refuses before sending when the branch it is shown holds a commit
            // it has not fetched: someone pushed since our fetch.
            Err(e) if e.message().contains("not present locally") => return Ok(PushResult::Stale),
            Err(e) => return Err(classify(e)),
            Ok(None) => return Ok(PushResult::Done),
            Ok(Some(refused)) => refused,
        };
        // Someone else's push landed first (git says so in several ways, depending on
        // whether it noticed before or during the ref update): redo on the new head.
        let moved = [
            "fast-forward",
            "fetch first",
            "stale",
            "cannot lock ref",
            "failed to lock",
        ];
        if moved
            .iter()
            .any(|m| refused.status.contains(m) || refused.said.contains(m))
        {
            return Ok(PushResult::Stale);
        }
        Err(ChangeError::Rejected(refused.reason()))
    }
}

/// Token credentials for the platform, and the remote's side-band lines collected.
fn callbacks<'c>(remote: &Remote, remote_lines: &'c RefCell<String>) -> RemoteCallbacks<'c> {
    let token = remote.token.clone().unwrap_or_default();
    let mut cb = RemoteCallbacks::new();
    let mut tries = 0;
    cb.credentials(move |_, _, _| {
        tries += 1;
        if tries > 1 {
            return Err(git2::Error::from_str("the platform refused the token"));
        }
        Cred::userpass_plaintext("micro", &token)
    });
    if let Some(CertCheck(check)) = remote.cert_check.clone() {
        cb.certificate_check(move |cert, host| {
            let der = cert
                .as_x509()
                .map(|x| x.data().to_vec())
                .ok_or_else(|| git2::Error::from_str("the platform sent no X.509 certificate"))?;
            check(&der, host)
                .map(|()| git2::CertificateCheckStatus::CertificateOk)
                .map_err(|e| git2::Error::from_str(&e))
        });
    }
    cb.sideband_progress(move |data| {
        remote_lines
            .borrow_mut()
            .push_str(&String::from_utf8_lossy(data));
        true
    });
    cb
}

/// Where `micro diff` puts a commit of a clone for the platform to plan: a ref of its
/// own, outside the branches, removed again by [`unpublish`].
pub const PREVIEW_REFS: &str = "refs/micro/previews/";

/// Where a linked repo's pull request `number` is previewed (`micro diff --pr N`).
pub fn pull_preview_ref(number: u64) -> String {
    format!("{PREVIEW_REFS}pull-{number}")
}

/// Pushes `commit` of a local `repo` (a clone) to `refname` on the platform, so the
/// platform can read it; the desired state is never rendered by a client.
pub fn publish(
    repo: &Repository,
    remote: &Remote,
    commit: Oid,
    refname: &str,
) -> Result<(), ChangeError> {
    push_spec(repo, remote, &format!("+{commit}:{refname}"))
}

/// Deletes `refname` on the platform.
pub fn unpublish(repo: &Repository, remote: &Remote, refname: &str) -> Result<(), ChangeError> {
    push_spec(repo, remote, &format!(":{refname}"))
}

fn push_spec(repo: &Repository, remote: &Remote, refspec: &str) -> Result<(), ChangeError> {
    match push_refspec(repo, remote, refspec).map_err(classify)? {
        None => Ok(()),
        Some(refused) => Err(ChangeError::Rejected(refused.reason())),
    }
}

/// A ref update the remote refused: git's status and what the remote said.
struct Refused {
    status: String,
    said: String,
}

impl Refused {
    /// The pre-receive check speaks on the side band: its words, not git's.
    fn reason(self) -> String {
        self.said
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map_or(self.status, str::to_owned)
    }
}

/// Pushes `refspec` to the platform with the token; `Some` if the ref was refused.
fn push_refspec(
    repo: &Repository,
    remote: &Remote,
    refspec: &str,
) -> Result<Option<Refused>, git2::Error> {
    let lines = RefCell::new(String::new());
    let rejected = RefCell::new(None::<String>);
    {
        let mut cb = callbacks(remote, &lines);
        cb.push_update_reference(|_, status| {
            if let Some(status) = status {
                *rejected.borrow_mut() = Some(status.to_owned());
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(cb);
        repo.remote_anonymous(&remote.url)?
            .push(&[refspec], Some(&mut opts))?;
    }
    Ok(rejected.into_inner().map(|status| Refused {
        status,
        said: lines.into_inner(),
    }))
}

enum PushResult {
    Done,
    Stale,
}

/// What a transport error means for the user.
fn classify(e: git2::Error) -> ChangeError {
    let msg = e.message();
    if msg.contains("404") || msg.contains("not found") {
        ChangeError::NotFound
    } else if msg.contains("Connection refused")
        || msg.contains("failed to connect")
        || msg.contains("failed to resolve")
    {
        ChangeError::Unreachable
    } else if msg.contains("401")
        || msg.contains("refused the token")
        || msg.contains("authentication")
    {
        ChangeError::Unauthorized
    } else {
        ChangeError::Git(e)
    }
}

/// Sets (or with `None` removes) the entry at `path` below `tree`; returns the new root.
/// Folders left empty are removed, as git would.
pub fn set_path(
    repo: &Repository,
    tree: Option<&Tree<'_>>,
    path: &[&str],
    value: Option<(Oid, i32)>,
) -> Result<Oid, git2::Error> {
    let mut builder = repo.treebuilder(tree)?;
    match path {
        [] => return Err(git2::Error::from_str("empty path")),
        [name] => match value {
            Some((id, mode)) => {
                builder.insert(name, id, mode)?;
            }
            None => {
                if builder.get(name)?.is_some() {
                    builder.remove(name)?;
                }
            }
        },
        [name, rest @ ..] => {
            let sub = match builder.get(name)? {
                Some(e) if e.kind() == Some(git2::ObjectType::Tree) => {
                    Some(repo.find_tree(e.id())?)
                }
                _ => None,
            };
            let new_sub = set_path(repo, sub.as_ref(), rest, value)?;
            if repo.find_tree(new_sub)?.is_empty() {
                if builder.get(name)?.is_some() {
                    builder.remove(name)?;
                }
            } else {
                builder.insert(name, new_sub, 0o040000)?;
            }
        }
    }
    builder.write()
}

/// Whether `services/<name>` exists in `tree`.
pub fn has_service(tree: &Tree<'_>, name: &str) -> bool {
    tree.get_path(Path::new(&crate::layout::service_dir(name)))
        .is_ok()
}

/// A folder holding just `service.yaml` with `content`.
pub fn spec_only_tree(repo: &Repository, content: &[u8]) -> Result<Oid, git2::Error> {
    let mut builder = repo.treebuilder(None)?;
    builder.insert("service.yaml", repo.blob(content)?, 0o100644)?;
    builder.write()
}

/// The newest commit (from the fetched branch head, within the last thousand) that
/// changed what `path` holds.
pub fn last_change(repo: &Repository, path: &str) -> Option<Oid> {
    let at = |commit: &git2::Commit<'_>| {
        commit
            .tree()
            .ok()
            .and_then(|t| t.get_path(Path::new(path)).ok().map(|e| e.id()))
    };
    let mut commit = repo
        .find_commit(repo.refname_to_id(REMOTE_MAIN).ok()?)
        .ok()?;
    let now = at(&commit);
    for _ in 0..1000 {
        let Ok(parent) = commit.parent(0) else {
            return Some(commit.id());
        };
        if at(&parent) != now {
            return Some(commit.id());
        }
        commit = parent;
    }
    None
}
