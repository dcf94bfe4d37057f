//! Pid files: how a server that was killed finds the process groups it left running.
//! Each file holds `PGID STARTTIME`; the start time guards against a reused pid.
//! A server killed between spawning a process and writing its pid file leaves no file,
//! so the reaper also looks for processes still working inside the runtime's folders.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Field `index` (0-based, counting after the command name) of `/proc/<pid>/stat`.
fn stat_field(pid: i32, index: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) may contain spaces; fields after it are plain.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(index)?.parse().ok()
}

/// The process's start time (clock ticks since boot).
fn start_time(pid: i32) -> Option<u64> {
    stat_field(pid, 19)
}

pub(crate) fn record(dir: &Path, label: &str, pgid: i32) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{label}.{pgid}.pid"));
    let start = start_time(pgid).unwrap_or(0);
    std::fs::write(&path, format!("{pgid} {start}\n"))?;
    Ok(path)
}

/// The process group of `pid`.
fn process_group(pid: i32) -> Option<i32> {
    stat_field(pid, 2).and_then(|g| i32::try_from(g).ok())
}

/// Process groups with a member whose working directory lies under `work`: only the
/// runtime starts processes there, and each in a group of its own.
fn groups_working_in(work: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = nix::unistd::getpgrp().as_raw();
    let mut groups = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let inside =
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(work));
        if let Some(pgid) = process_group(pid).filter(|&g| inside && g > 1 && g != own)
            && !groups.contains(&pgid)
        {
            groups.push(pgid);
        }
    }
    groups
}

/// Whether process `pid` lives (not a zombie) and started at `start`: the same process
/// as was recorded, not a reused pid.
pub(crate) fn alive(pid: i32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next();
    state != Some("Z") && start_time(pid) == Some(start)
}

/// The recorded start time of `pgid`'s leader, as [`record`] wrote it.
pub(crate) fn started(pgid: i32) -> u64 {
    start_time(pgid).unwrap_or(0)
}

/// Stops every process group recorded in `dir` or still working under `work`, but the
/// groups in `keep` (adopted by this server), returning how many were still there.
pub(crate) fn reap_orphans(
    dir: &Path,
    work: &Path,
    keep: &std::collections::HashSet<i32>,
) -> usize {
    let mut groups: Vec<i32> = groups_working_in(work)
        .into_iter()
        .filter(|g| !keep.contains(g))
        .collect();
    let entries = std::fs::read_dir(dir).into_iter().flatten();
    // Regular files only: the log pipes beside them would block a read.
    for entry in entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
    {
        let path = entry.path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut parts = text.split_whitespace();
            let pgid = parts.next().and_then(|p| p.parse::<i32>().ok());
            let start = parts.next().and_then(|p| p.parse::<u64>().ok());
            if pgid.is_some_and(|g| keep.contains(&g)) {
                continue;
            }
            if let (Some(pgid), Some(start)) = (pgid, start)
                && pgid > 1
            {
                match start_time(pgid) {
                    _ if groups.contains(&pgid) => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn alive(pid: u32) -> bool {
        // A reaped child is a zombie until waited for; count only live ones.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_owned()))
            .is_some_and(|r| !r.starts_with('Z'))
    }

    #[test]
    fn a_process_whose_pid_file_was_never_written_is_reaped_by_its_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let (pids, work) = (tmp.path().join(".pids"), tmp.path().join("runtime"));
        let code = work.join("ns/svc/abc/code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::create_dir_all(&pids).unwrap();
        let mut outside = std::process::Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut inside = std::process::Command::new("sleep")
            .arg("600")
            .current_dir(&code)
            .process_group(0)
            .spawn()
            .unwrap();
        // The server died right after this spawn: no pid file exists.
        assert_eq!(reap_orphans(&pids, &work, &Default::default()), 1);
        let _ = inside.wait();
        assert!(!alive(inside.id()));
        assert!(alive(outside.id()), "a process elsewhere is left alone");
        outside.kill().unwrap();
        outside.wait().unwrap();
    }
}
