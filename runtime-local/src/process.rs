//! Spawning and stopping one process group: sandboxed and limited where the runtime
//! isolates tenants, a plain process group where it runs single-tenant.

use super::cgroup::{Cgroup, Limits};
use super::sandbox::{self, Sandbox};
use super::{Shared, pids};
use crate::blocking::blocking;
use micro_tenant::toolchain::{Toolchains, VENV};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use tokio::process::{Child, Command};
use tracing::Instrument;

/// What a spawned process needs to know about itself.
pub(crate) struct Launch<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub command: &'a str,
    pub dir: &'a Path,
    pub log: &'a Path,
    /// `$PORT`: where the process listens (inside its sandbox, if it has one).
    pub port: Option<u16>,
    /// The host's side of `port` (the same number when unsandboxed).
    pub host_port: u16,
    pub env: Vec<(&'a str, &'a str)>,
    /// The folder of its certificate identity's files (`cert.pem`, `key.pem`).
    pub identity: Option<&'a Path>,
    /// Names the pid file: `replica-0`, `build`, …
    pub role: String,
    pub limits: Limits,
    pub toolchain: Toolchains,
    /// Whether its spec pins an interpreter (linked into its checkout's
    /// [`super::interpreters::PINNED_BIN`]).
    pub pinned: bool,
    /// Marks its lines in the log: `build`, or a replica's number when there are several.
    pub log_tag: Option<String>,
}

/// The build command with the checkout's virtualenv made first (once per checkout), for
/// a Python folder: its own environment per revision, nothing shared.
pub(crate) fn build_command(toolchains: Toolchains, build: &str) -> String {
    if toolchains.python {
        format!("{}\n{build}", Toolchains::make_venv())
    } else {
        build.to_owned()
    }
}

/// PATH (and VIRTUAL_ENV) for a process working in `app`, on top of `base`: the
/// checkout's virtualenv for Python, its `node_modules/.bin` for Node.
fn toolchain_env(
    toolchains: Toolchains,
    pinned: bool,
    app: &str,
    base: &str,
) -> Vec<(&'static str, String)> {
    let mut path = Vec::new();
    let mut out = Vec::new();
    if toolchains.python {
        path.push(format!("{app}/{VENV}/bin"));
        out.push(("VIRTUAL_ENV", format!("{app}/{VENV}")));
    }
    if toolchains.node {
        path.push(format!("{app}/node_modules/.bin"));
    }
    // The pinned interpreter before the machine's default (a virtualenv is made from it).
    if pinned {
        path.push(format!("{app}/{}", super::interpreters::PINNED_BIN));
    }
    if !path.is_empty() {
        path.push(base.to_owned());
        out.push(("PATH", path.join(":")));
    }
    out
}

/// A running process group and the pid file that lets a restarted server find it.
pub(crate) struct Group {
    pub child: Child,
    pgid: Option<i32>,
    /// Its leader's start time, which tells it from a later process with its pid.
    start: u64,
    pid_file: Option<PathBuf>,
    /// Names its cgroup and its output's pipe.
    label: String,
    fifo: PathBuf,
    /// The first process inside the sandbox: its network namespace is the service's.
    inner: Option<i32>,
    cgroup: Option<Cgroup>,
    /// Set when the group ended with the kernel killing it for memory.
    oom_killed: bool,
    /// Where the host reaches it: the launch's `host_port`, or another if that one was
    /// taken before pasta (or its holes) could bind it.
    host_port: u16,
    /// Its network's holes, when the server keeps them (no egress).
    holes: Option<super::holes::Holes>,
}

/// How to tell that a replica is ready, without borrowing its [`Group`].
#[derive(Clone)]
pub(crate) struct Probe {
    inner: Option<i32>,
    /// The way into replicas' networks, when the server keeps their holes.
    network: Option<Arc<super::holes::Network>>,
}

impl Probe {
    /// The probe of a replica whose sandbox's first process is `inner` (`None`
    /// unsandboxed).
    pub fn of(inner: Option<i32>, network: Option<Arc<super::holes::Network>>) -> Self {
        Probe { inner, network }
    }

