//! Notices every change of a tenant branch, however it happened (a push through the
//! platform, a local `git push` into the bare repo, `git update-ref`), by watching refs.

use crate::queue::{Queue, Trigger};
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::{Component, Path};

/// Watches `root` (the repos dir) and triggers the namespace whose refs changed.
/// Keep the returned watcher alive for as long as triggers are wanted.
pub fn watch_repos(root: &Path, queue: Queue) -> notify::Result<notify::RecommendedWatcher> {
    let base = root.to_owned();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if let Some(ns) = namespace_of_ref_change(&base, path) {
                queue.trigger(ns, Trigger::Push);
            }
        }
    })?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// `<root>/<ns>.git/refs/...` or `<root>/<ns>.git/packed-refs` → `ns`.
fn namespace_of_ref_change<'a>(root: &Path, path: &'a Path) -> Option<&'a str> {
    let mut parts = path.strip_prefix(root).ok()?.components();
    let Some(Component::Normal(repo)) = parts.next() else {
        return None;
    };
    let ns = repo.to_str()?.strip_suffix(".git")?;
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
}
