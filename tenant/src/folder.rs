//! What of a local folder `micro run` deploys: every file git would commit from it.
//! `.gitignore` files (the folder's, its parents' and the global one), `.ignore` and a
//! `.microignore` are honoured, so a `venv/` or a `.env` full of secrets stays on the
//! developer's machine and out of the tenant repo.

use git2::{Oid, Repository};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path}: {bytes} bytes is over the {MAX_FILE_BYTES} byte limit for a file (leave it out with a {MICROIGNORE})", path = .0.display(), bytes = .1)]
    TooBig(PathBuf, u64),
    #[error("{path}: file names must be UTF-8", path = .0.display())]
    NotUtf8(PathBuf),
    #[error("cannot read {path}: {why}", path = .0.display(), why = .1)]
    Read(PathBuf, String),
    #[error("built-in ignore rules: {0}")]
    Rules(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

type Result<T> = std::result::Result<T, FolderError>;

/// Files bigger than this are not committed by `micro run`.
const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Never copied, ignore files or not.
const SKIP: &[&str] = &[".git", "__pycache__", ".DS_Store"];
/// Ignore rules that apply to `micro run` only, in `.gitignore` syntax.
const MICROIGNORE: &str = ".microignore";
/// What `micro run` leaves out of a folder with no ignore file at all: secrets and
/// environments that belong to this machine. The lowest rules: any ignore file of the
/// folder (a `.microignore` with `!.env`, say) overrides them.
const DEFAULT_IGNORES: &str = "\
.env*
!.env.example
.git/
venv/
.venv/
node_modules/
__pycache__/
target/
";

/// A folder as git sees it: files (blob, mode) and sub-folders by name.
#[derive(Default)]
struct Folder(BTreeMap<String, Entry>);

enum Entry {
    File(Oid, i32),
    Folder(Folder),
}

impl Folder {
    fn insert(&mut self, parts: &[String], blob: Oid, mode: i32) {
        match parts {
            [] => {}
            [name] => {
                self.0.insert(name.clone(), Entry::File(blob, mode));
            }
            [first, rest @ ..] => {
                let entry = self
                    .0
                    .entry(first.clone())
                    .or_insert_with(|| Entry::Folder(Folder::default()));
                if let Entry::Folder(sub) = entry {
                    sub.insert(rest, blob, mode);
                }
            }
        }
    }

    fn write(&self, repo: &Repository) -> Result<Oid> {
        let mut builder = repo.treebuilder(None)?;
        for (name, entry) in &self.0 {
            match entry {
                Entry::File(blob, mode) => builder.insert(name, *blob, *mode)?,
                Entry::Folder(sub) => builder.insert(name, sub.write(repo)?, 0o040000)?,
            };
        }
        Ok(builder.write()?)
    }
}

/// Writes the deployable files of `dir` into `repo` as a tree and returns its id.
pub fn tree(repo: &Repository, dir: &Path) -> Result<Oid> {
    use std::os::unix::fs::PermissionsExt;
    let rules = |e: std::io::Error| FolderError::Rules(e.to_string());
    let defaults = tempfile::NamedTempFile::new().map_err(rules)?;
    std::fs::write(defaults.path(), DEFAULT_IGNORES).map_err(rules)?;
    let mut walk = ignore::WalkBuilder::new(dir);
    if let Some(e) = walk.add_ignore(defaults.path()) {
        return Err(FolderError::Rules(e.to_string()));
    }
    let walk = walk
        .hidden(false)
        .require_git(false)
        .add_custom_ignore_filename(MICROIGNORE)
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !SKIP.contains(&name.as_ref()) && !name.ends_with(".pyc")
        })
        .build();
    let mut root = Folder::default();
    for entry in walk {
        let entry = entry.map_err(|e| FolderError::Read(dir.to_owned(), e.to_string()))?;
        // Symlinks are not followed (a link could point anywhere on this machine).
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let relative = path.strip_prefix(dir).unwrap_or(path);
        let mut parts = Vec::new();
        for part in relative.components() {
            let Some(name) = part.as_os_str().to_str() else {
                return Err(FolderError::NotUtf8(path.to_owned()));
            };
            parts.push(name.to_owned());
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| FolderError::Read(path.to_owned(), e.to_string()))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(FolderError::TooBig(path.to_owned(), meta.len()));
        }
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o100755
        } else {
            0o100644
        };
        root.insert(&parts, repo.blob_path(path)?, mode);
    }
    root.write(repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(repo: &Repository, tree: Oid) -> Vec<String> {
        let mut found = Vec::new();
        repo.find_tree(tree)
            .unwrap()
            .walk(git2::TreeWalkMode::PreOrder, |dir, e| {
                if e.kind() == Some(git2::ObjectType::Blob) {
                    found.push(format!("{dir}{}", e.name().unwrap()));
                }
                git2::TreeWalkResult::Ok
            })
            .unwrap();
        found.sort();
        found
    }

    #[test]
    fn ignored_and_cache_files_stay_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(tmp.path().join("repo.git")).unwrap();
        // A monorepo whose root ignores logs; the service folder lives inside it.
        let mono = tmp.path().join("mono");
        let dir = mono.join("svc");
        for (path, content) in [
            (".gitignore", "*.log\n"),
            ("svc/service.yaml", "run: python3 main.py\n"),
            ("svc/main.py", "print('hi')\n"),
            ("svc/.gitignore", ".env\nvenv/\n"),
            ("svc/.env", "DB_PASSWORD=hunter2\n"),
            ("svc/venv/lib.py", "x = 1\n"),
            ("svc/debug.log", "noise\n"),
            ("svc/.microignore", "docs/\n"),
            ("svc/docs/guide.md", "# guide\n"),
            ("svc/lib/util.py", "y = 2\n"),
            ("svc/lib/__pycache__/util.cpython-311.pyc", "\0"),
            ("svc/.python-version", "3.12\n"),
        ] {
            let path = mono.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        let tree = tree(&repo, &dir).unwrap();
        assert_eq!(
            files(&repo, tree),
            [
                ".gitignore",
                ".microignore",
                ".python-version",
                "lib/util.py",
                "main.py",
                "service.yaml"
            ]
        );
    }

    #[test]
    fn oversized_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(tmp.path().join("repo.git")).unwrap();
        let dir = tmp.path().join("svc");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big.bin"), vec![0u8; 10 * 1024 * 1024 + 1]).unwrap();
        let err = tree(&repo, &dir).unwrap_err().to_string();
        assert!(err.contains("big.bin") && err.contains("limit"), "{err}");
        assert!(err.contains(".microignore"), "says the way out: {err}");
    }

    #[test]
    fn a_hand_made_folder_keeps_secrets_and_environments_behind_by_default() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(tmp.path().join("repo.git")).unwrap();
        let dir = tmp.path().join("svc");
        for path in [
            "service.yaml",
            "main.py",
            ".env",
            ".env.local",
            ".env.example",
            "venv/lib.py",
            ".venv/lib.py",
            "node_modules/x/index.js",
            "target/debug/app",
            "src/app.rs",
        ] {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let tree_id = tree(&repo, &dir).unwrap();
        assert_eq!(
            files(&repo, tree_id),
            [".env.example", "main.py", "service.yaml", "src/app.rs"]
        );
        // A .microignore can bring one back.
        std::fs::write(dir.join(".microignore"), "!node_modules/\n").unwrap();
        let tree_id = tree(&repo, &dir).unwrap();
        assert!(files(&repo, tree_id).contains(&"node_modules/x/index.js".to_owned()));
    }
}
