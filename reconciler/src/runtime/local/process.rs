//! Spawning and stopping one process group.

use super::{Shared, pids};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use tokio::process::{Child, Command};

/// What a spawned process needs to know about itself.
pub(crate) struct Launch<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub command: &'a str,
    pub dir: &'a Path,
    pub log: &'a Path,
    pub port: Option<u16>,
    pub env: Vec<(&'a str, &'a str)>,
    /// Names the pid file: `replica-0`, `build`, …
    pub role: String,
}

/// A running process group and the pid file that lets a restarted server find it.
pub(crate) struct Group {
    pub child: Child,
    pgid: Option<i32>,
    pid_file: Option<PathBuf>,
}

fn open_log(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Starts `sh -c COMMAND` in a new process group with a clean environment: only PATH,
/// HOME (its own folder), the platform's variables and the spec's `env`.
pub(crate) fn spawn(shared: &Shared, l: &Launch<'_>) -> std::io::Result<Group> {
    let log = open_log(l.log)?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(l.command)
        .current_dir(l.dir)
        .env_clear()
        .env("PATH", &shared.path_env)
        .env("HOME", l.dir)
        .env("LANG", "C.UTF-8")
        .env("MICRO_NAMESPACE", l.namespace)
        .env("MICRO_SERVICE_NAME", l.name)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(false);
    if let Some(port) = l.port {
        cmd.env("PORT", port.to_string());
    }
    for (k, v) in &l.env {
        cmd.env(k, v);
    }
    let child = cmd.spawn()?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let pid_file = pgid.and_then(|pgid| {
        pids::record(
            &shared.dirs.pids,
            &format!("{}.{}.{}", l.namespace, l.name, l.role),
            pgid,
        )
        .map_err(|e| tracing::warn!(error = %e, "cannot record pid"))
        .ok()
    });
    Ok(Group {
        child,
        pgid,
        pid_file,
    })
}

impl Group {
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        // The leader is gone; anything it left in its group goes too.
        self.signal(Signal::SIGKILL);
        self.forget();
        status
    }

    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(Pid::from_raw(pgid), sig);
        }
    }

    fn forget(&mut self) {
        if let Some(path) = self.pid_file.take() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// SIGTERM to the group, SIGKILL after `grace`, then waits for the leader.
    pub async fn terminate(mut self, grace: std::time::Duration) {
        self.signal(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
        self.signal(Signal::SIGKILL);
        self.forget();
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Human words for how a process ended.
pub(crate) fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "exited".to_owned(),
    }
}
