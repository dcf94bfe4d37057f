//! Starts a platform in temp dirs and drives it like a user would.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The CAs of every platform this test process started: [`client`] trusts them all.
static CAS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// An HTTP client trusting the platforms the tests started (and nothing else).
pub fn client() -> reqwest::Client {
    let pems = CAS.lock().unwrap().join("\n");
    if pems.is_empty() {
        return reqwest::Client::new();
    }
    let config = micro_pki::client_config(&pems).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured((*config).clone())
        .build()
        .unwrap()
}

/// Makes a secret file the owner's alone, as the server asks of its secret files.
pub fn owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A byte stream to the platform: TCP, or TLS over it.
pub trait Stream: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> Stream for T {}

pub const BIN: &str = env!("CARGO_BIN_EXE_micro");
/// Generous: CI machines are slow and busy. Waiting is not a timing assertion.
// Generous: the suite passes with both cores busy with other work (issue 29).
const PATIENCE: Duration = Duration::from_secs(180);

pub struct Platform {
    pub home: PathBuf,
    pub data: PathBuf,
    /// Where the user's shell is: `micro new` and `micro clone` write here.
    pub work: PathBuf,
    pub port: u16,
    child: Option<Child>,
    server_env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Platform {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a platform whose server gets `env` on top of the usual.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        micro_pki::install_default_provider();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let mut p = Platform {
            home: root.join("home"),
            data: root.join("data"),
            work: root.join("work"),
            port: free_port(),
            child: None,
            server_env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            _tmp: tmp,
        };
        std::fs::create_dir_all(&p.work).unwrap();
        p.boot();
        p
    }

    fn boot(&mut self) {
        // The port was free when picked; under a busy test run another process may take it
        // first. Then this server says so and exits, and it starts again on another.
        for _ in 0..5 {
            let seen = self.server_log().len();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.home.with_file_name("server.log"))
                .unwrap();
            let address = format!("127.0.0.1:{}", self.port);
            let mut command = if self.activated() {
                // systemd's part: it holds the socket, the server gets it as fd 3.
                let mut c = Command::new("python3");
                c.args(["-c", SOCKET_MANAGER, &self.port.to_string(), BIN, "server"]);
                c
            } else {
                let mut c = Command::new(BIN);
                c.args(["server", "--address", &address]);
                c
            };
            let child = command
                .env("MICRO_HOME", &self.home)
                .env("MICRO_DATA_DIR", &self.data)
                // No test asks a real ACME CA for anything; those about ACME name Pebble.
                .env("MICRO_ACME_DIRECTORY", "off")
                .envs(self.server_env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            self.child = Some(child);
            let url = format!("127.0.0.1:{}", self.port);
            let ca = (!self.insecure()).then(|| self.ca());
            // Ready when *this* server says so (another one may answer on a taken port).
            let mut taken = false;
            self.wait_for("the server to answer /healthz", || {
                let new = self.server_log().get(seen..).unwrap_or_default().to_owned();
                taken = new.contains("Address already in use");
                taken || (new.contains("micro server ready") && healthz(&url, ca.as_deref()))
            });
            if !taken {
                if let Some(ca) = ca {
                    CAS.lock()
                        .unwrap()
                        .push(std::fs::read_to_string(ca).unwrap());
                }
                return;
            }
            if let Some(mut c) = self.child.take() {
                let _ = c.wait();
            }
            self.port = free_port();
        }
        panic!("no free port for the server after 5 tries");
    }

    /// Starts a platform whose listening socket a stand-in for systemd holds and hands
    /// to the server (socket activation), as a packaged install runs it.
    pub fn start_activated() -> Self {
        Self::start_with(&[(ACTIVATED, "1")])
    }

    fn activated(&self) -> bool {
        self.server_env.iter().any(|(k, _)| k == ACTIVATED)
    }

    /// What `systemctl restart micro` does to a socket-activated server: the old process
    /// stops, a new one starts on the same socket. Returns once the new one is ready.
    pub fn restart_in_place(&mut self) {
        assert!(
            self.activated(),
            "only a socket-activated platform restarts in place"
        );
        let seen = self.server_log().len();
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_for("the restarted server to be ready", || {
            self.server_log()
                .get(seen..)
                .is_some_and(|new| new.contains("micro server ready"))
        });
    }

    /// Whether this server was started with `--insecure-http`.
    pub fn insecure(&self) -> bool {
        self.server_env
            .iter()
            .any(|(k, _)| k == "MICRO_INSECURE_HTTP")
    }

