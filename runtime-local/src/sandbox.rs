//! The sandbox every tenant process runs in: bubblewrap for the namespaces (PID, mount,
//! IPC, UTS, network, cgroup) and a system-call filter ([`super::seccomp`]). The only two
//! ways through the network namespace's wall (the platform's call and health traffic in,
//! the platform API out to the namespace's door) are kept by the server
//! ([`super::holes`]), or by pasta when services have egress.
//!
//! Chosen over hand-written namespace code: bubblewrap and pasta are small, audited and
//! packaged everywhere; `setpriv` (util-linux) drops to the tenant's identity inside.
//! Inside, a service sees: read-only system folders, an `/etc` of the platform's making
//! (its own `passwd` and `group`, `hosts`, `resolv.conf`, the CA bundle and what
//! programs read, nothing else of the host's), its own checkout at `/app`, a private
//! writable `/tmp` and `/dev/shm` (memory, within its limit), its own `/proc`, its own
//! loopback with `$PORT`, and the API port.
//!
//! Nothing inside names the host's paths: bubblewrap reads its arguments from a file
//! descriptor (`--args`), so the sandbox's first process shows none; files the platform
//! makes are copied in from descriptors (`--ro-bind-data`); and a launcher puts the
//! process in its cgroups before bubblewrap makes the cgroup namespace, whose root is
//! then the replica's own.

use super::cgroup::Cgroup;
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
/// Largest `/dev/shm` a replica gets (Docker's default), within its memory limit.
const SHM_BYTES: u64 = 64 << 20;

/// What of the host's `/etc` a sandbox sees, read-only, where it exists: what the
/// dynamic linker, TLS, time zones, name lookups and the interpreters read. Never the
/// rest, where operators keep keys and credentials (`/etc/micro/stripe.key`, say).
const HOST_ETC: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "mime.types",
    "protocols",
    "services",
    "rpc",
    "host.conf",
    "gai.conf",
    "os-release",
    "debian_version",
    "bash.bashrc",
    "inputrc",
    "locale.alias",
    "magic",
    "magic.mime",
];
/// Folders of `/etc` by prefix: the interpreters' own (`python3.11`, `perl`).
const HOST_ETC_PREFIXES: &[&str] = &["python3", "perl"];

/// The files the platform writes for a namespace's `/etc`.
const MADE_ETC: [&str; 5] = ["passwd", "group", "hosts", "resolv.conf", "nsswitch.conf"];

/// How the local runtime isolates tenants.
#[derive(Clone)]
pub struct SandboxOptions {
    /// The platform API, the only host address a service can reach.
    pub api: SocketAddr,
    /// Per-namespace doors to the API; without them, services reach `api` itself.
    pub doors: Option<std::sync::Arc<dyn micro_runtime::ApiDoors>>,
    /// Outbound connections beyond the host (internet), if the operator allows them.
    pub egress: bool,
    /// Where builds may connect (`--build-egress`, `--build-egress-allow`).
    pub build: super::egress::BuildNetwork,
}

impl std::fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxOptions")
            .field("api", &self.api)
            .field("doors", &self.doors.is_some())
            .field("egress", &self.egress)
            .field("build", &self.build)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox needs root (bubblewrap's privileged mode and per-tenant uids)")]
    NotRoot,
    #[error("`{0}` was not found on PATH (install bubblewrap, passt, util-linux and bash)")]
    Missing(&'static str),
    #[error("bubblewrap cannot build a sandbox here: {0}")]
    Broken(String),
}

/// The tools, found once at start, and the sandbox's own files.
#[derive(Clone, Debug)]
pub struct Sandbox {
    bwrap: PathBuf,
    pasta: PathBuf,
    options: SandboxOptions,
    /// `<data dir>/sandbox`: the compiled filter, each namespace's `/etc` files, and
    /// argument files while their sandbox starts. The server's alone.
    dir: PathBuf,
    /// The host's `/etc` entries a sandbox sees.
    host_etc: Vec<String>,
    /// The host's resolver configuration, copied into each namespace's `/etc`.
    resolv: String,
    /// What raises a build's network wall; without it builds have no network.
    wall: Option<super::egress::WallTools>,
}

fn which(tool: &'static str) -> Result<PathBuf, SandboxError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into(), "/bin".into()])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .ok_or(SandboxError::Missing(tool))
}

/// The launcher: opens each file given at fds 3, 4, …, joins the cgroups named after
/// them (up to `--`), then becomes bubblewrap, which reads its options from fd 3 and
/// its command from what follows. The usual umask (the server's 077 would make the
/// folders bubblewrap creates, `/etc` among them, the tenant's to enter no more). bash,
/// not sh: more descriptors than dash's single digits.
const LAUNCHER: &str = "/bin/bash";

/// Everything one sandboxed process is made of.
pub(crate) struct Jail<'a> {
    /// Its checkout, at `/app`.
    pub code: &'a Path,
    pub namespace: &'a str,
    /// Its namespace's uid (and gid).
    pub uid: u32,
    pub files: RunFiles<'a>,
    /// Joined before the sandbox exists, so its cgroup namespace starts there.
    pub cgroup: Option<&'a Cgroup>,
    /// The size of its `/tmp` (memory, charged to its cgroup).
    pub tmp_bytes: u64,
    /// Names its argument file: unique among processes starting at once.
    pub label: &'a str,
}

