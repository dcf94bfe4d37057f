//! The files kept beside each tenant repo. Through them the server tells what the store
//! knows to readers that do not ask it: git's pre-receive hook (another process) and the
//! controller's reconciles. Each says one thing: the namespace's quota, its suspension
//! (with the line pushes are refused with), the forge branch it follows, and, beside all
//! the repos, what the platform's runtime can run. This module is their one reader and
//! one writer; tenants cannot write there (git writes only inside the repo's own files).

use crate::preview::Scope;
use crate::quota::Quota;
use crate::spec::Support;
use std::path::Path;

/// Beside a repo: its namespace's quota (JSON of [`Quota`]).
pub const QUOTA_FILE: &str = "micro-quota.json";
/// Beside a suspended namespace's repo: the line its pushes are refused with.
const SUSPENDED_FILE: &str = "micro-suspended";
/// Beside a linked namespace's repo: where it follows (JSON of [`Followed`]).
const LINK_FILE: &str = "micro-link.json";
/// Beside all the repos: what the runtime can run (JSON of [`Support`]).
const SUPPORT_FILE: &str = "micro-runtime.json";
/// Beside a repo: who pushed each commit its branch took (`commit<TAB>who` lines, the
/// newest last): the account behind a push's token, or a forge's pusher.
const PUSHERS_FILE: &str = "micro-pushers";
/// Beside a preview's repo: what it may run (JSON of [`Scope`]).
const SCOPE_FILE: &str = "micro-preview-scope.json";
/// Past this size the pushers file keeps its newest half (a line is ~50-250 bytes: a
/// few thousand pushes).
const PUSHERS_KEPT_BYTES: u64 = 256 << 10;

/// Where a linked namespace follows: a branch of a repo on a forge.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Followed {
    pub url: String,
    pub branch: String,
}

/// Everything kept beside one repo, read at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marks {
    pub quota: Quota,
    /// The line a suspended namespace's pushes are refused with.
    pub suspended: Option<String>,
    pub followed: Option<Followed>,
    pub support: Support,
    /// A preview's: the services it runs and how they are served.
    pub scope: Option<Scope>,
}

impl Marks {
    /// What is kept beside the repo at `repo_dir`; what is missing or unreadable takes
    /// its default (the quota's defaults, not suspended, not linked, processes only).
    pub fn read(repo_dir: &Path) -> Marks {
        Self::read_with(repo_dir, support(repo_dir))
    }

    /// [`Marks::read`] for a reader that knows what the runtime supports (the server
    /// itself): that mark is not read.
    pub fn read_with(repo_dir: &Path, support: Support) -> Marks {
        Marks {
            quota: quota(repo_dir),
            suspended: suspension(repo_dir),
            followed: followed(repo_dir),
            support,
            scope: scope(repo_dir),
        }
    }
}

