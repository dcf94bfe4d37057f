//! Fetching and pushing with the user's own `git` (their credential helpers, SSH keys
//! and configuration), for a namespace that follows a repo on a forge: the platform's
//! token means nothing there.

use crate::change::ChangeError;
use std::path::Path;
use std::process::Command;

fn git(git_dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(git_dir);
    cmd
}

fn failed(what: &str, stderr: &[u8]) -> ChangeError {
    let said = String::from_utf8_lossy(stderr);
    let line = said
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("hint:"))
        .unwrap_or("failed");
    ChangeError::Rejected(format!("git {what}: {line}"))
}

/// `git fetch URL REFSPEC` into the bare cache at `git_dir`.
pub fn fetch(git_dir: &Path, url: &str, refspec: &str) -> Result<(), ChangeError> {
    let out = git(git_dir)
        .args(["fetch", "--quiet", "--no-tags", "--", url, refspec])
        .output()
        .map_err(|e| ChangeError::Io(git_dir.to_owned(), e))?;
    if !out.status.success() {
        return Err(failed("fetch", &out.stderr));
    }
    Ok(())
}

/// `git push URL REFSPEC`; `Some(what git said)` when the remote refused the update.
pub fn push(git_dir: &Path, url: &str, refspec: &str) -> Result<Option<String>, ChangeError> {
    let out = git(git_dir)
        .args(["push", "--porcelain", "--quiet", "--", url, refspec])
        .output()
        .map_err(|e| ChangeError::Io(git_dir.to_owned(), e))?;
    if out.status.success() {
        return Ok(None);
    }
    // `--porcelain` prints `!\t<from>:<to>\t[rejected] (<why>)` for a refused ref.
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = stdout.lines().find(|l| l.starts_with('!')) {
        return Ok(Some(line.rsplit('\t').next().unwrap_or(line).to_owned()));
    }
    Err(failed("push", &out.stderr))
}

/// What a forge's branch holds, as `micro repo link` checks it before linking.
#[derive(Debug, PartialEq, Eq)]
pub enum BranchHolds {
    /// No such branch (or an empty repo): `--seed` may push the namespace there.
    Nothing,
    /// A namespace's repo (its `micro.yaml` at the top).
    Namespace,
    /// Something else: linking it would replace the namespace's history.
    Other,
}

/// Looks at `branch` of `url` with the user's git: one shallow fetch into the scratch
/// bare repo `scratch` (made if missing).
pub fn branch_holds(scratch: &Path, url: &str, branch: &str) -> Result<BranchHolds, ChangeError> {
    if !scratch.join("HEAD").exists() {
        let out = Command::new("git")
            .args(["init", "--quiet", "--bare"])
            .arg(scratch)
            .output()
            .map_err(|e| ChangeError::Io(scratch.to_owned(), e))?;
        if !out.status.success() {
            return Err(failed("init", &out.stderr));
        }
    }
    let listed = git(scratch)
        .args(["ls-remote", "--heads", "--", url, branch])
        .output()
        .map_err(|e| ChangeError::Io(scratch.to_owned(), e))?;
    if !listed.status.success() {
        return Err(failed("ls-remote", &listed.stderr));
    }
    let wanted = format!("refs/heads/{branch}");
    if !String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
    {
        return Ok(BranchHolds::Nothing);
    }
    let out = git(scratch)
        .args(["fetch", "--quiet", "--no-tags", "--depth", "1", "--", url])
        .arg(format!("+{wanted}:refs/micro/probe"))
        .output()
        .map_err(|e| ChangeError::Io(scratch.to_owned(), e))?;
    if !out.status.success() {
        return Err(failed("fetch", &out.stderr));
    }
    let has = git(scratch)
        .args(["cat-file", "-e", "refs/micro/probe:micro.yaml"])
        .output()
        .map_err(|e| ChangeError::Io(scratch.to_owned(), e))?;
    Ok(if has.status.success() {
        BranchHolds::Namespace
    } else {
        BranchHolds::Other
    })
}
