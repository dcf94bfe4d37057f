//! The pre-receive hook: every push to a tenant's main is admitted by the one admission
//! the controller also asks (`micro_tenant::admit`), before git accepts it. git shows our
//! stderr to the pusher.

use micro_tenant::admit::{Refused, Via, admit, admit_push};
use micro_tenant::desired::DesiredNamespace;
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
        let (Some(old), Some(new), Some(refname)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if refname != BRANCH {
            continue;
        }
        let new = git2::Oid::from_str(new).map_err(|e| format!("pre-receive: {}", e.message()))?;
        let admitted =
            admit(&repo, &namespace, new, &marks, Via::Push, &specs).map_err(|e| match e {
                Refused::Git(e) => format!("pre-receive: {}", e.message()),
                other => other.to_string(),
            })?;
        // What was there before, to tell which services this push makes build.
        let before = git2::Oid::from_str(old)
            .ok()
            .filter(|old| !old.is_zero())
            .and_then(|old| {
                micro_tenant::repo::load_cached(&repo, &namespace, old, &specs, marks.support).ok()
            });
        if let Some(line) = builds_line(before.as_ref(), &admitted.desired) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// One line for the pusher naming the services this push makes build (those whose files
/// or build changed and that have one), and how to follow them; `None` when none will.
fn builds_line(before: Option<&DesiredNamespace>, after: &DesiredNamespace) -> Option<String> {
    let building: Vec<&str> = after
        .services
        .values()
        .filter(|s| s.model.build.is_some())
        .filter(|s| {
            before
                .and_then(|b| b.services.get(&s.name))
                .is_none_or(|old| old.tree != s.tree || old.model.build != s.model.build)
        })
        .map(|s| s.name.as_str())
        .collect();
    let first = building.first()?;
    Some(format!(
        "building {}; follow with: micro logs {first} --build -f",
        building.join(", ")
    ))
}