    /// Whether the replica is ready: it listens on `port` (inside its sandbox, if it has
    /// one) and, given a `path`, a GET there through `host_port` answers below 500 (over
    /// TLS with `tls`, for a service that serves it). If not, why not, in words for
    /// `micro status`.
    pub async fn ready(
        &self,
        port: u16,
        host_port: u16,
        path: Option<&str>,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<(), String> {
        if !self.listening(port).await {
            return Err(format!("nothing listens on $PORT ({port}) yet"));
        }
        match path {
            None => Ok(()),
            Some(path) => match http_status(self.connect(host_port), path, tls.cloned()).await {
                Some(code) if code < 500 => Ok(()),
                Some(code) => Err(format!("GET {path} answered {code}")),
                None => Err(format!("GET {path} got no HTTP answer")),
            },
        }
    }

    /// A connection to the replica behind `host_port`: made inside its network when the
    /// server keeps its holes (nothing relays the probe), else to the port itself.
    async fn connect(&self, host_port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let address = format!("127.0.0.1:{host_port}");
        match self
            .network
            .as_ref()
            .and_then(|n| n.connect_direct(&address))
        {
            Some(direct) => tokio::net::TcpStream::from_std(direct.await?),
            None => tokio::net::TcpStream::connect(address).await,
        }
    }

    /// Whether the process listens on `port` (inside its sandbox, if it has one).
    async fn listening(&self, port: u16) -> bool {
        match self.inner {
            Some(pid) => blocking(move || sandbox::listens(pid, port))
                .await
                .unwrap_or(false),
            None => matches!(
                tokio::time::timeout(
                    std::time::Duration::from_millis(200),
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                )
                .await,
                Ok(Ok(_))
            ),
        }
    }
}

/// The status code of `GET path` on a local port, or `None` without an HTTP answer
/// within a second: hyper's client on one new connection, no pool, no redirect; over TLS
/// with `tls` (the platform's client certificate, taking only the service's own).
async fn http_status(
    connecting: impl std::future::Future<Output = std::io::Result<tokio::net::TcpStream>>,
    path: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Option<u16> {
    let exchange = async {
        let tcp = connecting.await.ok()?;
        match tls {
            None => get(tcp, path).await,
            Some(config) => {
                // The verifier checks the service's identity, not a host name.
                let name = rustls::pki_types::ServerName::try_from("service").ok()?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .ok()?;
                get(stream, path).await
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
}

/// `GET path` on `io` with HTTP/1.1: the answer's status.
async fn get<S>(io: S, path: &str) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .ok()?;
    let driving = tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::USER_AGENT, "micro-health")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    let status = sender.send_request(request).await.ok()?.status().as_u16();
    driving.abort();
    Some(status)
}

/// The service's log, opened for appending (its folder made first), off the async
/// threads.
async fn open_log(path: &Path) -> std::io::Result<tokio::fs::File> {
    let path = path.to_owned();
    let file = blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        OpenOptions::new().create(true).append(true).open(path)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(tokio::fs::File::from_std(file))
}

/// Starts `sh -c COMMAND` in a new process group with a clean environment: only PATH,
/// HOME (its own folder), the platform's variables and the spec's `env`. In a sandbox and
/// a cgroup when the runtime has them.
pub(crate) async fn spawn(shared: &Shared, l: &Launch<'_>) -> std::io::Result<Group> {
    let log = open_log(l.log).await?;
    let toolchain_env = match &shared.isolation.sandbox {
        Some(_) => toolchain_env(
            l.toolchain,
            l.pinned,
            sandbox::APP_DIR,
            sandbox::SANDBOX_PATH,
        ),
        None => toolchain_env(
            l.toolchain,
            l.pinned,
            &l.dir.to_string_lossy(),
            &shared.path_env,
        ),
    };
    // The cgroup first: the sandbox starts inside it, so its cgroup namespace's root is
    // the replica's own, and nothing it runs ever escapes its limits.
    let label = format!(
        "{}.{}.{}.{}-{}",
        l.namespace,
        l.name,
        l.role,
        *SERVER_RUN,
        LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    // Output goes through the platform, which stamps each line with the time and where it
    // came from, by a named pipe the process holds both ends of: it never writes into a
    // pipe nobody reads, so it outlives the server, and the next server reads on.
    let fifo = shared.dirs.pids.join(format!("{label}.fifo"));
    let (output, input) = {
        let fifo = fifo.clone();
        blocking(move || log_pipe(&fifo))
            .await
            .map_err(std::io::Error::other)??
    };
    let cgroup = match shared.isolation.cgroups.clone() {
        Some(cgroups) => {
            let (label, limits) = (label.clone(), l.limits);
            Some(
                blocking(move || cgroups.create(&label, limits))
                    .await
                    .map_err(std::io::Error::other)??,
            )
        }
        None => None,
    };
    let (mut cmd, args_file) = match &shared.isolation.sandbox {
        Some(sandbox) => {
            let uid = shared
                .sandbox_uid(l.namespace)?
                .ok_or_else(|| std::io::Error::other("a sandbox without a uid"))?;
            let jail = sandbox::Jail {
                code: l.dir,
                namespace: l.namespace,
                uid,
                files: sandbox::RunFiles {
                    trust: shared.isolation.trust.as_deref(),
                    platform_ca: shared.isolation.platform_ca.as_deref(),
                    identity: l.identity,
                },
                cgroup: cgroup.as_ref(),
                tmp_bytes: l.limits.memory_bytes,
                label: &label,
            };
            let (cmd, file) = sandbox.command(&jail, l.command)?;
            (cmd, Some(file))
        }
        None => {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c")
                .arg(l.command)
                .env_clear()
                .env("PATH", &shared.path_env)
                .env("HOME", l.dir)
                .stdin(Stdio::null());
            (cmd, None)
        }
    };
    // The sandbox's outer process works in the checkout too: the reaper finds it there.
    cmd.current_dir(l.dir)
        .env("LANG", "C.UTF-8")
        .env("MICRO_NAMESPACE", l.namespace)
        .env("MICRO_SERVICE_NAME", l.name)
        .stdout(Stdio::from(input.try_clone()?))
        .stderr(Stdio::from(input))
        .process_group(0)
        .kill_on_drop(false);
    if let Some(port) = l.port {
        cmd.env("PORT", port.to_string());
    }
    if let Some(bundle) = &shared.isolation.trust {
        // Python, curl, Go and OpenSSL-based clients read SSL_CERT_FILE by default.
        let inside = match &shared.isolation.sandbox {
            Some(_) => std::path::Path::new(super::sandbox::TRUST_FILE),
            None => bundle.as_path(),
        };
        // Node reads its extra roots from its own variable (its fetch included).
        cmd.env("SSL_CERT_FILE", inside)
            .env("MICRO_TLS_CA", inside)
            .env("NODE_EXTRA_CA_CERTS", inside);
    }
    if let Some(ca) = &shared.isolation.platform_ca {
        let inside = match &shared.isolation.sandbox {
            Some(_) => std::path::Path::new(sandbox::PLATFORM_CA_FILE),
            None => ca.as_path(),
        };
        cmd.env("MICRO_PLATFORM_CA", inside);
    }
    if let Some(dir) = l.identity {
        let inside = match &shared.isolation.sandbox {
            Some(_) => std::path::PathBuf::from(sandbox::IDENTITY_DIR),
            None => dir.to_owned(),
        };
        cmd.env("MICRO_TLS_CERT", inside.join("cert.pem"))
            .env("MICRO_TLS_KEY", inside.join("key.pem"));
    }
    // The deployment's variables: its identity's key is not among them (files, above).
    for (k, v) in &l.env {
        cmd.env(k, v);
    }
    for (k, v) in toolchain_env {
        cmd.env(k, v);
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = blocking(move || {
                if let Some(cg) = cgroup {
                    cg.kill_and_remove();
                }
                let _ = std::fs::remove_file(fifo);
            })
            .await;
            return Err(e);
        }
    };
    // Our copies of the write end go with the command, so the pipe ends with the child.
    drop(cmd);
    tokio::spawn(
        super::logs::copy_lines(output, log, l.log.to_owned(), l.log_tag.clone())
            .instrument(tracing::Span::current()),
    );
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let pid_file = match pgid {
        Some(pgid) => {
            let (dir, label) = (
                shared.dirs.pids.clone(),
                format!("{}.{}.{}", l.namespace, l.name, l.role),
            );
            blocking(move || pids::record(&dir, &label, pgid))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(|e| tracing::warn!(error = %e, "cannot record pid"))
                .ok()
        }
        None => None,
    };
    let mut group = Group {
        child,
        pgid,
        start: pgid.map_or(0, pids::started),
        pid_file,
        label,
        fifo,
        inner: None,
        cgroup,
        oom_killed: false,
        host_port: l.host_port,
        holes: None,
    };
    let confined = group.confine(shared, l).await;
    // Read by now (or never going to be): bubblewrap parses it before it forks.
    drop(args_file);
    if let Err(e) = confined {
        group.terminate(std::time::Duration::ZERO).await;
        return Err(e);
    }
    Ok(group)
}

/// Numbers each launch's cgroup and argument file apart.
static LAUNCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tells this server's launches from those of the server before it, whose replicas it
/// may have adopted (their labels must never be taken again).
static SERVER_RUN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:x}")
});

