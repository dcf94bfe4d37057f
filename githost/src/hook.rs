//! The pre-receive hook: every push to a tenant's main is admitted by the one admission
//! the controller also asks (`micro_tenant::admit`), before git accepts it. git shows our
//! stderr to the pusher.

use micro_tenant::admit::{Refused, Via, admit, admit_push};
use micro_tenant::layout;
use micro_tenant::marks::Marks;
use micro_tenant::repo::{BRANCH, SpecCache};
use std::io::BufRead;

/// Admits or refuses one push: `updates` are the lines git hands the hook (`old new
/// ref`), the repo is the one git runs the hook in (from its environment). The error is
/// the one line the pusher sees.
pub fn pre_receive(updates: impl BufRead) -> Result<(), String> {
    // open_from_env honours GIT_DIR and the quarantine object directories git sets.
    let repo =
        git2::Repository::open_from_env().map_err(|e| format!("pre-receive: {}", e.message()))?;
    let namespace = repo
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(layout::namespace_of)
        .map(str::to_owned)
        .or_else(|| {
            repo.path()
                .components()
                .filter_map(|c| c.as_os_str().to_str())
                .filter_map(layout::namespace_of)
                .next_back()
                .map(str::to_owned)
        })
        .ok_or("pre-receive: cannot tell the namespace from the repo path")?;
    // Once per push, whatever its refs (a branch, a tag, a diff preview): a suspended
    // namespace takes none, and the push's objects count against the repo's size (they
    // wait in a quarantine folder under objects/).
    let marks = Marks::read(repo.path());
    admit_push(&namespace, &marks, &[&repo.path().join("objects")]).map_err(|e| e.to_string())?;
    let specs = SpecCache::default();
    for line in updates.lines() {
        let line = line.map_err(|e| format!("pre-receive: {e}"))?;
        let mut parts = line.split_whitespace();
        let (Some(_old), Some(new), Some(refname)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if refname != BRANCH {
            continue;
        }
        let new = git2::Oid::from_str(new).map_err(|e| format!("pre-receive: {}", e.message()))?;
        admit(&repo, &namespace, new, &marks, Via::Push, &specs).map_err(|e| match e {
            Refused::Git(e) => format!("pre-receive: {}", e.message()),
            other => other.to_string(),
        })?;
    }
    Ok(())
}