/// The quota written beside `repo_dir`, or the defaults if none was.
pub fn quota(repo_dir: &Path) -> Quota {
    std::fs::read(repo_dir.join(QUOTA_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes a namespace's quota beside its repo.
pub fn write_quota(repo_dir: &Path, quota: &Quota) -> std::io::Result<()> {
    write(
        &repo_dir.join(QUOTA_FILE),
        &serde_json::to_vec_pretty(quota)?,
    )
}

/// The refusal of a suspended namespace's repo, if it is suspended.
pub fn suspension(repo_dir: &Path) -> Option<String> {
    std::fs::read_to_string(repo_dir.join(SUSPENDED_FILE))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Suspends (with the line pushes are refused with) or, with `None`, resumes.
pub fn suspend(repo_dir: &Path, refusal: Option<&str>) -> std::io::Result<()> {
    let path = repo_dir.join(SUSPENDED_FILE);
    match refusal {
        Some(line) => write(&path, line.as_bytes()),
        None => remove(&path),
    }
}

/// Where the repo at `repo_dir` follows, if it is linked.
pub fn followed(repo_dir: &Path) -> Option<Followed> {
    let bytes = std::fs::read(repo_dir.join(LINK_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Links (or, with `None`, unlinks) the repo at `repo_dir` to `followed`.
pub fn follow(repo_dir: &Path, followed: Option<&Followed>) -> std::io::Result<()> {
    let path = repo_dir.join(LINK_FILE);
    match followed {
        Some(f) => write(&path, &serde_json::to_vec(f)?),
        None => remove(&path),
    }
}

/// A preview's scope, if the repo at `repo_dir` is a preview's.
pub fn scope(repo_dir: &Path) -> Option<Scope> {
    let bytes = std::fs::read(repo_dir.join(SCOPE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes a preview's scope beside its repo.
pub fn write_scope(repo_dir: &Path, scope: &Scope) -> std::io::Result<()> {
    write(&repo_dir.join(SCOPE_FILE), &serde_json::to_vec(scope)?)
}

/// Records that `who` pushed `commit` to the branch of the repo at `repo_dir`.
pub fn record_pusher(repo_dir: &Path, commit: &str, who: &str) -> std::io::Result<()> {
    use std::io::Write;
    // One line each: nothing of a name may break the format.
    let who: String = who.chars().filter(|c| !c.is_control()).take(200).collect();
    let path = repo_dir.join(PUSHERS_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    writeln!(file, "{commit}\t{who}")?;
    // Read back only when it has grown past its bound, not on every push.
    if file.metadata()?.len() > PUSHERS_KEPT_BYTES {
        drop(file);
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        let kept = lines[lines.len() / 2..].join("\n") + "\n";
        write(&path, kept.as_bytes())?;
    }
    Ok(())
}

/// Who pushed each commit recorded beside the repo at `repo_dir` (the last record of a
/// commit wins).
pub fn pushers(repo_dir: &Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(repo_dir.join(PUSHERS_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(c, w)| (c.to_owned(), w.to_owned()))
        .collect()
}

/// What the runtime can run, as the server recorded it beside the repo at `repo_dir`;
/// only processes if it did not (the stricter answer).
pub fn support(repo_dir: &Path) -> Support {
    repo_dir
        .parent()
        .and_then(|root| std::fs::read(root.join(SUPPORT_FILE)).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Support::PROCESSES)
}

/// Records what the runtime can run beside all the repos under `repos_root`.
pub fn record_support(repos_root: &Path, support: Support) -> std::io::Result<()> {
    write(
        &repos_root.join(SUPPORT_FILE),
        &serde_json::to_vec(&support)?,
    )
}

/// Replaces `path` whole: a reader sees the old content or the new, never half.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mark_is_written_read_back_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ns-a.git");
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(
            Marks::read(&dir),
            Marks {
                quota: Quota::default(),
                suspended: None,
                followed: None,
                support: Support::PROCESSES,
                scope: None,
            }
        );
        let mut q = Quota::default();
        q.set("services=3").unwrap();
        write_quota(&dir, &q).unwrap();
        suspend(&dir, Some("namespace a is suspended: billing")).unwrap();
        let f = Followed {
            url: "https://example.test/a.git".into(),
            branch: "main".into(),
        };
        follow(&dir, Some(&f)).unwrap();
        record_support(root.path(), Support::ALL).unwrap();
        let marks = Marks::read(&dir);
        assert_eq!(marks.quota.services, 3);
        assert_eq!(
            marks.suspended.as_deref(),
            Some("namespace a is suspended: billing")
        );
        assert_eq!(marks.followed, Some(f));
        assert_eq!(marks.support, Support::ALL);
        suspend(&dir, None).unwrap();
        suspend(&dir, None).unwrap();
        follow(&dir, None).unwrap();
        let marks = Marks::read(&dir);
        assert_eq!((marks.suspended, marks.followed), (None, None));
    }
}
