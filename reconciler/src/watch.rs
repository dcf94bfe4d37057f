//! Notices every change of a tenant branch, however it happened (a push through the
//! platform, a local `git push` into the bare repo, `git update-ref`, `git pack-refs`).
//!
//! Two inotify watches per namespace (`<ns>.git/refs/heads` and `<ns>.git` for
//! `packed-refs`) plus one on the repos root for new namespaces, instead of a recursive
//! watch that would also follow every object directory.

use crate::queue::Queue;
use micro_store::Trigger;
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Keeps the watches alive; drop it to stop watching.
pub struct RefWatcher {
    _watcher: Arc<Mutex<notify::RecommendedWatcher>>,
    watched: Arc<AtomicUsize>,
}

type Shared = (Arc<Mutex<notify::RecommendedWatcher>>, Arc<AtomicUsize>);

impl RefWatcher {
    /// Watches every `<ns>.git` under `root` now and as they appear. Needs a tokio runtime.
    pub fn start(root: &Path, queue: Queue) -> notify::Result<Self> {
        let base = root.to_owned();
        let (new_repos, mut added) = mpsc::unbounded_channel::<PathBuf>();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in &event.paths {
                if let Some(ns) = namespace_of_ref_change(&base, path) {
                    queue.trigger(ns, Trigger::Push);
                } else if matches!(
                    event.kind,
                    // New repos are built aside and renamed into place.
                    EventKind::Create(_)
                        | EventKind::Modify(notify::event::ModifyKind::Name(
                            notify::event::RenameMode::To
                        ))
                ) && is_new_repo(&base, path)
                {
                    let _ = new_repos.send(path.clone());
                }
            }
        })?;
        let shared: Shared = (Arc::new(Mutex::new(watcher)), Arc::new(AtomicUsize::new(0)));
        lock(&shared.0).watch(root, RecursiveMode::NonRecursive)?;
        shared.1.fetch_add(1, Ordering::Relaxed);
        for entry in std::fs::read_dir(root)?.flatten() {
            if is_new_repo(root, &entry.path()) {
                watch_repo(&shared, &entry.path());
            }
        }
        // The watcher cannot add watches from inside its own callback.
        let adder = shared.clone();
        tokio::spawn(
            async move {
                while let Some(repo) = added.recv().await {
                    let w = adder.clone();
                    tokio::spawn(
                        async move {
                            // The repo's folders are created just after the repo's own.
                            for _ in 0..100 {
                                if watch_repo(&w, &repo) {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            tracing::error!(repo = %repo.display(), "cannot watch new repo");
                        }
                        .instrument(tracing::Span::current()),
                    );
                }
            }
            .instrument(tracing::info_span!("ref_watch")),
        );
        Ok(RefWatcher {
            _watcher: shared.0,
            watched: shared.1,
        })
    }

    /// How many paths are watched (for tests and operators).
    pub fn watched(&self) -> usize {
        self.watched.load(Ordering::Relaxed)
    }
}

fn lock(
    w: &Mutex<notify::RecommendedWatcher>,
) -> std::sync::MutexGuard<'_, notify::RecommendedWatcher> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

fn watch_repo((watcher, watched): &Shared, repo: &Path) -> bool {
    let heads = repo.join("refs").join("heads");
    if !heads.is_dir() {
        return false;
    }
    let mut w = lock(watcher);
    let ok = w.watch(repo, RecursiveMode::NonRecursive).is_ok()
        && w.watch(&heads, RecursiveMode::NonRecursive).is_ok();
    if ok {
        watched.fetch_add(2, Ordering::Relaxed);
    }
    ok
}

fn is_new_repo(root: &Path, path: &Path) -> bool {
    path.parent() == Some(root)
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(micro_tenant::layout::namespace_of)
            .is_some()
}

/// `<root>/<ns>.git/refs/heads/...` or `<root>/<ns>.git/packed-refs` → `ns`.
fn namespace_of_ref_change<'a>(root: &Path, path: &'a Path) -> Option<&'a str> {
    let mut parts = path.strip_prefix(root).ok()?.components();
    let Some(Component::Normal(repo)) = parts.next() else {
        return None;
    };
    let ns = micro_tenant::layout::namespace_of(repo.to_str()?)?;
    match parts.next() {
        Some(Component::Normal(p)) if p == "refs" || p.to_str()?.starts_with("packed-refs") => {
            Some(ns)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ref_changes_name_a_namespace() {
        let root = Path::new("/d/repos");
        let f = |p: &str| namespace_of_ref_change(root, Path::new(p)).map(str::to_owned);
        assert_eq!(
            f("/d/repos/acme.git/refs/heads/main.lock").as_deref(),
            Some("acme")
        );
        assert_eq!(f("/d/repos/acme.git/packed-refs").as_deref(), Some("acme"));
        assert_eq!(f("/d/repos/acme.git/objects/ab/cdef"), None);
        assert_eq!(f("/d/repos/acme.git"), None);
        assert_eq!(f("/elsewhere/acme.git/refs/heads/main"), None);
    }

    #[tokio::test]
    async fn watches_two_paths_per_repo_and_sees_new_repos_and_ref_updates() {
        let dir = tempfile::tempdir().unwrap();
        let repos = micro_tenant::Repos::new(dir.path());
        repos.create("a", Path::new("/bin/true")).unwrap();
        let queue = Queue::new("reconcile");
        let watcher = RefWatcher::start(dir.path(), queue.clone()).unwrap();
        assert_eq!(watcher.watched(), 3);
        repos.create("b", Path::new("/bin/true")).unwrap();
        // A ref update in the new repo, once its watches are in place, triggers it.
        for _ in 0..200 {
            if watcher.watched() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(watcher.watched(), 5);
        let repo = git2::Repository::open_bare(repos.path("b")).unwrap();
        let head = repo.refname_to_id(micro_tenant::repo::BRANCH).unwrap();
        repo.reference("refs/heads/main", head, true, "touch")
            .unwrap();
        let (ns, reasons) = tokio::time::timeout(Duration::from_secs(10), queue.next())
            .await
            .unwrap();
        assert_eq!(ns, "b");
        assert!(reasons.contains(&Trigger::Push));
    }
}
