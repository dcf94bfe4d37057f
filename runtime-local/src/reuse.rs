//! A revision whose dependency files are byte for byte those of an earlier built
//! revision of the same service takes that revision's environment (`.venv`,
//! `node_modules`) as hard links instead of installing it again, so a change to code
//! alone rebuilds in moments; with other dependencies it still takes the download
//! caches, so only what is new is fetched. Hard links cost no disk twice (and count once in the
//! namespace's quota); installers replace files rather than write into them, so the
//! earlier revision's environment stays as it was. Only for sandboxed services, whose
//! code is at the same path (`/app`) in every revision, so an environment's absolute
//! paths (a virtualenv's scripts) still hold.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Files whose content decides what an environment holds.
const DEPENDENCY_FILES: [&str; 10] = [
    "requirements.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "poetry.lock",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "go.mod",
    "go.sum",
];

/// What a build installs into, inside a checkout.
const ENVIRONMENTS: [&str; 2] = [".venv", "node_modules"];

/// Package managers' download caches, inside a checkout (a build's `HOME` is its
/// checkout): carried from revision to revision even when the dependencies change, so
/// only what is new is downloaded. The service's own, on its namespace's volume.
const CACHES: [&str; 2] = [".cache/pip", ".npm"];

/// Takes into `dir`'s code what the service's earlier builds under `base` can give it:
/// the environments of the newest one built from the same dependency files (that
/// checkout, if any, is returned), and the newest one's download caches whatever.
pub(crate) fn take_from_earlier_builds(base: &Path, dir: &Path) -> Option<PathBuf> {
    let built = newest_built(base, dir);
    let code = dir.join("code");
    if let Some(newest) = built.first() {
        carry_caches(newest, &code);
    }
    adopt_environment(&built, &code)
}

/// Links into `code` the download caches of the checkout `from`, where it has any.
fn carry_caches(from: &Path, code: &Path) {
    for cache in CACHES {
        let (source, target) = (from.join("code").join(cache), code.join(cache));
        if !source.is_dir() || target.exists() {
            continue;
        }
        if let Some(parent) = target.parent()
            && std::fs::create_dir_all(parent).is_err()
        {
            continue;
        }
        if !link_tree(&source, &target) {
            let _ = std::fs::remove_dir_all(&target);
        }
    }
}

/// The other built checkouts under `base`, newest first.
fn newest_built(base: &Path, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut built: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != dir)
        .filter_map(|p| {
            let at = std::fs::metadata(p.join("built")).ok()?.modified().ok()?;
            Some((at, p))
        })
        .collect();
    built.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    built.into_iter().map(|(_, p)| p).collect()
}

/// `cp -al`: `target` made of hard links to `source`'s files (links kept as links).
fn link_tree(source: &Path, target: &Path) -> bool {
    Command::new("cp")
        .arg("-al")
        .arg(source)
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Links into `code` the environments of the newest of `built` that was built from the
/// same dependency files: that checkout, if there was one.
fn adopt_environment(built: &[PathBuf], code: &Path) -> Option<PathBuf> {
    let from = built
        .iter()
        .find(|other| same_dependencies(&other.join("code"), code))?
        .clone();
    let envs: Vec<&str> = ENVIRONMENTS
        .into_iter()
        .filter(|e| from.join("code").join(e).is_dir() && !code.join(e).exists())
        .collect();
    if envs.is_empty() {
        return None;
    }
    for env in &envs {
        if !link_tree(&from.join("code").join(env), &code.join(env)) {
            // Half an environment is worse than none: the build installs afresh.
            for env in &envs {
                let _ = std::fs::remove_dir_all(code.join(env));
            }
            return None;
        }
    }
    Some(from)
}

/// Both folders have the same dependency files, at least one, with the same bytes.
fn same_dependencies(a: &Path, b: &Path) -> bool {
    let mut any = false;
    for file in DEPENDENCY_FILES {
        match (std::fs::read(a.join(file)), std::fs::read(b.join(file))) {
            (Ok(x), Ok(y)) if x == y => any = true,
            (Err(x), Err(y))
                if x.kind() == std::io::ErrorKind::NotFound
                    && y.kind() == std::io::ErrorKind::NotFound => {}
            _ => return false,
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(base: &Path, name: &str, files: &[(&str, &str)], built: bool) -> PathBuf {
        let dir = base.join(name);
        for (file, text) in files {
            let path = dir.join("code").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        if built {
            std::fs::write(dir.join("built"), "").unwrap();
        }
        dir
    }

    #[test]
    fn the_same_dependencies_take_the_built_environment_as_links() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let old = checkout(
            base,
            "old",
            &[
                ("requirements.txt", "flask==3.0\n"),
                ("main.py", "v1"),
                (".venv/lib/flask.py", "flask"),
            ],
            true,
        );
        let new = checkout(
            base,
            "new",
            &[("requirements.txt", "flask==3.0\n"), ("main.py", "v2")],
            false,
        );
        assert_eq!(take_from_earlier_builds(base, &new), Some(old.clone()));
        let (a, b) = (
            old.join("code/.venv/lib/flask.py"),
            new.join("code/.venv/lib/flask.py"),
        );
        assert_eq!(
            std::fs::metadata(&a).unwrap().ino(),
            std::fs::metadata(&b).unwrap().ino(),
            "a hard link, not a copy"
        );
    }

    #[test]
    fn download_caches_are_carried_even_when_dependencies_change() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        checkout(
            base,
            "old",
            &[
                ("requirements.txt", "flask==3.0\n"),
                (".cache/pip/wheels/flask.whl", "wheel"),
                (".npm/_cacache/x", "x"),
            ],
            true,
        );
        let new = checkout(base, "new", &[("requirements.txt", "flask==3.1\n")], false);
        assert_eq!(take_from_earlier_builds(base, &new), None);
        assert_eq!(
            std::fs::read_to_string(new.join("code/.cache/pip/wheels/flask.whl")).unwrap(),
            "wheel"
        );
        assert!(new.join("code/.npm/_cacache/x").is_file());
    }

    #[test]
    fn changed_or_unbuilt_dependencies_install_afresh() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        checkout(
            base,
            "old",
            &[("requirements.txt", "flask==3.0\n"), (".venv/x", "x")],
            true,
        );
        checkout(
            base,
            "unbuilt",
            &[("requirements.txt", "flask==3.1\n"), (".venv/x", "x")],
            false,
        );
        let new = checkout(base, "new", &[("requirements.txt", "flask==3.1\n")], false);
        assert_eq!(take_from_earlier_builds(base, &new), None);
        assert!(!new.join("code/.venv").exists());
        // A lock file added is a dependency change too.
        let locked = checkout(
            base,
            "locked",
            &[("requirements.txt", "flask==3.0\n"), ("poetry.lock", "x")],
            false,
        );
        assert_eq!(take_from_earlier_builds(base, &locked), None);
    }
}