    /// The platform's base URL: https, with its own CA (plain http when insecure).
    pub fn url(&self) -> String {
        let scheme = if self.insecure() { "http" } else { "https" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The platform CA's certificate, as the server made it.
    pub fn ca(&self) -> PathBuf {
        // A server on the operator's own certificate names the CA to trust for it.
        match self
            .server_env
            .iter()
            .find(|(k, _)| k == "MICRO_HARNESS_CA")
        {
            Some((_, path)) => PathBuf::from(path),
            None => self.data.join("tls").join("ca.pem"),
        }
    }

    /// `micro env add NAME <url> --ca-file <ca>` for a CLI whose home is `home`.
    pub fn env_add_args(&self, name: &str) -> Vec<String> {
        if self.insecure() {
            return vec!["env".into(), "add".into(), name.into(), self.url()];
        }
        vec![
            "env".into(),
            "add".into(),
            name.into(),
            self.url(),
            "--ca-file".into(),
            self.ca().display().to_string(),
        ]
    }

    /// An `envs.json` with one environment `p` for this platform (its CA pinned).
    pub fn env_json(&self, token: Option<&str>) -> Value {
        let ca = (!self.insecure()).then(|| std::fs::read_to_string(self.ca()).unwrap());
        serde_json::json!({"current": "p", "envs": {"p": {"url": self.url(), "token": token, "ca": ca}}})
    }

    /// A connection to the platform as a raw client would open it (TLS, pinned).
    pub fn connect(&self) -> Box<dyn Stream> {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // A server that never answers fails the test instead of hanging it.
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        if self.insecure() {
            return Box::new(tcp);
        }
        let pem = std::fs::read_to_string(self.ca()).unwrap();
        let config = micro_pki::client_config(&pem).unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        Box::new(rustls::StreamOwned::new(conn, tcp))
    }

    /// A byte stream to the platform from another loopback address (`127.0.0.2`, …): to
    /// the platform, a client other than the test's own CLI.
    pub fn connect_from(&self, from: std::net::Ipv4Addr) -> std::io::Result<Box<dyn Stream>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let tcp = rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((from, 0).into())?;
            socket
                .connect((std::net::Ipv4Addr::LOCALHOST, self.port).into())
                .await?
                .into_std()
        })?;
        tcp.set_nonblocking(false)?;
        tcp.set_read_timeout(Some(PATIENCE))?;
        if self.insecure() {
            return Ok(Box::new(tcp));
        }
        let pem = std::fs::read_to_string(self.ca())?;
        let config = micro_pki::client_config(&pem).map_err(std::io::Error::other)?;
        let name =
            rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
    }

    /// The answer (status, body) to a POST to `target` announcing a `length`-byte body
    /// before it sends any of it. Sent by hand: a client still writing a refused body
    /// may see the connection closed before it reads the answer, which would make a
    /// test a race.
    pub fn announce_body(&self, target: &str, length: usize) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = self.connect();
        write!(
            s,
            "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        .unwrap();
        // The answer comes before the body (which the server may read on, or not).
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return (status, body.to_owned());
                }
            }
            match s.read(&mut chunk) {
                Ok(n @ 1..) => answer.extend_from_slice(&chunk[..n]),
                _ => panic!("the connection ended before an answer: {answer:?}"),
            }
        }
    }

    /// An HTTP client that trusts the platform CA (and nothing else).
    pub fn http(&self) -> reqwest::Client {
        if self.insecure() {
            return reqwest::Client::new();
        }
        let pem = std::fs::read_to_string(self.ca()).unwrap();
        let config = micro_pki::client_config(&pem).unwrap();
        reqwest::Client::builder()
            .tls_backend_preconfigured((*config).clone())
            .build()
            .unwrap()
    }

    /// The admin's token, as the first start wrote it into `envs.json`.
    pub fn admin_token(&self) -> String {
        let envs: Value =
            serde_json::from_str(&std::fs::read_to_string(self.home.join("envs.json")).unwrap())
                .unwrap();
        envs["envs"]["server"]["token"].as_str().unwrap().to_owned()
    }

    /// What an admin's scraper reads at `/metrics`.
    pub fn metrics(&self) -> String {
        let token = self.admin_token();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            self.http()
                .get(format!("{}/metrics", self.url()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.home.with_file_name("server.log")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// Like `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        child.wait().unwrap()
    }

    pub fn restart(&mut self) {
        self.boot();
    }

    /// `micro server --stop-services` on this platform's data dir (the server stopped):
    /// what it prints.
    pub fn stop_services(&self) -> String {
        let out = Command::new(BIN)
            .args(["server", "--stop-services"])
            .env("MICRO_HOME", &self.home)
            .env("MICRO_DATA_DIR", &self.data)
            .envs(self.server_env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(&self.work)
            .env("MICRO_HOME", &self.home)
            .env_remove("MICRO_ENV")
            .env_remove("MICRO_NAMESPACE");
        cmd
    }

    pub fn micro(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `micro ARGS`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.micro(args);
        assert!(
            out.status.success(),
            "micro {args:?} failed: {}\n--- server log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.server_log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `micro ARGS`, asserting failure with one line on stderr; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.micro(args);
        assert!(!out.status.success(), "micro {args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line on stderr, got: {err}"
        );
        err
    }

    pub fn git(&self, dir: &Path, args: &[&str]) -> Output {
        let mut git = Command::new("git");
        if !self.insecure() {
            // What `micro clone` sets up, for clones the tests make by hand.
            git.arg("-c")
                .arg(format!("http.sslCAInfo={}", self.ca().display()));
        }
        git.args(args)
            .current_dir(dir)
            .env("MICRO_HOME", &self.home)
            // A clone trusts the platform CA through its config, which this would outrank.
            .env_remove("GIT_SSL_CAINFO")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Tess")
            .env("GIT_AUTHOR_EMAIL", "tess@example.com")
            .env("GIT_COMMITTER_NAME", "Tess")
            .env("GIT_COMMITTER_EMAIL", "tess@example.com")
            .output()
            .unwrap()
    }

    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git(dir, args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `micro status --output json` (in `ns` if given).
    pub fn status(&self, ns: Option<&str>) -> Vec<Value> {
        let mut args = vec!["status", "--output", "json"];
        if let Some(ns) = ns {
            args.extend(["--namespace", ns]);
        }
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    pub fn service(&self, ns: Option<&str>, name: &str) -> Option<Value> {
        self.status(ns).into_iter().find(|s| s["name"] == name)
    }

    /// Polls until `done` holds; panics naming `what` if it never does.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}\n--- server log ---\n{}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_running(&self, ns: Option<&str>, name: &str, revision: Option<&str>) -> Value {
        let mut last = None;
        self.wait_for(&format!("{name} to run"), || {
            last = self.service(ns, name);
            last.as_ref().is_some_and(|s| {
                s["status"] == "running"
                    && s["ready"] == s["desired"]
                    && revision.is_none_or(|r| s["revision"].as_str().unwrap().starts_with(r))
            })
        });
        last.unwrap()
    }

    /// Writes a service folder under the work dir.
    pub fn write_service(&self, dir: &str, files: &[(&str, &str)]) -> PathBuf {
        let path = self.work.join(dir);
        for (name, content) in files {
            let file = path.join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        path
    }

    /// The service processes (not their `sh -c` wrappers) running from this platform's
    /// data dir whose command line contains `needle`. Zombies do not count.
    pub fn processes(&self, needle: &str) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
                continue;
            };
            if !cwd.starts_with(&self.data) {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            if cmdline.contains(needle) && !cmdline.starts_with("/bin/sh") && !zombie {
                found.push(pid);
            }
        }
        found
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
        // Services outlive their server: stop what this platform ran.
        self.stop_services();
        // A server killed (kill -9) leaves its namespaces' volumes mounted: detach them,
        // so the temp dir goes and the machine keeps no loop device of the test's.
        let root = self.data.parent().map(Path::to_owned).unwrap_or_default();
        let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for point in mounted.lines().filter_map(|l| l.split(' ').nth(4)) {
            if Path::new(point).starts_with(&root) {
                let _ = Command::new("umount").args(["-l", point]).status();
            }
        }
    }
}

/// Set in a platform's server environment when a socket manager starts the server.
const ACTIVATED: &str = "MICRO_HARNESS_ACTIVATED";

/// systemd's part in socket activation, for tests: binds `127.0.0.1:PORT`, runs the
/// command after it with the socket as fd 3 (`LISTEN_FDS=1`), keeps the socket while it
/// starts the command again on SIGHUP, and stops it on SIGTERM.
const SOCKET_MANAGER: &str = include_str!("../../scripts/socket-manager.py");

/// `GET /healthz` answers 200: over TLS trusting `ca`, or plain without one.
fn healthz(addr: &str, ca: Option<&Path>) -> bool {
    healthz_within(addr, ca, Duration::from_secs(2))
}

/// [`healthz`], waiting up to `wait` for the answer (a server restarting behind a held
/// socket answers late, not never).
pub fn healthz_within(addr: &str, ca: Option<&Path>, wait: Duration) -> bool {
    use std::io::{Read, Write};
    let Ok(tcp) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(wait));
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut buf = String::new();
    let Some(ca) = ca else {
        let mut tcp = tcp;
        if tcp.write_all(request).is_err() {
            return false;
        }
        let _ = tcp.read_to_string(&mut buf);
        return buf.starts_with("HTTP/1.1 200");
    };
    let Ok(pem) = std::fs::read_to_string(ca) else {
        return false;
    };
    let config = micro_pki::client_config(&pem).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    if s.write_all(request).is_err() {
        return false;
    }
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}
