//! The interpreters this machine has, which a service pins with `runtime:`
//! (`python3.12`, `node20`): found once at start in the folders every sandbox sees, and
//! put first on a pinned service's PATH as `python3`/`python` or `node`.

use micro_tenant::toolchain::{Runtime, Runtimes};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a sandbox finds interpreters (its `/usr` is the host's, read-only).
const DIRS: [&str; 2] = ["/usr/local/bin", "/usr/bin"];

/// The folder in a checkout that holds a pinned service's interpreter links.
pub(crate) const PINNED_BIN: &str = ".micro-runtime/bin";

#[derive(Clone, Debug, Default)]
pub(crate) struct Interpreters {
    found: BTreeMap<Runtime, PathBuf>,
}

impl Interpreters {
    /// `python3.N` by name, `node` by what `node --version` says.
    pub(crate) fn discover() -> Self {
        let mut found = BTreeMap::new();
        for dir in DIRS {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(runtime @ Runtime::Python(_)) = Runtime::parse(&name) {
                    found.entry(runtime).or_insert_with(|| entry.path());
                }
            }
            let node = Path::new(dir).join("node");
            if let Some(major) = node_major(&node) {
                found.entry(Runtime::Node(major)).or_insert(node);
            }
        }
        Interpreters { found }
    }

    pub(crate) fn runtimes(&self) -> Runtimes {
        self.found
            .keys()
            .fold(Runtimes::default(), |all, r| all.with(*r))
    }

    /// Links `runtime`'s interpreter into `code`'s [`PINNED_BIN`] under the names a
    /// command calls it by.
    pub(crate) fn pin(&self, runtime: &str, code: &Path) -> std::io::Result<()> {
        let wanted = Runtime::parse(runtime)
            .ok_or_else(|| std::io::Error::other(format!("runtime {runtime:?} is not one")))?;
        let target = self.found.get(&wanted).ok_or_else(|| {
            std::io::Error::other(format!("runtime {wanted} is not on this machine"))
        })?;
        let bin = code.join(PINNED_BIN);
        std::fs::create_dir_all(&bin)?;
        // The server's; the service only reads it (whatever the server's umask).
        use std::os::unix::fs::PermissionsExt;
        for dir in [bin.as_path(), bin.parent().unwrap_or(&bin)] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
        let names: &[&str] = match wanted {
            Runtime::Python(_) => &["python3", "python"],
            Runtime::Node(_) => &["node"],
        };
        for name in names {
            let link = bin.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, link)?;
        }
        Ok(())
    }
}

/// `v20.11.1` → 20.
fn node_major(node: &Path) -> Option<u8> {
    if !node.is_file() {
        return None;
    }
    let out = std::process::Command::new(node)
        .arg("--version")
        .env_clear()
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
        .filter(|m| *m < 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_python_is_found_and_linked_for_a_pinned_service() {
        let here = Interpreters::discover();
        let python = here
            .found
            .keys()
            .find(|r| matches!(r, Runtime::Python(_)))
            .copied()
            .expect("a python3.N on this machine");
        assert!(here.runtimes().has(python));
        let code = tempfile::tempdir().unwrap();
        here.pin(&python.to_string(), code.path()).unwrap();
        let out = std::process::Command::new(code.path().join(PINNED_BIN).join("python3"))
            .args(["-c", "import sys; print(f'python3.{sys.version_info[1]}')"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            python.to_string()
        );
        let err = here.pin("python3.1", code.path()).unwrap_err();
        assert!(err.to_string().contains("not on this machine"), "{err}");
    }
}
