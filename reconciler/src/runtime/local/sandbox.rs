//! The sandbox every tenant process runs in: bubblewrap for the namespaces (PID, mount,
//! IPC, UTS, network) and pasta for the only two ways through the network namespace's
//! wall: the platform's call/readiness traffic in, and the platform API out.
//!
//! Chosen over hand-written namespace code: bubblewrap and pasta are small, audited and
//! packaged everywhere; `setpriv` (util-linux) drops to the tenant's identity inside.
//! Inside, a service sees: read-only system folders, its own checkout at `/app`, a
//! private `/tmp` and `/proc`, its own loopback with `$PORT`, and the API port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// Where a sandboxed service finds the CA bundle it trusts.
pub(crate) const TRUST_FILE: &str = "/run/micro/ca.pem";
/// Where the platform CA alone appears inside the sandbox.
pub(crate) const PLATFORM_CA_FILE: &str = "/run/micro/platform-ca.pem";

/// What the platform puts under `/run/micro` for a service (host paths).
#[derive(Clone, Copy, Default)]
pub(crate) struct RunFiles<'a> {
    /// The CA bundle: the system's roots and the platform CA.
    pub trust: Option<&'a Path>,
    /// The platform CA alone.
    pub platform_ca: Option<&'a Path>,
    /// The folder of its certificate identity.
    pub identity: Option<&'a Path>,
}
/// Where a sandboxed service finds its certificate and key (`cert.pem`, `key.pem`).
pub(crate) const IDENTITY_DIR: &str = "/run/micro/identity";
/// Where a service's checkout appears inside its sandbox.
pub(crate) const APP_DIR: &str = "/app";
/// The only PATH a sandboxed process gets: system folders, nothing of the server's.
pub(crate) const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Tenant identities: `BASE_UID + hash(namespace) % UID_SPAN`, never 0, never a system uid.
const BASE_UID: u32 = 3_000_000;
const UID_SPAN: u32 = 1_000_000;

/// Where each namespace's services reach the platform API on the host: a port of its
/// own, so the platform tells their traffic from people's and from other tenants' (for
/// connection caps and login throttling) by where it arrives. Inside the sandbox the API
/// keeps its one address; the sandbox's network maps it to the namespace's door.
pub trait ApiDoors: Send + Sync {
    /// The host port on 127.0.0.1 of `namespace`'s door, opened on first use.
    fn port(&self, namespace: &str) -> std::io::Result<u16>;
    /// `namespace` is gone: its door closes.
    fn close(&self, namespace: &str);
}

/// How the local runtime isolates tenants.
#[derive(Clone)]
pub struct SandboxOptions {
    /// The platform API, the only host address a service can reach.
    pub api: SocketAddr,
    /// Per-namespace doors to the API; without them, services reach `api` itself.
    pub doors: Option<std::sync::Arc<dyn ApiDoors>>,
    /// Outbound connections beyond the host (internet), if the operator allows them.
    pub egress: bool,
}

