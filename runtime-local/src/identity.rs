//! A deployment's certificate identity as files: written before its replicas start,
//! replaced in place when renewed (the service reads them again and is not restarted),
//! removed when the deployment stops. Only the service's own user reads them.
//!
//! A renewal swaps one symlink, as the kubelet does for Secret volumes: `cert.pem` and
//! `key.pem` point through `current` into a generation folder, so a reader never finds
//! a half-written file, and the generation before stays until the next renewal for
//! whoever opened the cert just before the swap and the key just after.

use micro_runtime::Pem;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

const FILES: [&str; 2] = ["cert.pem", "key.pem"];
const CURRENT: &str = "current";

#[derive(Default)]
pub(crate) struct IdentityFiles {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pem: Option<Pem>,
    /// Where the files are, once placed, and who owns them.
    placed: Option<(PathBuf, Option<u32>)>,
    generation: u64,
}

impl IdentityFiles {
    pub fn new(pem: Option<Pem>) -> Self {
        IdentityFiles {
            inner: Mutex::new(Inner {
                pem,
                ..Inner::default()
            }),
        }
    }

    /// The files a previous server placed in `dir` for a deployment it left running:
    /// renewed in place like its own.
    pub fn adopt(dir: Option<&Path>, owner: Option<u32>) -> Self {
        let Some(dir) = dir else {
            return IdentityFiles::default();
        };
        let generation = std::fs::read_link(dir.join(CURRENT))
            .ok()
            .and_then(|t| {
                t.to_str()
                    .and_then(|t| t.strip_prefix("gen-"))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0);
        IdentityFiles {
            inner: Mutex::new(Inner {
                pem: None,
                placed: Some((dir.to_owned(), owner)),
                generation,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the files into `dir`, owned by `owner` (the tenant's uid in a sandbox);
    /// the folder to hand the replicas, `None` for a deployment without an identity.
    pub fn place(&self, dir: &Path, owner: Option<u32>) -> std::io::Result<Option<PathBuf>> {
        let mut inner = self.lock();
        let Some(pem) = inner.pem.clone() else {
            return Ok(None);
        };
        if inner.placed.is_none() {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir)?;
            inner.generation += 1;
            write_generation(dir, inner.generation, owner, &pem)?;
            for file in FILES {
                let link = dir.join(file);
                std::os::unix::fs::symlink(Path::new(CURRENT).join(file), &link)?;
                lchown(&link, owner)?;
            }
            if let Some(uid) = owner {
                std::os::unix::fs::chown(dir, Some(uid), Some(uid))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500))?;
            }
            inner.placed = Some((dir.to_owned(), owner));
        }
        Ok(Some(dir.to_owned()))
    }

    /// Replaces the identity, and its files if they are placed.
    pub fn renew(&self, pem: Pem) -> std::io::Result<()> {
        let mut inner = self.lock();
        inner.pem = Some(pem.clone());
        let Some((dir, owner)) = inner.placed.clone() else {
            return Ok(());
        };
        inner.generation += 1;
        write_generation(&dir, inner.generation, owner, &pem)?;
        if let Some(older) = inner.generation.checked_sub(2) {
            let _ = std::fs::remove_dir_all(dir.join(generation_name(older)));
        }
        Ok(())
    }

    /// Removes the files (the deployment stopped).
    pub fn remove(&self) {
        let mut inner = self.lock();
        if let Some((dir, _)) = inner.placed.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        inner.pem = None;
    }
}

fn generation_name(n: u64) -> String {
    format!("gen-{n}")
}

/// Writes generation `n` of the files and points `current` at it (a rename: atomic).
fn write_generation(dir: &Path, n: u64, owner: Option<u32>, pem: &Pem) -> std::io::Result<()> {
    let name = generation_name(n);
    let generation = dir.join(&name);
    let _ = std::fs::remove_dir_all(&generation);
    std::fs::create_dir(&generation)?;
    for (file, text) in FILES.iter().zip([&pem.cert, pem.key.expose()]) {
        let path = generation.join(file);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&path)?;
        f.write_all(text.as_bytes())?;
        lchown(&path, owner)?;
    }
    lchown(&generation, owner)?;
    if owner.is_some() {
        std::fs::set_permissions(&generation, std::fs::Permissions::from_mode(0o500))?;
    }
    let tmp = dir.join(format!(".{CURRENT}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&name, &tmp)?;
    lchown(&tmp, owner)?;
    std::fs::rename(&tmp, dir.join(CURRENT))
}

fn lchown(path: &Path, owner: Option<u32>) -> std::io::Result<()> {
    match owner {
        Some(uid) => std::os::unix::fs::lchown(path, Some(uid), Some(uid)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(n: u8) -> Pem {
        Pem {
            cert: format!("cert {n}"),
            key: micro_runtime::Secret::new(format!("key {n}")),
        }
    }

    #[test]
    fn renewal_replaces_both_files_under_a_reader_and_removal_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("identity-d1");
        let files = IdentityFiles::new(Some(pem(1)));
        // Renewed before the replicas start: they start with the new one.
        files.renew(pem(2)).unwrap();
        assert_eq!(files.place(&dir, None).unwrap(), Some(dir.clone()));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(
            (read("cert.pem"), read("key.pem")),
            ("cert 2".into(), "key 2".into())
        );
        // A reader holding the old key file open still reads it whole.
        let mut held = std::fs::File::open(dir.join("key.pem")).unwrap();
        for n in 3..6 {
            files.renew(pem(n)).unwrap();
            assert_eq!(
                (read("cert.pem"), read("key.pem")),
                (format!("cert {n}"), format!("key {n}"))
            );
        }
        let mut old = String::new();
        std::io::Read::read_to_string(&mut held, &mut old).unwrap();
        assert_eq!(old, "key 2");
        let generations = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("gen-")
            })
            .count();
        assert_eq!(generations, 2, "the current one and the one before");
        files.remove();
        assert!(!dir.exists());
    }

    #[test]
    fn a_deployment_without_an_identity_gets_no_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("identity");
        assert_eq!(IdentityFiles::new(None).place(&dir, None).unwrap(), None);
        assert!(!dir.exists());
    }
}
