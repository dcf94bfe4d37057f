//! The data dir's own files: its lock, the key config values are sealed with, and the
//! permissions every secret file must have.

use crate::args::ServerArgs;
use crate::error::{Context, Result};
use std::path::Path;

/// Holds the data dir for this server's lifetime. A second server on the same data dir
/// would reap the first one's services and fight it over every namespace, so it stops
/// here instead. The OS drops the lock when the process dies, even by SIGKILL.
pub(crate) fn lock_data_dir(data: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = data.join("server.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        bail!(
            "data dir {} is in use by another `micro server` (pid {}); stop it or pass another --data-dir",
            data.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

// The key config values are sealed with: MICRO_CONFIG_KEY, or the key file (made on
/// first start).
pub(crate) fn config_key(args: &ServerArgs, data: &Path) -> Result<micro_store::Sealer> {
    if let Ok(hex) = std::env::var("MICRO_CONFIG_KEY") {
        return micro_store::Sealer::from_hex(&hex).context("MICRO_CONFIG_KEY");
    }
    let file = args
        .config_key_file
        .clone()
        .unwrap_or_else(|| data.join("config.key"));
    if !file.exists() {
        std::fs::write(&file, micro_store::Sealer::generate_hex())
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    restrict(&file, 0o600)?;
    let hex = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    micro_store::Sealer::from_hex(&hex).with_context(|| file.display().to_string())
}

/// Refuses a secret file (a key, Stripe's secrets) that every user of this machine may
/// read or write: tenants' services run as users of this machine. Group bits are left
/// alone (Kubernetes shares Secret files through a group; no tenant is in it).
pub fn private_file(path: &Path, flag: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("{flag} {}: cannot read it", path.display()))?
        .permissions()
        .mode();
    if mode & 0o006 != 0 {
        bail!(
            "{flag} {}: every user of this machine may {} it (mode {:04o}), tenants' services included; make it the server's own: chmod 600 {}",
            path.display(),
            if mode & 0o002 != 0 { "change" } else { "read" },
            mode & 0o7777,
            path.display()
        );
    }
    Ok(())
}

/// Owner-only permissions on what an older server (or another umask) left readable.
pub(crate) fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict {}", path.display()))
}
