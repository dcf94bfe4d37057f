//! The pre-receive hook: every push to a tenant's main is parsed and validated with the
//! same code the reconciler uses, before git accepts it. git shows our stderr to the pusher.

use micro_tenant::layout;
use micro_tenant::quota::Quota;
use micro_tenant::repo::{self, BRANCH, LoadError};
use std::io::BufRead;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct HookArgs {
    /// Which hook git is running
    #[arg(value_parser = ["pre-receive"])]
    pub name: String,
}

pub fn run(_args: &HookArgs) -> ExitCode {
    match check() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn check() -> Result<(), String> {
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
    // A suspended namespace takes no push at all, whatever its refs.
    if let Some(line) = micro_tenant::suspended::refusal(repo.path()) {
        return Err(line);
    }
    // Once per push, whatever its refs (a branch, a tag, a diff preview): the push's
    // objects count against the repo's size; they wait in a quarantine folder under objects/.
    let quota = Quota::read(repo.path());
    quota
        .check_repo_size(&namespace, &[&repo.path().join("objects")])
        .map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("pre-receive: {e}"))?;
        let mut parts = line.split_whitespace();
        let (Some(_old), Some(new), Some(refname)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if refname != BRANCH {
            continue;
        }
        if let Some(f) = micro_tenant::linked::followed(repo.path()) {
            return Err(format!(
                "this namespace follows {} (branch {}): push there, or `micro repo unlink` to push here again",
                f.url, f.branch
            ));
        }
        let new = git2::Oid::from_str(new).map_err(|e| format!("pre-receive: {}", e.message()))?;
        if new.is_zero() {
            return Err("main cannot be deleted: it is what your namespace runs".into());
        }
        let support = repo::support_of(repo.path());
        let desired = match repo::load(&repo, &namespace, new, support) {
            Ok(d) => d,
            Err(LoadError::Invalid(e)) => return Err(e.to_string()),
            Err(LoadError::Quota(e)) => return Err(e),
            Err(LoadError::Git(e)) => return Err(format!("pre-receive: {}", e.message())),
        };
        quota
            .check_desired(&desired)
            .and_then(|()| quota.check_checkouts(&repo, &desired))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
