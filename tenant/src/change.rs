//! Changing a tenant repo the way a person would: fetch the branch, build the new tree
//! from git objects, commit, push; when someone else's push landed first, fetch again and
//! redo the change on the new head. A write verb of the CLI says what it changes as data
//! (a [`Change`]: which paths, what content, what must hold of the head) and hands it to
//! [`RemoteRepo::apply`], the one place that commits, pushes and retries.

use crate::layout::BRANCH;
use git2::{Cred, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository, Signature, Tree};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

const REMOTE_MAIN: &str = "refs/remotes/origin/main";
const ATTEMPTS: usize = 5;

/// A change to a tenant repo, as data.
pub struct Change<'a> {
    /// The commit message.
    pub message: String,
    pub edits: Vec<Edit<'a>>,
    /// What must hold of the branch head, checked on every attempt before the edits.
    pub expect: Vec<Expect>,
}

/// One path of a [`Change`], and what it becomes.
pub enum Edit<'a> {
    /// A folder already written into the cache ([`RemoteRepo::write_folder`]).
    Tree { path: String, tree: Oid },
    /// A file with these bytes.
    File { path: String, bytes: Vec<u8> },
    /// A folder holding only `service.yaml`, with these bytes.
    SpecOnly { path: String, spec: Vec<u8> },
    /// Removed (folders left empty go too).
    Remove { path: String },
    /// As it was at `revision` (removed if it did not exist then); `None`: the whole tree.
    AsAt {
        path: Option<String>,
        revision: String,
    },
    /// A file rewritten from what the head holds (`None`: it is not there); an error
    /// stops the change.
    Rewrite { path: String, with: Rewrite<'a> },
}

/// How an [`Edit::Rewrite`] makes a file's new bytes from its bytes at the head; the
/// head is there to read other files.
pub type Rewrite<'a> = Box<dyn Fn(Option<&[u8]>, &Head<'_>) -> Result<Vec<u8>, EditError> + 'a>;

/// What must hold of the head for a [`Change`] to apply.
pub enum Expect {
    /// `path` exists; else the change stops with `missing`, the user's words for it.
    Exists { path: String, missing: String },
    /// `path` still holds `tree`, which this client put there in commit `since` (or
    /// already holds what the change writes): nobody else's work is overwritten.
    Unchanged {
        path: String,
        tree: String,
        since: String,
    },
}

/// The branch head a change is made on, to read from.
pub struct Head<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
}

impl Head<'_> {
    /// The bytes of the file at `path`, if there is one.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let entry = self.tree.get_path(Path::new(path)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        Some(blob.content().to_vec())
    }

    /// The names of the folders inside `path`.
    pub fn folders(&self, path: &str) -> Vec<String> {
        let Some(tree) = self
            .tree
            .get_path(Path::new(path))
            .ok()
            .and_then(|e| self.repo.find_tree(e.id()).ok())
        else {
            return Vec::new();
        };
        tree.iter()
            .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_owned))
            .collect()
    }
}

/// The commit that last changed a path: its id and subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastChange {
    pub commit: String,
    pub subject: String,
}

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
    /// An [`Expect::Exists`] did not hold: its words.
    #[error("{0}")]
    Missing(String),
    /// An [`Expect::Unchanged`] did not hold: `path` changed after commit `since`, last
    /// in `by` when it can be told.
    #[error("{path} changed since {since}")]
    ChangedSince {
        path: String,
        since: String,
        by: Option<LastChange>,
    },
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

