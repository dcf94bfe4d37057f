//! Pid files: how a server that was killed finds the process groups it left running.
//! Each file holds `PGID STARTTIME`; the start time guards against a reused pid.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The process's start time (clock ticks since boot), from `/proc/<pid>/stat`.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces; fields after it are plain.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub(crate) fn record(dir: &Path, label: &str, pgid: i32) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{label}.{pgid}.pid"));
    let start = start_time(pgid).unwrap_or(0);
    std::fs::write(&path, format!("{pgid} {start}\n"))?;
    Ok(path)
}

/// Stops every process group recorded in `dir`, returning how many were still there.
pub(crate) fn reap_orphans(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut groups = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut parts = text.split_whitespace();
            let pgid = parts.next().and_then(|p| p.parse::<i32>().ok());
            let start = parts.next().and_then(|p| p.parse::<u64>().ok());
            if let (Some(pgid), Some(start)) = (pgid, start)
                && pgid > 1
            {
                match start_time(pgid) {
                    // The leader lives and is ours.
                    Some(now) if now == start => groups.push(pgid),
                    // The pid was reused by someone else's process: leave it alone.
                    Some(_) => {}
                    // Leader gone: a pgid is never reused while its group lives, so
                    // signalling it reaches only what our process left behind.
                    None => groups.push(pgid),
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    let mut reaped = 0;
    for &pgid in &groups {
        if killpg(Pid::from_raw(pgid), Signal::SIGTERM).is_ok() {
            reaped += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline
        && groups
            .iter()
            .any(|&g| killpg(Pid::from_raw(g), None).is_ok())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &pgid in &groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    reaped
}