/// A named pipe at `path` (made again if one is there): its end to read from, and an end
/// for the process's output that it can also read from, so the pipe always has a reader.
fn log_pipe(path: &Path) -> std::io::Result<(tokio::net::unix::pipe::Receiver, std::fs::File)> {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(
        path,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )?;
    let output = tokio::net::unix::pipe::OpenOptions::new().open_receiver(path)?;
    let input = OpenOptions::new().read(true).write(true).open(path)?;
    Ok((output, input))
}

/// Reads on from the named pipe of a process an earlier server started.
pub(crate) async fn follow_output(
    fifo: &Path,
    log: &Path,
    tag: Option<String>,
) -> std::io::Result<()> {
    let file = open_log(log).await?;
    let output = tokio::net::unix::pipe::OpenOptions::new().open_receiver(fifo)?;
    tokio::spawn(
        super::logs::copy_lines(output, file, log.to_owned(), tag)
            .instrument(tracing::Span::current()),
    );
    Ok(())
}

impl Group {
    /// If sandboxed, waits for a freshly spawned group's sandbox, connects its network
    /// and lets it run (it waits on its standard input until then). It is in its cgroup
    /// already: the launcher joins it first.
    async fn confine(&mut self, shared: &Shared, l: &Launch<'_>) -> std::io::Result<()> {
        let Some(pid) = self.pgid else {
            return Err(std::io::Error::other("the process has no pid"));
        };
        if shared.isolation.sandbox.is_some() {
            let (inner, _held) = Sandbox::inner_pids(pid.unsigned_abs()).await?;
            self.inner = Some(inner);
        }
        if let (Some(sandbox), Some(inner)) = (&shared.isolation.sandbox, self.inner) {
            // Without egress the server keeps a replica's two holes itself; a build has
            // pasta's network behind its wall, or none.
            if let (Some(network), Some(port), false) = (&shared.network, l.port, sandbox.egress())
            {
                let api = sandbox.to_api(l.namespace);
                let mut attempts: u32 = 0;
                let holes = loop {
                    match super::holes::open(
                        network.clone(),
                        inner,
                        self.host_port,
                        port,
                        api.clone(),
                    )
                    .await
                    {
                        Ok(holes) => break holes,
                        // Free when picked, taken since: another port.
                        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts < 5 => {
                            attempts += 1;
                            self.host_port = free_port()?;
                        }
                        Err(e) => return Err(e),
                    }
                };
                self.holes = Some(holes);
            } else if l.port.is_some() || sandbox.builds_connect() {
                let pid_file = shared.dirs.pids.join(format!("pasta.{pid}"));
                // A sandbox always comes with cgroups (see `Isolation::sandboxed`).
                let cg = self
                    .cgroup
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other("a sandbox without a cgroup"))?;
                let procs = cg.procs_files();
                // Tried again, a little later each time: a free port can be taken by
                // anyone between our check and pasta's bind, and a sandbox whose first
                // process is still changing credentials is briefly not dumpable, so
                // pasta cannot open its network namespace yet.
                let mut attempts: u32 = 0;
                loop {
                    let forward = l.port.map(|port| (self.host_port, port));
                    let Err(e) = sandbox
                        .connect(l.namespace, inner, forward, &pid_file, &procs)
                        .await
                    else {
                        break;
                    };
                    // pasta runs in the replica's cgroup; killed there, it did not fit.
                    let group = cg.handle();
                    if blocking(move || group.out_of_memory())
                        .await
                        .map_err(std::io::Error::other)?
                    {
                        return Err(std::io::Error::other(if l.port.is_some() {
                            "the replica's network (pasta, for --service-egress, about 30 MiB) does not fit in its memory limit; raise resources.memory"
                        } else {
                            "the build's network (pasta, about 30 MiB) does not fit in the service's memory limit; raise resources.memory"
                        }));
                    }
                    if attempts >= 5 {
                        return Err(e);
                    }
                    attempts += 1;
                    tracing::debug!(error = %e, attempts, "network setup failed; trying again");
                    if l.port.is_some() {
                        self.host_port = free_port()?;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempts)))
                        .await;
                }
            }
            if let Some(mut go) = self.child.stdin.take() {
                tokio::io::AsyncWriteExt::write_all(&mut go, b"go\n").await?;
            }
        }
        Ok(())
    }

    /// The host port the platform reaches it on.
    pub fn host_port(&self) -> u16 {
        self.host_port
    }

    /// What a later server needs to find it, check it is this process and adopt it.
    pub fn running(&self, listen: u16, log_tag: Option<String>) -> Option<super::adopt::Running> {
        Some(super::adopt::Running {
            pgid: self.pgid?,
            start: self.start,
            inner: self.inner,
            host_port: self.host_port,
            listen,
            cgroup: self.cgroup.as_ref().map(|_| self.label.clone()),
            fifo: self.fifo.clone(),
            pid_file: self.pid_file.clone(),
            log_tag,
            holes: self.holes.is_some(),
        })
    }

    pub fn probe(&self, network: Option<Arc<super::holes::Network>>) -> Probe {
        Probe {
            inner: self.inner,
            network,
        }
    }

    /// Whether the kernel killed it for going over its memory limit (after `wait`).
    pub fn oom_killed(&self) -> bool {
        self.oom_killed
    }

    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        if let Some(cg) = self.cgroup.as_ref().map(Cgroup::handle) {
            self.oom_killed = blocking(move || cg.out_of_memory()).await.unwrap_or(false);
        }
        // The leader is gone; anything it left in its group goes too.
        self.signal(Signal::SIGKILL);
        self.forget().await;
        status
    }

    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(Pid::from_raw(pgid), sig);
        }
    }

    async fn forget(&mut self) {
        let (pid_file, cgroup) = (self.pid_file.take(), self.cgroup.take());
        let fifo = std::mem::take(&mut self.fifo);
        let _ = blocking(move || {
            if !fifo.as_os_str().is_empty() {
                let _ = std::fs::remove_file(fifo);
            }
            if let Some(path) = pid_file {
                let _ = std::fs::remove_file(path);
            }
            if let Some(cg) = cgroup {
                cg.kill_and_remove();
            }
        })
        .await;
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
        self.forget().await;
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Human words for how a process ended.
/// The last `bytes` of the log at `path` (from a line's start), if it can be read.
pub(crate) fn log_tail(path: &Path, bytes: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(bytes))).ok()?;
    let mut tail = Vec::new();
    file.take(bytes).read_to_end(&mut tail).ok()?;
    let tail = String::from_utf8_lossy(&tail);
    Some(match tail.split_once('\n') {
        Some((_, rest)) if len > bytes => rest.to_owned(),
        _ => tail.into_owned(),
    })
}