/// An argument file, removed when its sandbox has read it (or failed to start).
pub(crate) struct ArgsFile(PathBuf);

impl Drop for ArgsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Sandbox {
    /// Finds the tools, writes the filter into `<data_dir>/sandbox`, and proves a sandbox
    /// can be built on this machine.
    pub fn detect(options: SandboxOptions, data_dir: &Path) -> Result<Self, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(SandboxError::NotRoot);
        }
        let broken = |e: std::io::Error| SandboxError::Broken(e.to_string());
        let dir = data_dir.join("sandbox");
        let _ = std::fs::remove_dir_all(dir.join("args"));
        for sub in ["args", "etc"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(broken)?;
        }
        let program = super::seccomp::program().map_err(|e| SandboxError::Broken(e.to_string()))?;
        std::fs::write(dir.join("seccomp.bpf"), program).map_err(broken)?;
        let sandbox = Sandbox {
            bwrap: which("bwrap")?,
            pasta: which("pasta")?,
            options,
            dir,
            host_etc: host_etc(Path::new("/etc")),
            resolv: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            wall: super::egress::WallTools::find(),
        };
        // setpriv runs inside, from the read-only /usr; bash launches.
        if !Path::new("/usr/bin/setpriv").is_file() {
            return Err(SandboxError::Missing("setpriv"));
        }
        if !Path::new(LAUNCHER).is_file() {
            return Err(SandboxError::Missing("bash"));
        }
        let probe = probe_dir()?;
        let namespace = ".probe";
        sandbox.prepare(namespace, 65534).map_err(broken)?;
        let jail = Jail {
            code: &probe,
            namespace,
            uid: 65534,
            files: RunFiles::default(),
            cgroup: None,
            tmp_bytes: 1 << 20,
            label: "probe",
        };
        let (mut cmd, _args) = sandbox.launch(&jail, &["/bin/true"]).map_err(broken)?;
        let out = cmd
            .current_dir(&probe)
            .stdin(Stdio::null())
            .output()
            .map_err(broken)?;
        let _ = std::fs::remove_dir(&probe);
        sandbox.forget(namespace);
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(SandboxError::Broken(why.trim().to_owned()));
        }
        Ok(sandbox)
    }

    /// Writes `namespace`'s `/etc` files (its user and group named `service`, with its
    /// uid), once it has a uid.
    pub(crate) fn prepare(&self, namespace: &str, uid: u32) -> std::io::Result<()> {
        let dir = self.dir.join("etc").join(namespace);
        std::fs::create_dir_all(&dir)?;
        let files = [
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\nservice:x:{uid}:{uid}:service:{APP_DIR}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
            format!("root:x:0:\nservice:x:{uid}:\nnogroup:x:65534:\n"),
            "127.0.0.1\tlocalhost\n127.0.1.1\tservice\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                .to_owned(),
            self.resolv.clone(),
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\nethers: files\nrpc: files\n"
                .to_owned(),
        ];
        for (name, text) in MADE_ETC.iter().zip(files) {
            let tmp = dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, text)?;
            std::fs::rename(tmp, dir.join(name))?;
        }
        Ok(())
    }

    /// Removes what [`Sandbox::prepare`] wrote: the namespace is gone.
    pub(crate) fn forget(&self, namespace: &str) {
        let _ = std::fs::remove_dir_all(self.dir.join("etc").join(namespace));
    }

    /// bubblewrap's arguments up to (and including) the identity drop; the command
    /// follows. Descriptors: the filter at 4, then the `/etc` files, then the CA files.
    fn args(&self, jail: &Jail<'_>) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--hostname",
            "service",
            "--seccomp",
            "4",
            "--ro-bind",
            "/usr",
            "/usr",
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
        // bubblewrap makes the parents of what it binds 0700: the tenant could not enter.
        for dir in ["/etc", "/etc/ssl", "/run", "/run/micro"] {
            a.extend(["--perms".into(), "0755".into(), "--dir".into(), dir.into()]);
        }
        for entry in &self.host_etc {
            let path = format!("/etc/{entry}");
            a.extend(["--ro-bind".into(), path.clone().into(), path.into()]);
        }
        let mut fd = 5;
        for name in MADE_ETC {
            a.extend([
                "--perms".into(),
                "0644".into(),
                "--ro-bind-data".into(),
                fd.to_string().into(),
                format!("/etc/{name}").into(),
            ]);
            fd += 1;
        }
        a.extend([
            "--symlink".into(),
            "/proc/self/mounts".into(),
            "/etc/mtab".into(),
            "--proc".into(),
            "/proc".into(),
            "--dev".into(),
            "/dev".into(),
        ]);
        // Writable by the tenant, sized, and memory charged to its cgroup.
        let shm = SHM_BYTES.min(jail.tmp_bytes);
        for (dir, bytes) in [("/tmp", jail.tmp_bytes), ("/dev/shm", shm)] {
            a.extend([
                "--perms".into(),
                "01777".into(),
                "--size".into(),
                bytes.max(1 << 20).to_string().into(),
                "--tmpfs".into(),
                dir.into(),
            ]);
        }
        let files = jail.files;
        for (host, inside) in [
            (files.trust, TRUST_FILE),
            (files.platform_ca, PLATFORM_CA_FILE),
        ] {
            if host.is_some() {
                a.extend([
                    "--perms".into(),
                    "0444".into(),
                    "--ro-bind-data".into(),
                    fd.to_string().into(),
                    inside.into(),
                ]);
                fd += 1;
            }
        }
        if let Some(identity) = files.identity {
            a.extend([
                "--ro-bind".into(),
                identity.as_os_str().to_owned(),
                IDENTITY_DIR.into(),
            ]);
        }
        a.extend([
            "--bind".into(),
            jail.code.as_os_str().to_owned(),
            APP_DIR.into(),
            "--chdir".into(),
            APP_DIR.into(),
        ]);
        a
    }

    /// What follows bubblewrap's options on its own command line (it takes the command
    /// from there only): the identity drop, then `command`. Nothing of the host in it.
    fn command_line(jail: &Jail<'_>, command: &[&str]) -> Vec<std::ffi::OsString> {
        let uid = jail.uid;
        let mut a: Vec<std::ffi::OsString> = vec![
            "--".into(),
            "/usr/bin/setpriv".into(),
            format!("--reuid={uid}").into(),
            format!("--regid={uid}").into(),
            "--clear-groups".into(),
            "--bounding-set=-all".into(),
            "--inh-caps=-all".into(),
            "--no-new-privs".into(),
        ];
        a.extend(command.iter().map(Into::into));
        a
    }

    /// The launcher running `bwrap … -- setpriv … COMMAND…`, and the argument file to
    /// drop once the sandbox started. The files it opens: the argument file (3), the
    /// filter (4), the namespace's `/etc` files, then the CA files.
    fn launch(
        &self,
        jail: &Jail<'_>,
        command: &[&str],
    ) -> std::io::Result<(std::process::Command, ArgsFile)> {
        let args = self.args(jail);
        let file = ArgsFile(self.dir.join("args").join(jail.label));
        let mut bytes = Vec::new();
        for arg in &args {
            bytes.extend_from_slice(arg.as_encoded_bytes());
            bytes.push(0);
        }
        std::fs::write(&file.0, bytes)?;
        let etc = self.dir.join("etc").join(jail.namespace);
        let mut opened: Vec<PathBuf> = vec![file.0.clone(), self.dir.join("seccomp.bpf")];
        opened.extend(MADE_ETC.iter().map(|name| etc.join(name)));
        opened.extend(
            [jail.files.trust, jail.files.platform_ca]
                .into_iter()
                .flatten()
                .map(Path::to_owned),
        );
        // $1 is bubblewrap, then the files, `--`, and the cgroups' `cgroup.procs`.
        let redirects: Vec<String> = (0..opened.len())
            .map(|i| format!("{}<\"${{{}}}\"", i + 3, i + 2))
            .collect();
        let script = format!(
            "umask 022; exec {redirects} || exit 125; bwrap=$1; shift {n}; \
             while [ \"$1\" != -- ]; do echo $$ > \"$1\" || exit 125; shift; done; \
             exec \"$bwrap\" --args 3 \"$@\"",
            redirects = redirects.join(" "),
            n = opened.len() + 1,
        );
        let mut cmd = std::process::Command::new(LAUNCHER);
        cmd.arg("-c")
            .arg(script)
            .arg("launch")
            .arg(&self.bwrap)
            .args(&opened)
            .args(jail.cgroup.map(Cgroup::procs_files).unwrap_or_default())
            .args(Self::command_line(jail, command))
            .stdin(Stdio::piped())
            .env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("HOME", APP_DIR)
            .env("TMPDIR", "/tmp");
        Ok((cmd, file))
    }

    /// The launcher of `sh -c COMMAND` in its sandbox, held at a `read` of its standard
    /// input until [`Sandbox::connect`] has given it its network. (bubblewrap's own
    /// `--block-fd` holds it while the process is not yet dumpable, when pasta cannot
    /// open its network namespace.)
    pub(crate) fn command(
        &self,
        jail: &Jail<'_>,
        command: &str,
    ) -> std::io::Result<(Command, ArgsFile)> {
        let (cmd, file) = self.launch(
            jail,
            &[
                "/bin/sh",
                "-c",
                r#"read -r _; exec /bin/sh -c "$0" </dev/null"#,
                command,
            ],
        )?;
        Ok((Command::from(cmd), file))
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
    pub fn doors(&self) -> Option<&std::sync::Arc<dyn micro_runtime::ApiDoors>> {
        self.options.doors.as_ref()
    }

    /// Where a sandbox of `namespace` reaches the API: the API's port, as services know
    /// it, and what answers there (the namespace's door, when there are doors).
    pub(crate) fn to_api(&self, namespace: &str) -> super::holes::ToApi {
        let api_port = self.options.api.port();
        let via = match &self.options.doors {
            Some(doors) => super::holes::Via::Door {
                doors: doors.clone(),
                namespace: namespace.to_owned(),
            },
            None => super::holes::Via::Relay(api_port),
        };
        super::holes::ToApi { api_port, via }
    }

    /// Whether sandboxes reach beyond this machine (`--service-egress`).
    pub(crate) fn egress(&self) -> bool {
        self.options.egress
    }

    /// Whether builds have a network (`--build-egress public`, and the tools for its
    /// wall are here).
    pub fn builds_connect(&self) -> bool {
        self.options.build.egress == super::egress::BuildEgress::Public && self.wall.is_some()
    }

    /// What governs a build's network, for a build that failed to reach one.
    pub fn build_network_said(&self) -> &'static str {
        match (&self.options.build.egress, &self.wall) {
            (super::egress::BuildEgress::None, _) => {
                "builds here have no network (the server runs with --build-egress none)"
            }
            (super::egress::BuildEgress::Public, None) => {
                "builds here have no network: the server found no `nft` (install nftables) to wall their network with"
            }
            (super::egress::BuildEgress::Public, Some(_)) => {
                "builds here reach public addresses only: a mirror on this machine or a private network needs --build-egress-allow HOST:PORT (and --build-env to point the tools at it)"
            }
        }
    }

    /// Gives the sandbox of `inner` (a service of `namespace`) its holes: host
    /// `127.0.0.1:<host port>` → its `<port>` (`forward`, for replicas), its
    /// `127.0.0.1:<api port>` → the platform API (the namespace's door, when there are
    /// doors), and the internet if egress is on. pasta returns once they are in place,
    /// leaving a daemon whose pid this returns. It starts in the replica's cgroup (its
    /// `cgroup.procs` files, `cgroup`): what it uses is the replica's, under the replica's
    /// limits, and it ends with the group (it does not notice the namespace going away).
    ///
    /// A build (`forward` is `None`) gets the internet behind its wall
    /// ([`super::egress`]), raised before pasta connects it, and pasta ports to the
    /// allowed mirrors on this machine's loopback instead of the API.
    pub(crate) async fn connect(
        &self,
        namespace: &str,
        inner: i32,
        forward: Option<(u16, u16)>,
        pid_file: &Path,
        cgroup: &[PathBuf],
    ) -> std::io::Result<i32> {
        let build = forward.is_none();
        // What the sandbox's loopback ports lead to on this machine's.
        let out_ports = if build {
            let Some(wall) = &self.wall else {
                return Err(std::io::Error::other("builds have no network here"));
            };
            let rules = super::egress::ruleset(
                &self.options.build.allow,
                &super::egress::resolvers(&self.resolv),
                &super::egress::host_addresses(),
            );
            wall.raise(inner, &rules).await?;
            // The allowed mirrors here, never the platform's own ports: a build has no
            // business with the API.
            let ports: Vec<String> = self
                .options
                .build
                .loopback_ports()
                .iter()
                .map(u16::to_string)
                .collect();
            if ports.is_empty() {
                "none".to_owned()
            } else {
                ports.join(",")
            }
        } else {
            let api = self.options.api.port();
            match &self.options.doors {
                Some(doors) => format!("{api}:{}", doors.port(namespace)?),
                None => api.to_string(),
            }
        };
        // $1 is pasta, then the `cgroup.procs` files up to `--`, then pasta's arguments:
        // the launcher moves itself in before pasta allocates anything.
        let mut cmd = Command::new(LAUNCHER);
        cmd.arg("-c")
            .arg(
                "pasta=$1; shift; \
                 while [ \"$1\" != -- ]; do echo $$ > \"$1\" || exit 125; shift; done; \
                 shift; exec \"$pasta\" \"$@\"",
            )
            .arg("launch")
            .arg(&self.pasta)
            .args(cgroup)
            .arg("--");
        cmd.args(["--runas", "0", "--quiet", "--netns-only", "--pid"])
            .arg(pid_file)
            .arg("--netns")
            .arg(format!("/proc/{inner}/ns/net"))
            .arg("--tcp-ports")
            .arg(forward.map_or("none".to_owned(), |(host_port, port)| {
                format!("127.0.0.1/{host_port}:{port}")
            }))
            .arg("--tcp-ns")
            .arg(out_ports)
            // pasta forwards every bound UDP port both ways unless told otherwise.
            .args(["--udp-ports", "none", "--udp-ns", "none", "--no-map-gw"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_clear();
        if self.options.egress || build {
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

/// The entries of `etc` a sandbox sees: the allowed ones that exist.
fn host_etc(etc: &Path) -> Vec<String> {
    let mut entries: Vec<String> = HOST_ETC
        .iter()
        .filter(|e| etc.join(e).exists())
        .map(|e| (*e).to_owned())
        .collect();
    if let Ok(dir) = std::fs::read_dir(etc) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if HOST_ETC_PREFIXES.iter().any(|p| name.starts_with(p)) {
                entries.push(name);
            }
        }
    }
    entries.sort();
    entries
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
    fn a_listening_socket_is_found_in_the_sockets_table() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(listens(me, port));
        drop(l);
        assert!(!listens(me, port));
    }

    #[test]
    fn only_the_allowed_parts_of_etc_are_seen() {
        let etc = tempfile::tempdir().unwrap();
        for f in [
            "ld.so.cache",
            "passwd",
            "shadow",
            "stripe.key",
            "python3.11",
            "resolv.conf",
        ] {
            std::fs::write(etc.path().join(f), "x").unwrap();
        }
        std::fs::create_dir_all(etc.path().join("micro")).unwrap();
        assert_eq!(host_etc(etc.path()), ["ld.so.cache", "python3.11"]);
    }
}
