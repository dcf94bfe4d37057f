//! Which checkouts live deployments run from. During a rollout two revisions of a
//! service run side by side, so an old checkout may be removed only once nothing uses it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone, Default)]
pub(crate) struct InUse {
    dirs: Arc<Mutex<HashMap<PathBuf, usize>>>,
}

/// Held by a deployment for as long as it runs from `dir`.
pub(crate) struct Lease {
    dirs: Arc<Mutex<HashMap<PathBuf, usize>>>,
    dir: PathBuf,
}

impl InUse {
    pub fn lease(&self, dir: &Path) -> Lease {
        *self
            .dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(dir.to_owned())
            .or_default() += 1;
        Lease {
            dirs: self.dirs.clone(),
            dir: dir.to_owned(),
        }
    }

    /// Removes the folders in `base` that no deployment uses. Holding the lock while
    /// removing keeps a deployment from leasing a folder being removed.
    pub fn remove_unused(&self, base: &Path) {
        let dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Ok(entries) = std::fs::read_dir(base) {
            for entry in entries.flatten() {
                if !dirs.contains_key(&entry.path()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = dirs.get_mut(&self.dir) {
            *n -= 1;
            if *n == 0 {
                dirs.remove(&self.dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_nobody_runs_from_are_removed() {
        let base = tempfile::tempdir().unwrap();
        let (old, new, stale) = (
            base.path().join("old"),
            base.path().join("new"),
            base.path().join("stale"),
        );
        for d in [&old, &new, &stale] {
            std::fs::create_dir(d).unwrap();
        }
        let in_use = InUse::default();
        let old_lease = in_use.lease(&old);
        let _new_lease = in_use.lease(&new);
        in_use.remove_unused(base.path());
        assert!(old.exists() && new.exists() && !stale.exists());
        drop(old_lease);
        in_use.remove_unused(base.path());
        assert!(!old.exists() && new.exists());
    }
}