/// What pip, npm, go, git or curl print when a name cannot be resolved or an address
/// cannot be reached: the first such words in `log`, if any.
pub(crate) fn network_failure(log: &str) -> Option<&'static str> {
    const SIGNS: [&str; 10] = [
        "Temporary failure in name resolution",
        "Name or service not known",
        "Could not resolve host",
        "EAI_AGAIN",
        "ENOTFOUND",
        "Network is unreachable",
        "Failed to establish a new connection",
        "ECONNREFUSED",
        "dial tcp: lookup",
        "No matching distribution found",
    ];
    SIGNS.into_iter().find(|sign| log.contains(sign))
}

pub(crate) fn describe(status: &ExitStatus, oom_killed: bool) -> String {
    use std::os::unix::process::ExitStatusExt;
    if oom_killed {
        return "was killed for using more memory than its limit (resources.memory)".to_owned();
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "exited".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_that_needed_the_network_is_told_apart() {
        let pip = "[build] WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(': Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')'\n[build] ERROR: No matching distribution found for flask\n";
        assert!(network_failure(pip).is_some());
        let npm = "[build] npm error code EAI_AGAIN\n[build] npm error request to https://registry/ failed\n";
        assert_eq!(network_failure(npm), Some("EAI_AGAIN"));
        assert_eq!(
            network_failure("[build] SyntaxError: invalid syntax\n"),
            None
        );
    }

    #[test]
    fn a_log_tail_starts_at_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, "first line\nsecond line\nthird\n").unwrap();
        assert_eq!(log_tail(&log, 14).as_deref(), Some("third\n"));
        assert_eq!(
            log_tail(&log, 1000).as_deref(),
            Some("first line\nsecond line\nthird\n")
        );
        assert_eq!(log_tail(&dir.path().join("none"), 10), None);
    }
}
