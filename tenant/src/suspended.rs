//! The mark beside a suspended namespace's repo: the pre-receive hook refuses every push
//! with its words, and the reconciler runs every service at zero replicas (nothing is
//! deleted, so lifting it brings back exactly what ran). The platform store says who is
//! suspended; this file is how git's hook process and the reconciler learn it.

use std::path::Path;

const MARKER: &str = "micro-suspended";

/// Marks (with the line pushes are refused with) or, with `None`, unmarks `repo_dir`.
pub fn mark(repo_dir: &Path, refusal: Option<&str>) -> std::io::Result<()> {
    let path = repo_dir.join(MARKER);
    match refusal {
        Some(line) => {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, line)?;
            std::fs::rename(tmp, path)
        }
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// Whether `repo_dir` is marked suspended (one `stat`).
pub fn is_suspended(repo_dir: &Path) -> bool {
    repo_dir.join(MARKER).exists()
}

/// The refusal of a suspended namespace's repo, if it is suspended.
pub fn refusal(repo_dir: &Path) -> Option<String> {
    std::fs::read_to_string(repo_dir.join(MARKER))
        .ok()
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn marks_and_unmarks() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(super::refusal(dir.path()), None);
        super::mark(dir.path(), Some("namespace a is suspended: billing")).unwrap();
        assert_eq!(
            super::refusal(dir.path()).as_deref(),
            Some("namespace a is suspended: billing")
        );
        super::mark(dir.path(), None).unwrap();
        super::mark(dir.path(), None).unwrap();
        assert_eq!(super::refusal(dir.path()), None);
    }
}
