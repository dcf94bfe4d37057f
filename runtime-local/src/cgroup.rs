//! Per-process-group limits with cgroup v1 (memory, cpu, pids): one cgroup per replica or
//! build, under a folder per server, so a restarted server finds and stops everything a
//! previous one left, even processes that left their process group.

use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
const CPU_PERIOD_US: u64 = 100_000;

/// What one process group may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// Thousandths of a CPU.
    pub cpu_millis: u64,
    pub pids: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // The same defaults the quota counts a replica at.
            memory_bytes: micro_tenant::quota::DEFAULT_MEMORY_BYTES,
            cpu_millis: micro_tenant::quota::DEFAULT_CPU_MILLIS,
            pids: 256,
        }
    }
}

/// The cgroups of one server's runtime: `<controller>/micro-<tag>/<label>`.
#[derive(Clone, Debug)]
pub struct Cgroups {
    folder: String,
}

/// One process group's cgroup in every controller.
#[derive(Debug)]
pub struct Cgroup {
    paths: Vec<PathBuf>,
}

impl Cgroups {
    /// `tag` tells this server's cgroups from another's on the same machine. Fails if
    /// cgroup v1 controllers are not writable here.
    pub fn new(tag: &str) -> std::io::Result<Self> {
        let cg = Cgroups {
            folder: format!("micro-{tag}"),
        };
        for c in CONTROLLERS {
            std::fs::create_dir_all(Path::new(ROOT).join(c).join(&cg.folder))?;
        }
        Ok(cg)
    }

    /// Creates (or reuses) the cgroup `label` with `limits`.
    pub fn create(&self, label: &str, limits: Limits) -> std::io::Result<Cgroup> {
        let paths: Vec<PathBuf> = CONTROLLERS
            .iter()
            .map(|c| Path::new(ROOT).join(c).join(&self.folder).join(label))
            .collect();
        for p in &paths {
            std::fs::create_dir_all(p)?;
        }
        let [memory, cpu, pids] = [&paths[0], &paths[1], &paths[2]];
        std::fs::write(
            memory.join("memory.limit_in_bytes"),
            limits.memory_bytes.to_string(),
        )?;
        // Without swap accounting this file is absent; the limit above still holds RAM.
        let _ = std::fs::write(
            memory.join("memory.memsw.limit_in_bytes"),
            limits.memory_bytes.to_string(),
        );
        // Socket buffers are kernel memory cgroup v1 charges to no one until a TCP limit
        // is set: without it, a replica filling connections on its own loopback could
        // pin gigabytes of the machine's memory. With it, they are charged to the
        // replica and held to a budget as large as its memory limit.
        if let Err(e) = std::fs::write(
            memory.join("memory.kmem.tcp.limit_in_bytes"),
            limits.memory_bytes.to_string(),
        ) {
            tracing::warn!(error = %e, "socket memory cannot be limited per replica");
        }
        std::fs::write(cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())?;
        std::fs::write(
            cpu.join("cpu.cfs_quota_us"),
            (limits.cpu_millis * CPU_PERIOD_US / 1000)
                .max(1000)
                .to_string(),
        )?;
        std::fs::write(pids.join("pids.max"), limits.pids.to_string())?;
        Ok(Cgroup { paths })
    }

    /// The cgroup `label` of this server's, as [`Cgroups::create`] made it.
    pub fn named(&self, label: &str) -> Cgroup {
        Cgroup {
            paths: CONTROLLERS
                .iter()
                .map(|c| Path::new(ROOT).join(c).join(&self.folder).join(label))
                .collect(),
        }
    }

    /// Whether the cgroup `label` exists.
    pub fn exists(&self, label: &str) -> bool {
        Path::new(ROOT)
            .join("pids")
            .join(&self.folder)
            .join(label)
            .is_dir()
    }

    /// Stops every process in every cgroup of this server but those in `keep` (the
    /// replicas a new server adopts) and removes them: what a previous server left
    /// behind.
    pub fn reap_all(&self, keep: &std::collections::HashSet<String>) -> usize {
        let base = Path::new(ROOT).join("pids").join(&self.folder);
        let labels: Vec<String> = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|label| !keep.contains(label))
            .collect();
        let mut reaped = 0;
        for label in labels {
            let cg = self.named(&label);
            if !cg.pids().is_empty() {
                reaped += 1;
            }
            cg.kill_and_remove();
        }
        reaped
    }

    /// Removes this server's (empty) folders: the server is stopping.
    pub fn remove(&self) {
        for c in CONTROLLERS {
            let _ = std::fs::remove_dir(Path::new(ROOT).join(c).join(&self.folder));
        }
    }
}

impl Cgroup {
    /// Another handle on the same cgroup, for work on the blocking pool. Only the group's
    /// owner removes it.
    pub fn handle(&self) -> Cgroup {
        Cgroup {
            paths: self.paths.clone(),
        }
    }

    /// The `cgroup.procs` file of each controller: writing a pid there moves it in.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.paths.iter().map(|p| p.join("cgroup.procs")).collect()
    }

    /// Moves `pid` (and so everything it starts from now on) into the cgroup.
    pub fn add(&self, pid: i32) -> std::io::Result<()> {
        for p in &self.paths {
            std::fs::write(p.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.paths[2].join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Whether the kernel killed a process here for going over the memory limit.
    pub fn out_of_memory(&self) -> bool {
        std::fs::read_to_string(self.paths[0].join("memory.oom_control"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
    }

    /// SIGKILLs whatever is still inside, then removes the cgroup.
    pub fn kill_and_remove(&self) {
        // Usually only pasta is left when the group ends; it dies within a millisecond.
        // A group whose last tasks are still exiting cannot be removed yet (EBUSY), which
        // takes longer when many groups end at once: tried again until it goes.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            for pid in self.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let left = self
                .paths
                .iter()
                .filter(|p| p.exists() && std::fs::remove_dir(p).is_err())
                .count();
            if left == 0 || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