/// Whether the service folder `now` is the one `then` (a tree id) but for its spec's
/// `replicas` line: a `micro scale` since, which a deploy from the folder keeps rather
/// than counts as someone else's work.
fn differ_in_replicas_only(r: &Repository, then: &str, now: Oid) -> bool {
    let (Ok(then), Ok(now)) = (
        Oid::from_str(then).and_then(|id| r.find_tree(id)),
        r.find_tree(now),
    ) else {
        return false;
    };
    let entries = |t: &Tree<'_>| -> Vec<(String, Oid)> {
        t.iter()
            .map(|e| (String::from_utf8_lossy(e.name_bytes()).into_owned(), e.id()))
            .collect()
    };
    let (a, b) = (entries(&then), entries(&now));
    if a.len() != b.len() {
        return false;
    }
    let without_replicas = |id: Oid| -> Option<String> {
        let blob = r.find_blob(id).ok()?;
        Some(
            String::from_utf8_lossy(blob.content())
                .lines()
                .filter(|l| !l.starts_with("replicas:"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    a.iter().zip(&b).all(|((name_a, id_a), (name_b, id_b))| {
        name_a == name_b
            && (id_a == id_b
                || (name_a == "service.yaml"
                    && without_replicas(*id_a).is_some()
                    && without_replicas(*id_a) == without_replicas(*id_b)))
    })
}

/// What [`RemoteRepo::with_check`] asks of a commit (in the cache `repo`).
pub type Check = Box<dyn Fn(&Repository, Oid) -> Result<(), ChangeError> + Send + Sync>;

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
    /// Asked of every commit before it is pushed (the platform's own admission, for a
    /// commit that goes to a forge first).
    check: Option<Check>,
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
            check: None,
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

    /// The bare cache's folder (for the user's own git).
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// The bytes of `path` in the tree `tree` (one [`RemoteRepo::write_folder`] wrote), if
    /// the cache has it and it is a file there.
    pub fn read_in_tree(&self, tree: &str, path: &str) -> Option<Vec<u8>> {
        let tree = self.repo.find_tree(Oid::from_str(tree).ok()?).ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        Some(self.repo.find_blob(entry.id()).ok()?.content().to_vec())
    }

    /// Writes the files of a local folder into the cache ([`crate::folder`]'s rules), once
    /// for every attempt of a change: the tree's id, for an [`Edit::Tree`].
    pub fn write_folder(&self, dir: &Path) -> Result<Oid, ChangeError> {
        crate::folder::tree(&self.repo, dir).map_err(|e| ChangeError::Edit(Box::new(e)))
    }

    /// Asks `check` of every commit before it is pushed: an error stops the change and
    /// nothing is pushed.
    pub fn with_check(mut self, check: Check) -> Self {
        self.check = Some(check);
        self
    }

    /// Makes `change` on the branch head, commits and pushes it; when someone else's
    /// push landed first, makes it again on the new head (its expectations checked
    /// again), up to a few times.
    pub fn apply(&self, change: &Change<'_>) -> Result<Pushed, ChangeError> {
        let sig = Signature::now("micro", &self.remote.email)?;
        for _ in 0..ATTEMPTS {
            let head = self.fetch()?;
            let parent = self.repo.find_commit(head)?;
            let tree = parent.tree()?;
            let new_tree = self.edited(change, &tree)?;
            if new_tree == tree.id() {
                return Ok(Pushed::Unchanged(head));
            }
            let new_tree = self.repo.find_tree(new_tree)?;
            let commit =
                self.repo
                    .commit(None, &sig, &sig, &change.message, &new_tree, &[&parent])?;
            if let Some(check) = &self.check {
                check(&self.repo, commit)?;
            }
            match self.push(commit)? {
                PushResult::Done => return Ok(Pushed::Committed(commit)),
                PushResult::Stale => continue,
            }
        }
        Err(ChangeError::KeptMoving)
    }

    /// The root tree `change` makes of `head`, once its expectations hold.
    fn edited(&self, change: &Change<'_>, head: &Tree<'_>) -> Result<Oid, ChangeError> {
        let r = &self.repo;
        let at = |tree: &Tree<'_>, path: &str| tree.get_path(Path::new(path)).ok();
        for expect in &change.expect {
            match expect {
                Expect::Exists { path, missing } => {
                    if at(head, path).is_none() {
                        return Err(ChangeError::Missing(missing.clone()));
                    }
                }
                Expect::Unchanged { path, tree, since } => {
                    let now = at(head, path).map(|e| e.id());
                    let writes = change.edits.iter().find_map(|e| match e {
                        Edit::Tree { path: p, tree } if p == path => Some(*tree),
                        _ => None,
                    });
                    if let Some(now) = now
                        && now.to_string() != *tree
                        && Some(now) != writes
                        && !differ_in_replicas_only(r, tree, now)
                    {
                        return Err(ChangeError::ChangedSince {
                            path: path.clone(),
                            since: since.clone(),
                            by: last_change(r, path),
                        });
                    }
                }
            }
        }
        let mut root = head.id();
        for edit in &change.edits {
            let current = r.find_tree(root)?;
            let (path, value) = match edit {
                Edit::Tree { path, tree } => (path.as_str(), Some((*tree, FOLDER))),
                Edit::File { path, bytes } => (path.as_str(), Some((r.blob(bytes)?, FILE))),
                Edit::SpecOnly { path, spec } => {
                    (path.as_str(), Some((spec_only_tree(r, spec)?, FOLDER)))
                }
                Edit::Remove { path } => (path.as_str(), None),
                Edit::AsAt { path, revision } => {
                    let then = r
                        .revparse_single(revision)
                        .and_then(|o| o.peel_to_tree())
                        .map_err(|_| {
                            ChangeError::Missing(format!("revision {revision} not found"))
                        })?;
                    let Some(path) = path else {
                        root = then.id();
                        continue;
                    };
                    let value = at(&then, path).map(|e| (e.id(), e.filemode()));
                    (path.as_str(), value)
                }
                Edit::Rewrite { path, with } => {
                    let view = Head {
                        repo: r,
                        tree: current.clone(),
                    };
                    let bytes =
                        with(view.read(path).as_deref(), &view).map_err(ChangeError::Edit)?;
                    (path.as_str(), Some((r.blob(&bytes)?, FILE)))
                }
            };
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            root = set_path(r, Some(&current), &parts, value)?;
        }
        Ok(root)
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

/// Git's modes of a folder and of a file.
const FOLDER: i32 = 0o040000;
const FILE: i32 = 0o100644;

/// Sets (or with `None` removes) the entry at `path` below `tree`; returns the new root.
/// Folders left empty are removed, as git would.
fn set_path(
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

/// A folder holding just `service.yaml` with `content`.
fn spec_only_tree(repo: &Repository, content: &[u8]) -> Result<Oid, git2::Error> {
    let mut builder = repo.treebuilder(None)?;
    builder.insert("service.yaml", repo.blob(content)?, 0o100644)?;
    builder.write()
}

/// The newest commit (from the fetched branch head, within the last thousand) that
/// changed what `path` holds.
fn last_change(repo: &Repository, path: &str) -> Option<LastChange> {
    let commit = last_change_id(repo, path)?.to_string();
    let info = crate::repo::commit_info(repo, &commit)?;
    Some(LastChange {
        commit,
        subject: info.subject,
    })
}

fn last_change_id(repo: &Repository, path: &str) -> Option<Oid> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare "platform" repo with one commit holding `files`, and a client's cache of it.
    fn platform(files: &[(&str, &str)]) -> (tempfile::TempDir, RemoteRepo) {
        let dir = tempfile::tempdir().unwrap();
        let origin = Repository::init_bare(dir.path().join("origin.git")).unwrap();
        let mut root = origin.treebuilder(None).unwrap().write().unwrap();
        for (path, content) in files {
            let parts: Vec<&str> = path.split('/').collect();
            let blob = origin.blob(content.as_bytes()).unwrap();
            let tree = origin.find_tree(root).unwrap();
            root = set_path(&origin, Some(&tree), &parts, Some((blob, FILE))).unwrap();
        }
        let sig = Signature::now("t", "t@example.com").unwrap();
        let tree = origin.find_tree(root).unwrap();
        origin
            .commit(Some("refs/heads/main"), &sig, &sig, "first", &tree, &[])
            .unwrap();
        let a = client(dir.path(), "a");
        (dir, a)
    }

    fn client(dir: &Path, name: &str) -> RemoteRepo {
        let url = dir.join("origin.git").display().to_string();
        let remote = Remote::platform(url, None, "me@example.com".into());
        RemoteRepo::open(&dir.join(format!("cache-{name}")), remote).unwrap()
    }

    fn read(repo: &RemoteRepo, path: &str) -> Option<String> {
        let head = repo.fetch().unwrap();
        repo.read(head, path)
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    fn committed(pushed: Pushed) -> Oid {
        match pushed {
            Pushed::Committed(id) => id,
            Pushed::Unchanged(_) => panic!("nothing was committed"),
        }
    }

    #[test]
    fn a_change_is_data_applied_on_the_head_it_finds() {
        let (dir, a) = platform(&[("services/web/service.yaml", "run: x\n")]);
        let b = client(dir.path(), "b");
        // A writes a folder; B, which has not fetched since, rewrites another file from
        // what the head holds: the push lands on A's commit, nothing of A's is lost.
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("service.yaml"), "run: y\n").unwrap();
        let tree = a.write_folder(folder.path()).unwrap();
        committed(
            a.apply(&Change {
                message: "Run api".into(),
                edits: vec![Edit::Tree {
                    path: "services/api".into(),
                    tree,
                }],
                expect: Vec::new(),
            })
            .unwrap(),
        );
        let services = std::cell::RefCell::new(Vec::new());
        committed(
            b.apply(&Change {
                message: "Config".into(),
                edits: vec![Edit::Rewrite {
                    path: "config.yaml".into(),
                    with: Box::new(|before, head| {
                        assert!(before.is_none());
                        *services.borrow_mut() = head.folders("services");
                        Ok(b"db: {version: 1}\n".to_vec())
                    }),
                }],
                expect: Vec::new(),
            })
            .unwrap(),
        );
        assert_eq!(*services.borrow(), ["api", "web"]);
        assert_eq!(read(&a, "services/api/service.yaml").unwrap(), "run: y\n");
        assert_eq!(read(&a, "config.yaml").unwrap(), "db: {version: 1}\n");
        // The same change again changes nothing.
        let again = b.apply(&Change {
            message: "Config".into(),
            edits: vec![Edit::File {
                path: "config.yaml".into(),
                bytes: b"db: {version: 1}\n".to_vec(),
            }],
            expect: Vec::new(),
        });
        assert!(matches!(again, Ok(Pushed::Unchanged(_))));
    }

    #[test]
    fn an_expectation_that_no_longer_holds_stops_the_change_and_says_who_moved_it() {
        let (dir, a) = platform(&[("services/web/service.yaml", "run: x\n")]);
        let b = client(dir.path(), "b");
        let head = a.fetch().unwrap();
        let tree_then = a
            .repo
            .find_commit(head)
            .unwrap()
            .tree()
            .unwrap()
            .get_path(Path::new("services/web"))
            .unwrap()
            .id()
            .to_string();
        // Someone else edits services/web after this client deployed it.
        committed(
            b.apply(&Change {
                message: "Greet differently".into(),
                edits: vec![Edit::SpecOnly {
                    path: "services/web".into(),
                    spec: b"run: z\n".to_vec(),
                }],
                expect: Vec::new(),
            })
            .unwrap(),
        );
        let mine = Change {
            message: "Run web".into(),
            edits: vec![Edit::File {
                path: "services/web/service.yaml".into(),
                bytes: b"run: mine\n".to_vec(),
            }],
            expect: vec![Expect::Unchanged {
                path: "services/web".into(),
                tree: tree_then,
                since: head.to_string(),
            }],
        };
        match a.apply(&mine) {
            Err(ChangeError::ChangedSince { path, since, by }) => {
                assert_eq!(path, "services/web");
                assert_eq!(since, head.to_string());
                assert_eq!(by.unwrap().subject, "Greet differently");
            }
            _ => panic!("the change went through over someone else's"),
        }
        assert_eq!(read(&a, "services/web/service.yaml").unwrap(), "run: z\n");
        // A removal of what is not there says the caller's words and changes nothing.
        let gone = a.apply(&Change {
            message: "Kill api".into(),
            edits: vec![Edit::Remove {
                path: "services/api".into(),
            }],
            expect: vec![Expect::Exists {
                path: "services/api".into(),
                missing: "service api not found".into(),
            }],
        });
        assert!(matches!(gone, Err(ChangeError::Missing(m)) if m == "service api not found"));
        // And the folder goes back to how it was at the first commit.
        committed(
            a.apply(&Change {
                message: "Rollback web".into(),
                edits: vec![Edit::AsAt {
                    path: Some("services/web".into()),
                    revision: head.to_string(),
                }],
                expect: Vec::new(),
            })
            .unwrap(),
        );
        assert_eq!(read(&a, "services/web/service.yaml").unwrap(), "run: x\n");
    }
}
