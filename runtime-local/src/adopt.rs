//! What serves, kept on disk so that a server started after this one adopts it: each
//! service's serving deployment (its replicas' process groups, cgroups, ports and log
//! pipes) and the newer one that failed, if one did. Replicas outlive the server that
//! started them; the next one checks each is the process it recorded, routes to it, and
//! watches it as its own.

use super::{Shared, pids};
use micro_tenant::desired::ServiceModel;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// One service's record: `runtime/.serving/<namespace>.<service>.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    pub serving: Option<Serving>,
    /// A newer deployment whose rollout failed while `serving` went on serving.
    pub failed: Option<Failed>,
}

/// A deployment whose rollout finished.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Serving {
    pub deployment: Option<String>,
    pub revision: String,
    pub source: String,
    pub model: ServiceModel,
    /// Its checkout folder (`runtime/<ns>/<service>/<tree>`), kept while it runs.
    pub dir: PathBuf,
    /// Its identity's folder and who owns it, if it has one.
    pub identity: Option<PathBuf>,
    pub owner: Option<u32>,
    /// The port of its namespace's door to the API, which its sandboxes' networks name.
    pub door: Option<u16>,
    /// Per replica, in order; `None` where none was running.
    pub replicas: Vec<Option<Running>>,
}

/// A replica's process group, as it was started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Running {
    pub pgid: i32,
    /// Its leader's start time: a reused pid is not it.
    pub start: u64,
    /// The sandbox's first process, whose network namespace is the replica's.
    pub inner: Option<i32>,
    pub host_port: u16,
    /// Its `$PORT`.
    pub listen: u16,
    /// Its cgroup's label, if it has one.
    pub cgroup: Option<String>,
    /// The named pipe its output comes through.
    pub fifo: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub log_tag: Option<String>,
    /// Its network's holes were the server's (no egress), to be opened again; else pasta
    /// keeps them and lives on with the replica.
    #[serde(default)]
    pub holes: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Failed {
    pub deployment: Option<String>,
    pub revision: String,
    pub source: String,
    pub model: ServiceModel,
    pub why: String,
}

impl Running {
    /// Whether its leader still runs, as the same process.
    pub fn alive(&self) -> bool {
        pids::alive(self.pgid, self.start)
    }
}

fn folder(shared: &Shared) -> PathBuf {
    shared.dirs.work.join(".serving")
}

fn file(dir: &Path, namespace: &str, name: &str) -> PathBuf {
    // Both are DNS labels: no dot, no slash.
    dir.join(format!("{namespace}.{name}.json"))
}

impl Shared {
    /// Writes (or, with `None`, removes) a service's record off the async threads, in
    /// the order the calls were made.
    pub(crate) fn save_record(&self, namespace: &str, name: &str, record: Option<Record>) {
        let seq = self
            .record_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (dir, key) = (folder(self), (namespace.to_owned(), name.to_owned()));
        let written = self.records_written.clone();
        crate::blocking::in_background(move || {
            let mut written = written.lock().unwrap_or_else(PoisonError::into_inner);
            if written.get(&key).is_some_and(|&last| last > seq) {
                return;
            }
            if let Err(e) = write(&dir, &key.0, &key.1, record.as_ref()) {
                tracing::warn!(error = %e, "cannot record what serves");
            }
            written.insert(key, seq);
        });
    }
}

fn write(dir: &Path, namespace: &str, name: &str, record: Option<&Record>) -> std::io::Result<()> {
    let path = file(dir, namespace, name);
    let Some(record) = record else {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    };
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(record).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}

/// Writes a record now (the server is stopping).
pub(crate) fn write_now(
    shared: &Shared,
    namespace: &str,
    name: &str,
    record: &Record,
) -> std::io::Result<()> {
    let _held = shared
        .records_written
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    write(&folder(shared), namespace, name, Some(record))
}

/// Every service's record a previous server left: `(namespace, service, record)`.
pub(crate) fn load_all(work: &Path) -> Vec<(String, String, Record)> {
    let dir = work.join(".serving");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let Some((ns, name)) = stem.split_once('.') else {
            continue;
        };
        match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        {
            Some(record) => out.push((ns.to_owned(), name.to_owned(), record)),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    out
}

/// Removes every record (nothing is left running to adopt).
pub(crate) fn forget_all(work: &Path) {
    let _ = std::fs::remove_dir_all(work.join(".serving"));
}

/// A service's record, and those of its serving replicas that still run as recorded.
pub(crate) struct Found {
    pub namespace: String,
    pub name: String,
    pub record: Record,
    pub live: Vec<Option<Running>>,
}

/// What a starting server keeps of what the last one left: the process groups and
/// cgroups of every replica it adopts. The rest is reaped.
#[derive(Default)]
pub(crate) struct Kept {
    pub groups: HashSet<i32>,
    pub cgroups: HashSet<String>,
    pub fifos: HashSet<PathBuf>,
}

impl Kept {
    pub fn keep(&mut self, r: &Running) {
        self.groups.insert(r.pgid);
        if let Some(label) = &r.cgroup {
            self.cgroups.insert(label.clone());
        }
        self.fifos.insert(r.fifo.clone());
    }
}

/// Removes the log pipes of processes nobody adopted.
pub(crate) fn remove_stale_pipes(pids: &Path, kept: &Kept) {
    for entry in std::fs::read_dir(pids).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "fifo") && !kept.fifos.contains(&path) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Stops an adopted replica's group (it is not this server's child): SIGTERM, SIGKILL
/// after `grace`, then its cgroup, pid file and pipe go. Blocking.
pub(crate) fn terminate(shared: &Shared, r: &Running, grace: Duration) {
    let group = Pid::from_raw(r.pgid);
    if r.alive() {
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while r.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // A pgid is not reused while any of its group lives: this reaches only what is left.
    let _ = killpg(group, Signal::SIGKILL);
    if let (Some(cgroups), Some(label)) = (&shared.isolation.cgroups, &r.cgroup) {
        cgroups.named(label).kill_and_remove();
    }
    if let Some(pid_file) = &r.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    let _ = std::fs::remove_file(&r.fifo);
}

/// The replicas of `serving` that still run as recorded.
pub(crate) fn live(
    serving: &Serving,
    shared_cgroups: Option<&super::Cgroups>,
) -> Vec<Option<Running>> {
    serving
        .replicas
        .iter()
        .map(|r| {
            r.as_ref()
                .filter(|r| r.alive())
                .filter(|r| match (shared_cgroups, &r.cgroup) {
                    (Some(cgroups), Some(label)) => cgroups.exists(label),
                    (None, None) => true,
                    _ => false,
                })
                .cloned()
        })
        .collect()
}
