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
    let updates: Vec<(String, String, String)> = updates
        .lines()
        .map(|line| line.map_err(|e| format!("pre-receive: {e}")))
        .collect::<Result<Vec<String>, String>>()?
        .iter()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
            ))
        })
        .collect();
    check_refs(&repo, &marks, &updates)?;
    for (old, new, refname) in &updates {
        let (old, new, refname) = (old.as_str(), new.as_str(), refname.as_str());
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

/// After a push that deleted a branch or a tag: what only it held is pruned, so the
/// repo's size (its quota) is what it holds now. Objects younger than a few minutes stay,
/// whatever holds them: a push running beside this one may not have set its refs yet.
pub fn post_receive(updates: impl BufRead) -> Result<(), String> {
    let lines: Vec<String> = updates.lines().map_while(Result::ok).collect();
    let zero = |id: &str| id.bytes().all(|b| b == b'0');
    // Who pushed what the namespace runs: the account behind the push's token.
    if let Some(new) = lines.iter().find_map(|l| {
        let mut parts = l.split_whitespace();
        let (_, new, refname) = (parts.next()?, parts.next()?, parts.next()?);
        (refname == BRANCH && !zero(new)).then(|| new.to_owned())
    }) && let (Ok(dir), Ok(who)) = (
        std::env::var("GIT_DIR").map(std::path::PathBuf::from),
        std::env::var("REMOTE_USER"),
    ) && let Err(e) = micro_tenant::marks::record_pusher(&dir, &new, &who)
    {
        eprintln!("post-receive: who pushed was not recorded: {e}");
    }
    let deleted = lines
        .iter()
        .any(|line| line.split_whitespace().nth(1).is_some_and(zero));
    if !deleted {
        return Ok(());
    }
    let out = std::process::Command::new("git")
        .args(["-c", "gc.auto=0", "gc", "--quiet", "--prune=5.minutes.ago"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("post-receive: git gc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        // The push is in; only the space is not given back yet (the next deletion tries
        // again).
        Err(format!(
            "post-receive: git gc: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What a push may do to refs other than what the namespace runs: nothing while the
/// namespace follows a forge (but `micro diff`'s previews); else create and delete
/// branches and tags, up to the quota's `refs`.
fn check_refs(
    repo: &git2::Repository,
    marks: &Marks,
    updates: &[(String, String, String)],
) -> Result<(), String> {
    let counted = |name: &str| name.starts_with("refs/heads/") || name.starts_with("refs/tags/");
    let zero = |id: &str| id.bytes().all(|b| b == b'0');
    if let Some(followed) = &marks.followed
        && let Some((_, _, refname)) = updates
            .iter()
            .find(|(_, _, r)| r != BRANCH && !r.starts_with(micro_tenant::change::PREVIEW_REFS))
    {
        return Err(format!("{refname}: {}", Refused::Linked(followed.clone())));
    }
    let created = updates
        .iter()
        .filter(|(old, new, r)| counted(r) && zero(old) && !zero(new))
        .count();
    if created == 0 {
        return Ok(());
    }
    let deleted = updates
        .iter()
        .filter(|(old, new, r)| counted(r) && !zero(old) && zero(new))
        .count();
    let held = repo
        .references()
        .map_err(|e| format!("pre-receive: {}", e.message()))?
        .filter_map(Result::ok)
        .filter(|r| r.name().is_ok_and(counted))
        .count();
    let after = (held + created).saturating_sub(deleted) as u64;
    if after > marks.quota.refs {
        return Err(format!(
            "the repo may hold {} branches and tags (quota refs) and this push would make it {after}: delete some first (git push origin --delete NAME)",
            marks.quota.refs
        ));
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