impl std::fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxOptions")
            .field("api", &self.api)
            .field("doors", &self.doors.is_some())
            .field("egress", &self.egress)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox needs root (bubblewrap's privileged mode and per-tenant uids)")]
    NotRoot,
    #[error("`{0}` was not found on PATH (install bubblewrap, passt and util-linux)")]
    Missing(&'static str),
    #[error("bubblewrap cannot build a sandbox here: {0}")]
    Broken(String),
}

/// The tools, found once at start.
#[derive(Clone, Debug)]
pub struct Sandbox {
    bwrap: PathBuf,
    pasta: PathBuf,
    options: SandboxOptions,
}

fn which(tool: &'static str) -> Result<PathBuf, SandboxError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/bin".into()])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .ok_or(SandboxError::Missing(tool))
}

impl Sandbox {
    /// Finds the tools and proves a sandbox can be built on this machine.
    pub fn detect(options: SandboxOptions) -> Result<Self, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(SandboxError::NotRoot);
        }
        let sandbox = Sandbox {
            bwrap: which("bwrap")?,
            pasta: which("pasta")?,
            options,
        };
        // setpriv runs inside, from the read-only /usr.
        if !Path::new("/usr/bin/setpriv").is_file() {
            return Err(SandboxError::Missing("setpriv"));
        }
        let probe = probe_dir()?;
        let out = std::process::Command::new(&sandbox.bwrap)
            .args(sandbox.args(&probe, 65534, RunFiles::default()))
            .args(["/bin/true"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| SandboxError::Broken(e.to_string()))?;
        let _ = std::fs::remove_dir(&probe);
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(SandboxError::Broken(why.trim().to_owned()));
        }
        Ok(sandbox)
    }

    /// The uid (and gid) a namespace's processes run as. A hash, so it needs no registry;
    /// two namespaces sharing one would still be apart by every namespace and cgroup,
    /// the uid being a second wall.
    pub fn uid_of(namespace: &str) -> u32 {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(namespace.as_bytes());
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        BASE_UID + n % UID_SPAN
    }

    /// bubblewrap's arguments up to (and including) the identity drop; the command follows.
    fn args(&self, code: &Path, uid: u32, files: RunFiles<'_>) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = [
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--hostname",
            "service",
            "--ro-bind",
            "/usr",
            "/usr",
            "--ro-bind",
            "/etc",
            "/etc",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        .iter()
        .map(Into::into)
        .collect();
        // Merged-/usr systems link these into /usr; older ones have real folders.
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(top) {
                Ok(target) => {
                    a.extend(["--symlink".into(), target.into_os_string(), top.into()]);
                }
                Err(_) if Path::new(top).is_dir() => {
                    a.extend(["--ro-bind".into(), top.into(), top.into()]);
                }
                Err(_) => {}
            }
        }
        if files.trust.is_some() || files.platform_ca.is_some() || files.identity.is_some() {
            // Made by bubblewrap under the server's umask otherwise: the tenant could not
            // enter it.
            a.extend([
                "--perms".into(),
                "0755".into(),
                "--dir".into(),
                "/run/micro".into(),
            ]);
        }
        for (host, inside) in [
            (files.trust, TRUST_FILE),
            (files.platform_ca, PLATFORM_CA_FILE),
            (files.identity, IDENTITY_DIR),
        ] {
            if let Some(host) = host {
                a.extend([
                    "--ro-bind".into(),
                    host.as_os_str().to_owned(),
                    inside.into(),
                ]);
            }
        }
        a.extend([
            "--bind".into(),
            code.as_os_str().to_owned(),
            APP_DIR.into(),
            "--chdir".into(),
            APP_DIR.into(),
            "--".into(),
            "/usr/bin/setpriv".into(),
            format!("--reuid={uid}").into(),
            format!("--regid={uid}").into(),
            "--clear-groups".into(),
            "--bounding-set=-all".into(),
            "--inh-caps=-all".into(),
            "--no-new-privs".into(),
        ]);
        a
    }

    /// `bwrap … -- setpriv … /bin/sh -c COMMAND`, held at a `read` of its standard input
    /// until [`Sandbox::connect`] has given it its network and the runtime its cgroup.
    /// (bubblewrap's own `--block-fd` holds it while the process is not yet dumpable,
    /// when pasta cannot open its network namespace.)
    pub(crate) fn command(
        &self,
        code: &Path,
        namespace: &str,
        command: &str,
        files: RunFiles<'_>,
    ) -> Command {
        let mut cmd = Command::new(&self.bwrap);
        cmd.args(self.args(code, Self::uid_of(namespace), files))
            .args([
                "/bin/sh",
                "-c",
                r#"read -r _; exec /bin/sh -c "$0""#,
                command,
            ])
            .stdin(Stdio::piped())
            .env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("HOME", APP_DIR)
            .env("TMPDIR", "/tmp");
        cmd
    }

    /// The sandbox's first process (its PID 1, whose network namespace is the service's)
    /// and the held command under it, once both exist.
    pub(crate) async fn inner_pids(bwrap_pid: u32) -> std::io::Result<(i32, i32)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let child_of = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .ok()
                .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()))
        };
        loop {
            if let Some(inner) = child_of(bwrap_pid)
                && let Some(command) = child_of(inner)
            {
                return Ok((
                    i32::try_from(inner).map_err(std::io::Error::other)?,
                    i32::try_from(command).map_err(std::io::Error::other)?,
                ));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other("the sandbox did not start"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The namespaces' doors to the API, if the server has them.
    pub fn doors(&self) -> Option<&std::sync::Arc<dyn ApiDoors>> {
        self.options.doors.as_ref()
    }

    /// Whether sandboxes reach beyond this machine (`--service-egress`).
    pub(crate) fn egress(&self) -> bool {
        self.options.egress
    }

    /// Gives the sandbox of `inner` (a service of `namespace`) its holes: host
    /// `127.0.0.1:<host port>` → its `<port>` (`forward`, for replicas), its
    /// `127.0.0.1:<api port>` → the platform API (the namespace's door, when there are
    /// doors), and the internet if egress is on. pasta returns once they are in place,
    /// leaving a daemon whose pid this returns: it does not notice the namespace going
    /// away, so the caller puts it in the replica's cgroup, which ends it.
    pub(crate) async fn connect(
        &self,
        namespace: &str,
        inner: i32,
        forward: Option<(u16, u16)>,
        pid_file: &Path,
    ) -> std::io::Result<i32> {
        let api = self.options.api.port();
        let to_api = match &self.options.doors {
            Some(doors) => format!("{api}:{}", doors.port(namespace)?),
            None => api.to_string(),
        };
        let mut cmd = Command::new(&self.pasta);
        cmd.args(["--runas", "0", "--quiet", "--netns-only", "--pid"])
            .arg(pid_file)
            .arg("--netns")
            .arg(format!("/proc/{inner}/ns/net"))
            .arg("--tcp-ports")
            .arg(forward.map_or("none".to_owned(), |(host_port, port)| {
                format!("127.0.0.1/{host_port}:{port}")
            }))
            .arg("--tcp-ns")
            .arg(to_api)
            // pasta forwards every bound UDP port both ways unless told otherwise.
            .args(["--udp-ports", "none", "--udp-ns", "none", "--no-map-gw"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_clear();
        if self.options.egress {
            cmd.arg("--config-net");
        }
        let out = cmd.output().await?;
        if out.status.success() {
            let pid = std::fs::read_to_string(pid_file)?;
            let _ = std::fs::remove_file(pid_file);
            pid.trim().parse().map_err(std::io::Error::other)
        } else {
            Err(std::io::Error::other(format!(
                "network setup failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

/// Gives `uid` (as user and group) everything under `root`, without following links.
pub(crate) fn chown_tree(root: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(root, Some(uid), Some(uid))?;
    if std::fs::symlink_metadata(root)?.is_dir() {
        for entry in std::fs::read_dir(root)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

/// Whether something in the network namespace of `pid` listens on TCP `port`: a connect
/// through pasta would always succeed, so readiness reads the sockets table instead.
pub(crate) fn listens(pid: i32, port: u16) -> bool {
    let wanted = format!("{port:04X}");
    ["tcp", "tcp6"].iter().any(|table| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let mut fields = line.split_whitespace();
                let local = fields.nth(1).unwrap_or_default();
                let state = fields.nth(1).unwrap_or_default();
                state == "0A" && local.rsplit_once(':').is_some_and(|(_, p)| p == wanted)
            })
        })
    })
}

/// An empty folder for the start-up probe's `/app`.
fn probe_dir() -> Result<PathBuf, SandboxError> {
    let dir = std::env::temp_dir().join(format!("micro-sandbox-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| SandboxError::Broken(e.to_string()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_uids_are_unprivileged_and_stable() {
        let a = Sandbox::uid_of("alpha");
        assert_eq!(a, Sandbox::uid_of("alpha"));
        assert_ne!(a, Sandbox::uid_of("beta"));
        assert!((BASE_UID..BASE_UID + UID_SPAN).contains(&a));
    }

    #[test]
    fn a_listening_socket_is_found_in_the_sockets_table() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(listens(me, port));
        drop(l);
        assert!(!listens(me, port));
    }
}
