//! A hostile tenant: a developer of `evil` deploys a service with a shell in it and tries
//! to read, reach or take over what belongs to `victim` and to the platform. Every attempt
//! must fail; each assertion names the attack.

use crate::harness::Platform;
use serde_json::{Value, json};

/// `POST {"cmd": "..."}` runs it in a shell and answers `{"out": ..., "rc": ...}`; `GET`
/// answers with the environment. What any tenant can deploy.
const SHELL: &str = r#"
import json, os, subprocess, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/echo"):
            return self.reply({"path": self.path})
        if self.path.startswith("/redirect"):
            self.send_response(302); self.send_header("Location", self.path.split("?to=", 1)[1])
            self.end_headers(); return
        self.reply(dict(os.environ))
    def do_POST(self):
        cmd = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["cmd"]
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
        self.reply({"out": p.stdout + p.stderr, "rc": p.returncode})
    def reply(self, value):
        body = json.dumps(value).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Deploys the shell service as `name` in `namespace`, with `extra` spec lines, and
/// waits until it runs.
fn deploy_shell(p: &Platform, namespace: &str, name: &str, extra: &str) {
    let spec = format!("run: python3 -u main.py\n{extra}");
    p.write_service(name, &[("service.yaml", &spec), ("main.py", SHELL)]);
    p.ok(&[
        "run",
        &format!("./{name}"),
        "--wait",
        "--namespace",
        namespace,
    ]);
}

/// A raw HTTP/1.1 GET to the platform (no client that could follow or normalise):
/// the status line and the body.
fn raw_get(p: &Platform, token: &str, target: &str) -> (String, String) {
    raw(p, "GET", token, target, "")
}

fn raw(p: &Platform, method: &str, token: &str, target: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = p.connect();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Connects to 127.0.0.1:PORT from inside a service: prints `open` or the error.
fn connect(port: impl std::fmt::Display) -> String {
    format!(
        "python3 -c 'import socket\ntry:\n socket.create_connection((\"127.0.0.1\", {port}), timeout=3); print(\"open\")\nexcept Exception as e: print(\"refused\", e)'"
    )
}

/// The platform answers people, and evil's shell its next command.
fn still_answered(p: &Platform) {
    p.ok(&["status"]);
    let (out, _) = Shell { p }.run("echo still here");
    assert!(out.contains("still here"), "{out}");
}

struct Shell<'a> {
    p: &'a Platform,
}

impl Shell<'_> {
    /// Runs `cmd` in evil's service; returns (output, exit code).
    fn run(&self, cmd: &str) -> (String, i64) {
        let body = json!({ "cmd": cmd }).to_string();
        let out = self
            .p
            .ok(&["call", "shell", "/", &body, "--namespace", "evil"]);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        (
            v["out"].as_str().unwrap().to_owned(),
            v["rc"].as_i64().unwrap(),
        )
    }
}

#[test]
fn a_service_with_a_shell_reaches_nothing_of_another_tenant_or_the_platform() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "victim"]);
    p.ok(&["admin", "namespace", "create", "evil"]);
    let secret = "victim-db-password-4242";
    p.ok(&[
        "config",
        "set",
        "db.password",
        secret,
        "--secret",
        "--namespace",
        "victim",
    ]);
    deploy_shell(&p, "victim", "vault", "config: [db.password]\n");
    deploy_shell(&p, "evil", "shell", "");
    // A sibling in evil's own namespace, which it may reach.
    deploy_shell(&p, "evil", "buddy", "");
    let victim_env: Value =
        serde_json::from_str(&p.ok(&["call", "vault", "/", "--namespace", "victim"])).unwrap();
    assert_eq!(victim_env["MICRO_CONFIG_DB_PASSWORD"], secret);
    let victim_token = victim_env["MICRO_TOKEN"].as_str().unwrap().to_owned();
    let victim_port = victim_env["PORT"].as_str().unwrap().to_owned();
    let envs = std::fs::read_to_string(p.home.join("envs.json")).unwrap();
    let admin: Value = serde_json::from_str(&envs).unwrap();
    let admin_token = admin["envs"]["server"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sh = Shell { p: &p };

    // 1. Only its own processes: no other service's or the server's environment.
    let (out, _) = sh.run("ls /proc | grep -E '^[0-9]+$' | wc -l");
    let visible: usize = out.trim().parse().unwrap();
    assert!(visible < 10, "sees {visible} processes");
    let (out, _) = sh.run("cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'");
    for (what, value) in [
        ("the victim's secret", secret),
        ("the victim's service token", victim_token.as_str()),
        ("the admin token", admin_token.as_str()),
    ] {
        assert!(!out.contains(value), "{what} leaked through /proc");
    }
    assert!(
        !out.contains("MICRO_HOME"),
        "the server's environment leaked"
    );

    // 2. Only its own checkout: not the data dir, MICRO_HOME, the store, the repos or
    //    another tenant's checkout; system folders are read-only.
    for path in [
        p.home.join("envs.json"),
        p.data.join("store.db"),
        p.data.join("repos/victim.git/HEAD"),
        p.data.join("runtime/victim"),
        p.data.clone(),
    ] {
        let (out, rc) = sh.run(&format!("ls -la {}", path.display()));
        assert_ne!(rc, 0, "{} is visible: {out}", path.display());
    }
    let (out, rc) = sh.run("ls /app && touch /usr/pwned /etc/pwned 2>&1; echo done");
    assert_eq!(rc, 0);
    assert!(
        out.contains("main.py") && out.contains("service.yaml"),
        "{out}"
    );
    assert_eq!(out.matches("cannot touch").count(), 2, "{out}");
    let (out, _) = sh.run(&format!(
        "git clone -q file://{}/repos/victim.git /tmp/stolen 2>&1; ls /tmp/stolen 2>&1",
        p.data.display()
    ));
    assert!(
        !out.contains("micro.yaml"),
        "cloned the victim's repo: {out}"
    );

    // 3. Unprivileged, no capabilities, no new privileges; /tmp is its own.
    let (out, _) = sh.run("id -u; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status");
    assert!(!out.starts_with("0\n"), "runs as root: {out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let (out, rc) = sh.run("echo 'it is mine' > /tmp/planted && cat /tmp/planted");
    assert_eq!(
        (out.as_str(), rc),
        ("it is mine\n", 0),
        "/tmp is not writable"
    );
    assert!(!std::path::Path::new("/tmp/planted").exists());

    // 4. The network: not the victim's port, not the host's loopback (here: a listener
    //    the test opens), only the platform API it was given.
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    for (what, port) in [
        ("the victim's service", victim_port.clone()),
        ("a host listener", host_port.to_string()),
    ] {
        let (out, _) = sh.run(&connect(&port));
        assert!(out.starts_with("refused"), "reached {what}: {out}");
    }
    let (out, _) = sh.run(&connect(p.port));
    assert!(
        out.starts_with("open"),
        "the platform API must answer: {out}"
    );
    // Through the API, its identity reaches its own namespace only.
    let (out, _) = sh.run(
        "python3 -c 'import os, urllib.request as u\nfor ns in (\"evil\", \"victim\"):\n r = u.Request(os.environ[\"MICRO_API\"] + \"/api/v1/namespaces/\" + ns + \"/services/\" + (\"buddy\" if ns == \"evil\" else \"vault\") + \"/call\", headers={\"Authorization\": \"Bearer \" + os.environ[\"MICRO_TOKEN\"]})\n try: print(ns, u.urlopen(r).status)\n except Exception as e: print(ns, e)'",
    );
    assert!(out.contains("evil 200"), "siblings are reachable: {out}");
    assert!(out.contains("victim HTTP Error 404"), "{out}");

    // 5. `micro call` is no proxy to elsewhere: a redirect to the victim's port comes
    //    back as a redirect, and the path goes to the service exactly as sent.
    let call = "/api/v1/namespaces/evil/services/shell/call";
    let (status, body) = raw_get(
        &p,
        &admin_token,
        &format!("{call}/redirect?to=http://127.0.0.1:{victim_port}/"),
    );
    assert!(status.contains(" 302 "), "{status}");
    assert!(!body.contains(secret), "the platform followed the redirect");
    // Nor does the CLI follow it: the victim's replica is on a host port the CLI's own
    // machine reaches, so a followed 302 would print the victim's environment.
    let out = p.micro(&[
        "call",
        "shell",
        &format!("/redirect?to=http://127.0.0.1:{victim_port}/"),
        "-i",
        "--namespace",
        "evil",
    ]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a 302 is not a success: {printed}");
    assert!(printed.starts_with("HTTP/1.1 302"), "{printed}");
    assert!(
        printed.contains(&format!("location: http://127.0.0.1:{victim_port}/")),
        "{printed}"
    );
    assert!(
        !printed.contains(secret) && !printed.contains(&victim_token),
        "the CLI followed the redirect to the victim: {printed}"
    );
    let (_, body) = raw_get(&p, &admin_token, &format!("{call}/echo/a%2F..%2Fb?x=%2F1"));
    assert!(
        body.contains(r#""path": "/echo/a%2F..%2Fb?x=%2F1""#),
        "{body}"
    );

    // 6. A build step is sandboxed too: it reaches neither the host nor the platform's
    //    own ports (its network is the internet's, behind a wall).
    let probe = format!(
        "import socket\nfor port in ({host_port}, {}):\n    try:\n        socket.create_connection(('127.0.0.1', port), timeout=3); print(port, 'open')\n    except Exception as e: print(port, 'refused', e)\n",
        p.port
    );
    p.write_service(
        "builder",
        &[
            (
                "service.yaml",
                "build: python3 probe_net.py > net.txt 2>&1\nrun: python3 -u main.py\n",
            ),
            ("main.py", SHELL),
            ("probe_net.py", &probe),
        ],
    );
    p.ok(&["run", "./builder", "--wait", "--namespace", "evil"]);
    let body = json!({ "cmd": "cat net.txt" }).to_string();
    let out = p.ok(&["call", "builder", "/", &body, "--namespace", "evil"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let net = v["out"].as_str().unwrap();
    assert!(!net.contains("open"), "a build reached the host: {net}");
    assert_eq!(
        net.lines().filter(|l| l.contains(" refused ")).count(),
        2,
        "{net}"
    );

    // The victim still runs, untouched.
    let after: Value =
        serde_json::from_str(&p.ok(&["call", "vault", "/", "--namespace", "victim"])).unwrap();
    assert_eq!(after["MICRO_CONFIG_DB_PASSWORD"], secret);
}

#[test]
fn a_service_over_its_memory_limit_is_stopped_and_says_why() {
    let p = Platform::start();
    p.write_service(
        "hog",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nresources: { memory: 64Mi }\n",
            ),
            (
                "main.py",
                "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n    def do_POST(self):\n        hog = b'x' * (256 << 20)\n        self.send_response(200); self.end_headers()\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
            ),
        ],
    );
    p.ok(&["run", "./hog", "--wait"]);
    // The allocation kills it: the call fails, the platform says why.
    let _ = p.micro(&["call", "hog", "/", "{}"]);
    let mut last = None;
    p.wait_for("the memory kill to show", || {
        last = p.service(None, "hog");
        last.as_ref()
            .is_some_and(|s| s["message"].as_str().is_some_and(|m| m.contains("memory")))
    });
    assert!(p.server_log().contains("micro server ready"));
}

/// Writes `content` as a raw tree object (git's own tools refuse to make such trees) and
/// returns a commit of it on top of HEAD.
fn forged_commit(p: &Platform, dir: &std::path::Path, entry_name: &str) -> String {
    let blob = p.git_ok(dir, &["rev-parse", "HEAD:micro.yaml"]);
    let mut tree = format!("100644 {entry_name}\0").into_bytes();
    tree.extend((0..20).map(|i| u8::from_str_radix(&blob.trim()[i * 2..i * 2 + 2], 16).unwrap()));
    let raw = dir.join("raw-tree");
    std::fs::write(&raw, &tree).unwrap();
    let id = p.git_ok(
        dir,
        &[
            "hash-object",
            "-t",
            "tree",
            "--literally",
            "-w",
            raw.to_str().unwrap(),
        ],
    );
    std::fs::remove_file(&raw).unwrap();
    p.git_ok(
        dir,
        &["commit-tree", id.trim(), "-p", "HEAD", "-m", "forged"],
    )
    .trim()
    .to_owned()
}

#[test]
fn the_platform_refuses_what_a_hostile_tenant_sends_it() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "evil"]);
    // A person cannot take a service identity's address.
    let err = p.fails(&[
        "admin",
        "account",
        "create",
        "probe@evil.service.micro",
        "--namespace",
        "evil",
        "--password",
        "long-enough-1",
    ]);
    assert!(err.contains("service identities"), "{err}");

    // git's object checks run on every push: `..` and `.git` as tree entries are refused.
    p.ok(&["clone", "work", "--namespace", "evil"]);
    let dir = p.work.join("work");
    for name in ["..", ".git"] {
        let commit = forged_commit(&p, &dir, name);
        let out = p.git(
            &dir,
            &["push", "origin", &format!("{commit}:refs/heads/main")],
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a tree entry {name:?} was accepted");
        // Refused by git's object checks, before any hook reads the tree.
        assert!(said.contains("unpack"), "{name:?}: {said}");
    }
    let head = p.git_ok(&dir, &["ls-remote", "origin", "main"]);
    assert_eq!(
        head.split_whitespace().next(),
        Some(p.git_ok(&dir, &["rev-parse", "HEAD"]).trim())
    );

    // Owner-only data: the data dir, the store file.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&p.data), 0o700);
    assert_eq!(mode(&p.data.join("store.db")), 0o600);

    // Every rejection is one JSON error shape, naming no server path.
    let admin: Value =
        serde_json::from_str(&std::fs::read_to_string(p.home.join("envs.json")).unwrap()).unwrap();
    let token = admin["envs"]["server"]["token"].as_str().unwrap();
    for (method, target, body) in [
        ("PUT", "/api/v1/namespaces/evil/config/k", "{not json"),
        (
            "GET",
            "/api/v1/namespaces/evil/services/x/logs?lines=many",
            "",
        ),
        ("DELETE", "/api/v1/whoami", ""),
    ] {
        let (status, answer) = raw(&p, method, token, target, body);
        let v: Value = serde_json::from_str(answer.trim())
            .unwrap_or_else(|_| panic!("{method} {target}: {status}: {answer:?}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
        assert!(!answer.contains(p.data.to_str().unwrap()), "{answer}");
    }
    // A developer's malformed body to an admin route is answered as a missing route,
    // not with what is wrong with the body (which would tell the route exists).
    let dev = crate::isolation::developer_token(&p, "evil");
    let (missing, missing_body) = raw(&p, "POST", &dev, "/api/v1/admin/nosuch", "{not json");
    for target in [
        "/api/v1/admin/namespaces",
        "/api/v1/admin/accounts",
        "/api/v1/admin/namespaces/evil/quota",
    ] {
        let method = if target.ends_with("quota") {
            "PUT"
        } else {
            "POST"
        };
        let (status, answer) = raw(&p, method, &dev, target, "{not json");
        assert_eq!(status, missing, "{method} {target}: {answer}");
        assert!(status.contains(" 404 "), "{status}");
        assert_eq!(answer, missing_body, "{method} {target}");
    }
    // A body announced over the limit: refused before it is sent, saying the limit.
    let (status, answer) = p.announce_body("/api/v1/namespaces/evil/config/k", 3 << 20);
    assert_eq!(status, 413, "{answer}");
    let v: Value = serde_json::from_str(answer.trim()).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("limit of 2097152 bytes"),
        "{answer}"
    );

    // A namespace whose creation was interrupted (a temp repo left behind) can be created.
    let half = p.data.join("repos/.later.git.tmp");
    std::fs::create_dir_all(half.join("objects")).unwrap();
    p.ok(&["admin", "namespace", "create", "later"]);
    assert!(p.ok(&["admin", "namespace", "list"]).contains("later"));
    assert!(!half.exists());
}

/// Commits a service whose code comes from `url` (pinned to `commit`) straight into the
/// namespace's repo, as a power user's `git push` would.
fn push_source_service(p: &Platform, dir: &std::path::Path, name: &str, url: &str, commit: &str) {
    let spec = format!("run: python3 -u main.py\nsource:\n  git: {url}\n  ref: {commit}\n");
    std::fs::create_dir_all(dir.join("services").join(name)).unwrap();
    std::fs::write(dir.join("services").join(name).join("service.yaml"), spec).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", &format!("add {name}")]);
    p.git_ok(dir, &["push", "-q", "origin", "HEAD:main"]);
}

#[test]
fn sources_cannot_reach_the_platforms_disk_or_network() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "evil"]);
    p.ok(&["clone", "work", "--namespace", "evil"]);
    let dir = p.work.join("work");
    let commit = p.git_ok(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let attacks = [
        (
            "steal",
            format!("file://{}/repos/default.git", p.data.display()),
        ),
        (
            "probe",
            format!(
                "http://127.0.0.1:{}/x.git",
                listener.local_addr().unwrap().port()
            ),
        ),
        ("meta", "http://169.254.169.254/latest/meta-data".to_owned()),
    ];
    for (name, url) in &attacks {
        push_source_service(&p, &dir, name, url, &commit);
    }
    for (name, url) in &attacks {
        let mut message = String::new();
        p.wait_for(&format!("{name} to be refused"), || {
            message = p
                .service(Some("evil"), name)
                .and_then(|s| s["message"].as_str().map(str::to_owned))
                .unwrap_or_default();
            message.contains("not allowed")
        });
        assert_eq!(
            p.service(Some("evil"), name).unwrap()["status"],
            "error",
            "{url}"
        );
        // No oracle: the answer names no server path and says nothing of what listens.
        let data = p.data.display().to_string();
        assert!(
            !message.replace(url.as_str(), "").contains(&data),
            "{message}"
        );
        assert!(
            !message.contains("refused") && !message.contains("connect"),
            "{message}"
        );
    }
}

#[test]
fn a_tenants_hanging_sources_stall_nobody_else() {
    // Local sources allowed, so the platform really connects to the black hole; a quota
    // that lets one namespace have more services than the server has blocking threads.
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        (
            "MICRO_DEFAULT_QUOTA",
            "services=1000,replicas=1000,memory=1000Gi,cpu=1000",
        ),
    ]);
    p.ok(&["admin", "namespace", "create", "evil"]);
    // Accepts connections (the kernel does) and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/slow.git",
        hole.local_addr().unwrap().port()
    );
    p.ok(&["clone", "work", "--namespace", "evil"]);
    let dir = p.work.join("work");
    let commit = p.git_ok(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    // More hanging fetches than the server has blocking threads (512), in one push.
    for i in 1..600 {
        let spec = format!("run: python3 -u main.py\nsource:\n  git: {url}\n  ref: {commit}\n");
        let folder = dir.join("services").join(format!("slow{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("service.yaml"), spec).unwrap();
    }
    push_source_service(&p, &dir, "slow0", &url, &commit);
    p.wait_for("evil's services to be fetching", || {
        p.service(Some("evil"), "slow599").is_some()
    });
    // Everyone else goes on as usual, and so do evil's own other commands.
    deploy_shell(&p, "default", "app", "");
    assert!(p.ok(&["call", "app", "/"]).contains("MICRO_NAMESPACE"));
    p.ok(&["admin", "namespace", "create", "third"]);
    p.ok(&["logs", "app"]);
    let out = p.micro(&["diff", "--namespace", "evil"]);
    assert!(out.status.code().is_some_and(|c| c < 2), "{out:?}");
    p.ok(&["kill", "slow0", "--namespace", "evil"]);
    drop(hole);
}

#[test]
fn idle_connections_cannot_starve_the_server() {
    use std::io::Read;
    let p = Platform::start_with(&[
        ("MICRO_MAX_CONNECTIONS", "20"),
        ("MICRO_HEADER_TIMEOUT", "1"),
    ]);
    // Twice the cap, sending nothing, as a service with a shell could from its sandbox.
    let idle: Vec<_> = (0..40)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap())
        .collect();
    // The platform still answers: idle connections are closed and others get their turn.
    p.ok(&["status"]);
    let mut first = &idle[0];
    first
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 1];
    match first.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("an idle connection must be closed by the server: {other:?}"),
    }
}

#[test]
fn quotas_bound_what_one_push_can_cause() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "evil"]);
    let shown = p.ok(&["admin", "quota", "evil", "services=2", "checkout-files=100"]);
    assert!(shown.contains("services           2"), "{shown}");
    p.ok(&["clone", "work", "--namespace", "evil"]);
    let dir = p.work.join("work");

    // A few hundred bytes of push reusing one 60-file tree in three services.
    let mut files = vec![("service.yaml".to_owned(), "run: sleep 1000\n".to_owned())];
    files.extend((0..60).map(|i| (format!("data/f{i}"), "x".to_owned())));
    for name in ["a", "b", "c"] {
        for (file, content) in &files {
            let path = dir.join("services").join(name).join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }
    p.git_ok(&dir, &["add", "-A"]);
    p.git_ok(&dir, &["commit", "-qm", "three"]);
    let out = p.git(&dir, &["push", "origin", "HEAD:main"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("over quota: services would be 3, namespace evil may have 2"),
        "{said}"
    );
    p.ok(&["admin", "quota", "evil", "services=10"]);
    let out = p.git(&dir, &["push", "origin", "HEAD:main"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("over quota: files in checkouts"), "{said}");
    assert!(p.status(Some("evil")).is_empty(), "nothing of it runs");

    // Pushes per minute.
    p.ok(&["admin", "quota", "evil", "pushes-per-minute=2"]);
    p.git_ok(&dir, &["reset", "-q", "--hard", "origin/main"]);
    let mut refused = None;
    for i in 0..3 {
        p.git_ok(
            &dir,
            &["commit", "-q", "--allow-empty", "-m", &format!("push {i}")],
        );
        let out = p.git(&dir, &["push", "origin", "HEAD:main"]);
        if !out.status.success() {
            refused = Some((i, String::from_utf8_lossy(&out.stderr).into_owned()));
            break;
        }
    }
    let (i, said) = refused.expect("the third push in a minute is refused");
    assert_eq!(i, 2, "{said}");
    assert!(said.contains("429"), "{said}");

    // Only admins see or change quotas; to others the route is not there.
    let dev = crate::isolation::developer_token(&p, "evil");
    let (status, _) = raw_get(&p, &dev, "/api/v1/admin/namespaces/evil/quota");
    assert!(status.contains(" 404 "), "{status}");
}

#[test]
fn without_the_sandbox_the_server_says_so_and_hosts_one_namespace() {
    let p = Platform::start_with(&[("MICRO_SANDBOX", "off")]);
    assert!(
        p.server_log().contains("single-tenant"),
        "{}",
        p.server_log()
    );
    let err = p.fails(&["admin", "namespace", "create", "second"]);
    assert!(err.contains("single-tenant"), "{err}");
    assert!(!p.ok(&["admin", "namespace", "list"]).contains("second"));
    // Its one namespace works as usual (unsandboxed, ports are the host's: a busy
    // machine can take one between check and bind, so no call here).
    deploy_shell(&p, "default", "app", "");
}

#[test]
fn a_service_that_fills_its_folder_is_stopped_and_says_why() {
    let p = Platform::start();
    p.ok(&["admin", "quota", "default", "checkout-size=4Mi"]);
    p.write_service(
        "filler",
        &[(
            "service.yaml",
            "run: dd if=/dev/zero of=big bs=1M count=16 && sleep 1000\n",
        )],
    );
    p.ok(&["run", "./filler"]);
    let mut message = String::new();
    p.wait_for("the filler to be stopped", || {
        message = p
            .service(None, "filler")
            .and_then(|s| s["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        message.contains("checkout-size quota")
    });
    assert_eq!(
        p.service(None, "filler").unwrap()["status"],
        "error",
        "{message}"
    );
    assert!(p.processes("sleep 1000").is_empty(), "it no longer runs");
}

#[test]
fn a_side_branch_cannot_carry_a_repo_past_its_size_quota() {
    let p = Platform::start();
    p.ok(&["admin", "quota", "default", "repo-size=1Mi"]);
    p.ok(&["clone", "work"]);
    let dir = p.work.join("work");
    // 3 MiB that no compression shrinks, on a branch that is not the desired state.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.join("blob.bin"), noise).unwrap();
    p.git_ok(&dir, &["checkout", "-q", "-b", "stash"]);
    p.git_ok(&dir, &["add", "blob.bin"]);
    p.git_ok(&dir, &["commit", "-qm", "hide it on a branch"]);
    let out = p.git(&dir, &["push", "origin", "stash"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("over quota") && said.contains("repo"),
        "{said}"
    );
    let refs = p.git_ok(&dir, &["ls-remote", "origin"]);
    assert!(!refs.contains("refs/heads/stash"), "{refs}");
}

/// Run in a service: PUTs 512 KiB records into its own store with its own token until it
/// is refused; prints how many went in, the status and the answer.
const FILL_STORE: &str = r#"import json, os, urllib.request as u, urllib.error as e
n = 0
for i in range(40):
    r = u.Request(os.environ["MICRO_API"] + "/api/v1/namespaces/evil/store/default/k%d" % i,
        data=json.dumps({"value": "x" * 524288}).encode(), method="PUT",
        headers={"Authorization": "Bearer " + os.environ["MICRO_TOKEN"], "Content-Type": "application/json"})
    try:
        u.urlopen(r)
        n += 1
    except e.HTTPError as x:
        print(n, x.code, x.read().decode())
        break
else:
    print(n, "never refused")
"#;

#[test]
fn a_service_cannot_fill_the_platforms_disk_through_its_store() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "evil"]);
    p.ok(&["admin", "namespace", "create", "victim"]);
    p.ok(&["admin", "quota", "evil", "store-size=2Mi"]);
    assert!(
        p.ok(&["admin", "quota", "evil"])
            .contains("store-size         2Mi")
    );
    deploy_shell(&p, "evil", "shell", "");
    let sh = Shell { p: &p };

    let (out, rc) = sh.run(&format!("python3 -c '{FILL_STORE}'"));
    assert_eq!(rc, 0, "{out}");
    let (written, answer) = out.trim().split_once(' ').unwrap();
    // Three records of 512 KiB fit in 2 MiB; the fourth is refused, and says why.
    assert_eq!(written, "3", "{out}");
    assert!(answer.starts_with("403"), "{out}");
    assert!(
        answer.contains("over quota: the store") && answer.contains("may have 2Mi"),
        "{out}"
    );
    assert!(
        p.fails(&["store", "read", "k3", "--namespace", "evil"])
            .contains("not found")
    );
    // Its developer hears the same through the CLI, until a record shrinks.
    let big = || p.command(&["store", "write", "k9", "-", "--namespace", "evil"]);
    let out = crate::signup::with_stdin(big(), &"y".repeat(600_000));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("over quota"),
        "{said}"
    );
    p.ok(&["store", "write", "k0", "small now", "--namespace", "evil"]);
    assert!(
        crate::signup::with_stdin(big(), &"y".repeat(600_000))
            .status
            .success()
    );

    // Nobody else's store is touched by it.
    p.ok(&[
        "store",
        "write",
        "big",
        &"z".repeat(100_000),
        "--namespace",
        "victim",
    ]);
    assert_eq!(
        p.ok(&["store", "read", "big", "--namespace", "victim"])
            .trim()
            .len(),
        100_000
    );
    // An admin raising the quota lets it grow again.
    p.ok(&["admin", "quota", "evil", "store-size=8Mi"]);
    let (out, _) = sh.run(&format!("python3 -c '{FILL_STORE}'"));
    // Fifteen records of 512 KiB fit in 8 MiB (k9 shrinks back to one of them).
    assert!(out.starts_with("15 403"), "{out}");
    // Config values count too: below what it keeps, a new one is refused, unwritten.
    p.ok(&["admin", "quota", "evil", "store-size=7Mi"]);
    let said = p.fails(&["config", "set", "greeting", "hi", "--namespace", "evil"]);
    assert!(said.contains("over quota: the store"), "{said}");
    assert!(
        !p.ok(&["config", "list", "--namespace", "evil"])
            .contains("greeting")
    );
    p.ok(&["config", "set", "greeting", "hi", "--namespace", "victim"]);
}

/// Run in a service: opens 600 connections to the platform API, sends each a request whose
/// announced body never comes but a byte a second, and prints how many the platform let
/// in, then how many it had not closed after two minutes.
const SLOW_BODIES: &str = r#"import os, socket, ssl, time
host, port = os.environ["MICRO_API"].split("//")[1].split(":")
ctx = ssl.create_default_context(cafile=os.environ["MICRO_TLS_CA"])
conns, away = [], 0
for i in range(600):
    try:
        t = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)
        t.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        conns.append(t)
    except Exception:
        away += 1
print("in", len(conns), "away", away, flush=True)
deadline = time.time() + 120
while conns and time.time() < deadline:
    time.sleep(1)
    alive = []
    for t in conns:
        try:
            t.sendall(b" ")
            alive.append(t)
        except Exception:
            pass
    conns = alive
print("open", len(conns), flush=True)
"#;

/// Run in a service: PUTs then GETs one record of its own store with its own identity;
/// prints both statuses.
const OWN_STORE: &str = r#"import json, os, urllib.request as u
ns = os.environ["MICRO_NAMESPACE"]
url = os.environ["MICRO_API"] + "/api/v1/namespaces/" + ns + "/store/default"
auth = {"Authorization": "Bearer " + os.environ["MICRO_TOKEN"], "Content-Type": "application/json"}
put = u.urlopen(u.Request(url + "/alive", data=json.dumps({"value": "yes"}).encode(), method="PUT", headers=auth), timeout=30)
get = u.urlopen(u.Request(url + "?key=alive", headers=auth), timeout=30)
print(put.status, get.status)
"#;

/// A POST that sends its headers and the first byte of a body it never finishes: what
/// an attacker holds a connection with. `None` if the platform turned it away.
fn start_slow_body(
    p: &Platform,
    from: std::net::Ipv4Addr,
) -> Option<Box<dyn crate::harness::Stream>> {
    use std::io::Write;
    let mut s = p.connect_from(from).ok()?;
    s.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    )
    .ok()?;
    s.flush().ok()?;
    Some(s)
}

#[test]
fn slow_request_bodies_cannot_take_the_platform_offline() {
    use std::io::Write;
    // Bodies must keep up with the default rate after 3 s (the header timeout).
    let p = Platform::start_with(&[("MICRO_HEADER_TIMEOUT", "3")]);
    p.ok(&["admin", "namespace", "create", "evil"]);
    p.ok(&["admin", "namespace", "create", "victim"]);
    deploy_shell(&p, "evil", "shell", "");
    deploy_shell(&p, "victim", "vault", "");
    let sh = Shell { p: &p };

    // From inside evil's service: 600 slow bodies, in the background.
    let script = SLOW_BODIES.replace('\'', "'\\''");
    let (out, rc) = sh.run(&format!(
        "printf '%s' '{script}' > slow.py && (python3 slow.py > slow.out 2>&1 &) ; echo started"
    ));
    assert_eq!(rc, 0, "{out}");
    // And anonymously, from another address of this machine: 600 more.
    let attacker = std::net::Ipv4Addr::new(127, 0, 0, 2);
    let mut held: Vec<_> = (0..600)
        .filter_map(|_| start_slow_body(&p, attacker))
        .collect();
    assert!(
        !held.is_empty(),
        "the platform took none of the attacker's connections"
    );

    // Everybody else goes on: the CLI, /healthz, and another tenant's service.
    for _ in 0..5 {
        p.ok(&["status", "--namespace", "victim"]);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let health = rt.block_on(async {
        p.http()
            .get(format!("{}/healthz", p.url()))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(health.ok(), Some(200));
    let body = json!({ "cmd": format!("python3 -c '{OWN_STORE}'") }).to_string();
    let out = p.ok(&["call", "vault", "/", &body, "--namespace", "victim"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["out"].as_str().unwrap().trim(),
        "204 200",
        "the victim's service could not use the API during the attack: {v}"
    );

    // Each slow body is cut once it falls behind the minimum rate; the attacker trickles
    // a byte a second into what it holds, as the issue's attack did.
    p.wait_for("the server to close every slow body", || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        held.retain_mut(|s| s.write_all(b" ").and_then(|()| s.flush()).is_ok());
        held.is_empty()
    });
    let mut said = String::new();
    p.wait_for("the service's attack to end", || {
        said = sh.run("cat slow.out").0;
        said.contains("open ")
    });
    // Its own namespace's door let in at most its cap at once (a connection cut frees
    // its place, so on a busy machine, where opening 600 takes longer than cutting the
    // first ones, more than 64 get in over the attack, never more at once), and every
    // one of those was cut.
    let count = |word: &str| -> usize {
        said.split_whitespace()
            .skip_while(|w| *w != word)
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{said}"))
    };
    let (let_in, away) = (count("in"), count("away"));
    assert_eq!(let_in + away, 600, "{said}");
    assert!(let_in >= 1, "{said}");
    assert!(said.contains("open 0"), "{said}");
    p.ok(&["status", "--namespace", "evil"]);
}

/// Run in a service: 35 logins to someone else's account with made-up passwords; prints
/// each answer's status.
const GUESS_LOGINS: &str = r#"import json, os, urllib.request as u, urllib.error as e
codes = []
for i in range(35):
    r = u.Request(os.environ["MICRO_API"] + "/api/v1/login", method="POST",
        data=json.dumps({"email": "dev@victim.example", "password": "guess-%d" % i}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        codes.append(u.urlopen(r, timeout=30).status)
    except e.HTTPError as x:
        codes.append(x.code)
print(" ".join(map(str, codes)))
"#;

/// A login as `email` sent from the loopback address `from`, with `forwarded` as its
/// X-Forwarded-For: the answer's status.
fn login_from(
    p: &Platform,
    from: std::net::Ipv4Addr,
    forwarded: &str,
    email: &str,
    password: &str,
) -> u16 {
    use std::io::{Read, Write};
    let body = json!({ "email": email, "password": password }).to_string();
    let mut s = p.connect_from(from).unwrap();
    write!(
        s,
        "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {forwarded}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {answer:?}"))
}

#[test]
fn a_tenant_cannot_lock_people_out_of_logging_in() {
    // 127.0.0.3 stands for the operator's proxy.
    let p = Platform::start_with(&[("MICRO_TRUSTED_PROXY", "127.0.0.3")]);
    p.ok(&["admin", "namespace", "create", "evil"]);
    p.ok(&["admin", "namespace", "create", "victim"]);
    let (email, password) = ("dev@victim.example", "long-enough-1");
    p.ok(&[
        "admin",
        "account",
        "create",
        email,
        "--namespace",
        "victim",
        "--password",
        password,
    ]);
    deploy_shell(&p, "evil", "shell", "");
    let sh = Shell { p: &p };

    // A service guesses the victim's password until it is slowed down…
    let (out, rc) = sh.run(&format!("python3 -c '{GUESS_LOGINS}'"));
    assert_eq!(rc, 0, "{out}");
    assert!(out.starts_with("401 "), "{out}");
    assert!(
        out.trim_end().ends_with("429"),
        "the guesser was not slowed: {out}"
    );

    // …which slows only its own namespace's services: on this machine (the same address
    // services used to share), the right password still logs in.
    let proxy = std::net::Ipv4Addr::new(127, 0, 0, 3);
    let stranger = std::net::Ipv4Addr::new(127, 0, 0, 4);
    assert_eq!(
        login_from(&p, std::net::Ipv4Addr::LOCALHOST, "", email, password),
        200
    );

    // X-Forwarded-For counts only from the proxy the operator named: a stranger cannot
    // dodge its own limit by making up addresses…
    let stranger_codes: Vec<u16> = (0..35)
        .map(|i| login_from(&p, stranger, &format!("198.51.100.{i}"), email, "wrong"))
        .collect();
    assert_eq!(stranger_codes.last(), Some(&429), "{stranger_codes:?}");
    // …while through the proxy each client is its own: one guessing is slowed, another
    // logs in.
    let guesser: Vec<u16> = (0..35)
        .map(|_| login_from(&p, proxy, "203.0.113.66", email, "wrong"))
        .collect();
    assert_eq!(guesser.last(), Some(&429), "{guesser:?}");
    assert_eq!(
        login_from(&p, proxy, "1.2.3.4, 203.0.113.7", email, password),
        200
    );
}

/// The uid the platform used to give a namespace: `3000000 + sha256(name) % 1e6`.
fn hashed_uid(name: &str) -> u32 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(name.as_bytes());
    3_000_000 + u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % 1_000_000
}

/// Two namespace names that shared a uid under the old formula (a birthday pair turns
/// up within a couple of thousand names).
fn colliding_names() -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for i in 0.. {
        let name = format!("t{i}");
        if let Some(other) = seen.insert(hashed_uid(&name), name.clone()) {
            return (other, name);
        }
    }
    unreachable!()
}

#[test]
fn the_sandbox_keeps_the_kernel_and_the_hosts_files_out_of_reach() {
    let p = Platform::start();
    // A secret an operator keeps in /etc, readable by everyone (root's default umask).
    let planted = std::path::PathBuf::from(format!("/etc/micro-e2e-{}.key", std::process::id()));
    std::fs::write(&planted, "sk_live_planted").unwrap();
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _planted = Remove(planted.clone());
    let (one, two) = colliding_names();
    assert_eq!(hashed_uid(&one), hashed_uid(&two));
    for ns in [&one, &two] {
        p.ok(&["admin", "namespace", "create", ns]);
    }
    deploy_shell(&p, &one, "shell", "resources: { memory: 64Mi }\n");
    deploy_shell(&p, &two, "shell", "");
    let run = |ns: &str, cmd: &str| {
        let body = json!({ "cmd": cmd }).to_string();
        let v: Value =
            serde_json::from_str(&p.ok(&["call", "shell", "/", &body, "--namespace", ns])).unwrap();
        v["out"].as_str().unwrap().to_owned()
    };

    // Uids are allocated, never derived: two names that hashed alike run apart.
    let (uid_one, uid_two) = (run(&one, "id -u"), run(&two, "id -u"));
    assert_ne!(uid_one, uid_two, "{one} and {two} share a uid");
    assert_eq!(run(&one, "id -un").trim(), "service");

    // The kernel: a system-call filter; no user namespace (root in it), no keyring (per
    // uid, it crossed namespaces).
    let out = run(
        &one,
        "grep Seccomp: /proc/self/status; unshare -Urn id -u 2>&1; echo rc=$?",
    );
    assert!(out.contains("Seccomp:\t2"), "no filter: {out}");
    assert!(
        out.contains("rc=1") && !out.contains("\n0\n"),
        "a user namespace: {out}"
    );
    let add_key = match std::env::consts::ARCH {
        "aarch64" => 217,
        _ => 248,
    };
    let out = run(
        &one,
        &format!(
            "python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print(l.syscall({add_key}, b\"user\", b\"k\", b\"v\", 1, -4), ctypes.get_errno())'"
        ),
    );
    assert_eq!(out.trim(), "-1 1", "add_key was not refused: {out}");

    // Files: an /etc of the platform's making, nothing else of the host's.
    let name = planted.file_name().unwrap().to_str().unwrap();
    let out = run(&one, &format!("cat /etc/{name} 2>&1"));
    assert!(
        !out.contains("sk_live_planted"),
        "read the host's /etc: {out}"
    );
    let out = run(&one, "ls /etc");
    assert!(!out.contains(name) && !out.contains("shadow"), "{out}");
    assert!(
        out.contains("passwd") && out.contains("resolv.conf"),
        "{out}"
    );
    assert!(!run(&one, "cat /etc/passwd").contains("root:x:0:0:root:/root:/bin/bash"));

    // /tmp and /dev/shm are its own, writable, and sized by its memory limit.
    let out = run(
        &one,
        "echo a > /tmp/a && echo b > /dev/shm/b && cat /tmp/a /dev/shm/b && df -k /tmp | tail -1",
    );
    assert!(out.starts_with("a\nb\n"), "{out}");
    assert_eq!(
        out.lines().nth(2).unwrap().split_whitespace().nth(1),
        Some("65536"),
        "{out}"
    );

    // Nothing inside names the host's paths: not PID 1's arguments, not the cgroups.
    let data = p.data.display().to_string();
    let out = run(
        &one,
        "tr '\\0' ' ' < /proc/1/cmdline; echo; cat /proc/self/cgroup",
    );
    assert!(!out.contains(&data) && !out.contains("micro-"), "{out}");
    assert!(out.lines().skip(1).all(|l| l.ends_with(":/")), "{out}");
    // …not the mount table (the checkout is on the namespace's own filesystem), not an
    // open descriptor, and not its deployment's id.
    let out = run(&one, "cat /proc/self/mountinfo; ls -l /proc/self/fd");
    assert!(!out.contains(&data), "{out}");
    let deployment = run(&one, "echo $MICRO_DEPLOYMENT");
    assert!(
        deployment.trim().len() < 4 || !out.contains(deployment.trim()),
        "{deployment}: {out}"
    );
}

#[test]
fn the_server_refuses_secret_files_every_user_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca = micro_pki::Ca::load_or_create(&dir.path().join("ca")).unwrap();
    let issued = ca.issue_server(&["127.0.0.1".to_owned()], 30).unwrap();
    std::fs::write(&cert, issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["server", "--address", "127.0.0.1:0"])
        .env("MICRO_HOME", dir.path().join("home"))
        .env("MICRO_TLS_CERT", &cert)
        .env("MICRO_TLS_KEY", &key)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("--tls-key")
            && said.contains("every user of this machine may read it")
            && said.contains("chmod 600"),
        "{said}"
    );
}

/// Run in a service: 20 folders of 250-byte names one inside the other (a path past
/// PATH_MAX, which the platform's old walk counted as nothing), then 300 MiB at the
/// bottom, written until the disk says no; then it waits.
const DEEP_FILL: &str = r#"import os, time
fd = os.open(".", os.O_RDONLY)
for i in range(20):
    name = "d" * 250
    os.mkdir(name, dir_fd=fd)
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
out = os.open("hidden", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
try:
    for i in range(300):
        os.write(out, b"x" * (1 << 20))
except OSError as e:
    print("the disk said", e, flush=True)
time.sleep(100000)
"#;

/// Run in a service: 100,000 empty files (which the old walk counted as nothing).
const MANY_FILES: &str = r#"import os, time
os.mkdir("many")
try:
    for i in range(100000):
        open("many/f%d" % i, "w").close()
except OSError as e:
    print("the disk said", e, flush=True)
time.sleep(100000)
"#;

/// Bytes of `path` on disk, as the filesystem charges them.
fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// Waits for `name` in `ns` to be stopped with a message containing `says`; returns it.
fn stopped_saying(p: &Platform, ns: &str, name: &str, says: &str) -> String {
    let mut message = String::new();
    p.wait_for(&format!("{name} to be stopped"), || {
        let s = p.service(Some(ns), name);
        message = s
            .as_ref()
            .and_then(|s| s["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        message.contains(says) && s.is_some_and(|s| s["status"] == "error")
    });
    message
}

#[test]
fn a_tenant_cannot_hide_what_it_writes_from_its_disk_quota() {
    let p = Platform::start();
    for (ns, limit) in [
        ("deep", "checkout-size=64Mi"),
        ("many", "checkout-files=2000"),
    ] {
        p.ok(&["admin", "namespace", "create", ns]);
        p.ok(&["admin", "quota", ns, limit]);
    }
    for (ns, script) in [("deep", DEEP_FILL), ("many", MANY_FILES)] {
        p.write_service(
            ns,
            &[
                ("service.yaml", "run: python3 -u fill.py\n"),
                ("fill.py", script),
            ],
        );
        p.ok(&["run", &format!("./{ns}"), "--namespace", ns]);
    }
    // The filesystem refuses past the quota, as it happens; the platform then stops the
    // writer and removes what it wrote.
    let said = stopped_saying(&p, "deep", "deep", "checkout-size quota of 64Mi");
    assert!(said.contains("removed"), "{said}");
    let said = stopped_saying(&p, "many", "many", "checkout-files quota of 2000");
    assert!(said.contains("removed"), "{said}");
    // Stopped: gone once its grace period is over (it may still be in it here).
    p.wait_for("the writers to be gone", || {
        p.processes("fill.py").is_empty()
    });
    for ns in ["deep", "many"] {
        let service = p.data.join("runtime").join(ns).join(ns);
        p.wait_for(&format!("{ns}'s files to be removed"), || {
            std::fs::read_dir(&service).map_or(true, |mut d| d.next().is_none())
        });
        // The platform's disk was charged at most the quota (and ext4's own tables).
        let image = p.data.join("volumes").join(format!("{ns}.ext4"));
        assert!(
            allocated(&image) < 80 << 20,
            "{ns}: {} bytes",
            allocated(&image)
        );
    }
    p.ok(&["status", "--namespace", "deep"]);
}

#[test]
fn builds_are_bounded_like_services() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "evil"]);
    p.ok(&[
        "admin",
        "quota",
        "evil",
        "checkout-size=32Mi",
        "build-time=1m",
        "memory=1200Mi",
    ]);
    let deploy = |name: &str, spec: &str| {
        p.write_service(name, &[("service.yaml", spec), ("main.py", SHELL)]);
        p.micro(&["run", &format!("./{name}"), "--namespace", "evil"])
    };
    // A build that never ends is stopped at its build_timeout, and leaves nothing.
    let out = deploy(
        "sleeper",
        "build: sleep 100000\nbuild_timeout: 3s\nrun: python3 -u main.py\nresources: { memory: 64Mi }\n",
    );
    assert!(out.status.success(), "{out:?}");
    let said = stopped_saying(&p, "evil", "sleeper", "build_timeout");
    assert!(said.contains("removed"), "{said}");
    assert!(
        p.processes("sleep 100000").is_empty(),
        "the build still runs"
    );
    assert!(
        std::fs::read_dir(p.data.join("runtime/evil/sleeper"))
            .map_or(true, |mut d| d.next().is_none())
    );
    // A build that writes past the quota is refused by the disk, and its files go; its
    // log stays within its bound however much it prints.
    let out = deploy(
        "filler",
        "build: yes 'build output that never ends' | head -c 24000000; dd if=/dev/zero of=big bs=1M count=100\nrun: python3 -u main.py\nresources: { memory: 64Mi }\n",
    );
    assert!(out.status.success(), "{out:?}");
    let said = stopped_saying(&p, "evil", "filler", "checkout");
    assert!(said.contains("removed"), "{said}");
    let logs = p.data.join("logs/evil");
    for file in ["filler.log", "filler.log.1"] {
        let size = std::fs::metadata(logs.join(file)).map_or(0, |m| m.len());
        assert!(size < 9 << 20, "{file} is {size} bytes");
    }
    let image = p.data.join("volumes/evil.ext4");
    assert!(allocated(&image) < 48 << 20, "{} bytes", allocated(&image));
    // A spec cannot ask more build time than its namespace may have…
    let out = deploy(
        "patient",
        "build: true\nbuild_timeout: 2m\nrun: python3 -u main.py\n",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("over quota: build time"),
        "{said}"
    );
    // …and a build counts against the memory quota beside the replicas: two more
    // replicas of 400Mi fit in 1200Mi with the others' (128Mi reserved by one without
    // resources), a build of 400Mi beside them does not.
    let out = deploy(
        "two",
        "build: true\nreplicas: 2\nrun: python3 -u main.py\nresources: { memory: 400Mi }\n",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && said.contains("over quota: memory")
            && said.contains("would be 1328Mi"),
        "{said}"
    );
}

/// Answers every request with a redirect to `http://127.0.0.1:PORT` + its path.
const REDIRECTOR: &str = r#"
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class R(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:%s%s" % (sys.argv[2], self.path))
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_POST = do_GET
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.2", int(sys.argv[1])), R).serve_forever()
"#;

#[test]
fn the_platform_follows_no_redirect_a_tenants_source_answers() {
    // Local addresses allowed, so the platform really connects to the redirector.
    let p = Platform::start_with(&[("MICRO_ALLOW_LOCAL_SOURCES", "true")]);
    p.ok(&["admin", "namespace", "create", "evil"]);
    // What the redirect points at: a listener of this machine's loopback, counting.
    let inner = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    inner.set_nonblocking(true).unwrap();
    let inner_port = inner.local_addr().unwrap().port();
    let port = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redirector = std::process::Command::new("python3")
        .args(["-c", REDIRECTOR, &port.to_string(), &inner_port.to_string()])
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _redirector = Kill(&mut redirector);
    p.wait_for("the redirector to listen", || {
        std::net::TcpStream::connect(("127.0.0.2", port)).is_ok()
    });
    p.ok(&["clone", "work", "--namespace", "evil"]);
    let dir = p.work.join("work");
    let commit = p.git_ok(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    let url = format!("http://127.0.0.2:{port}/x.git");
    push_source_service(&p, &dir, "bounce", &url, &commit);
    p.wait_for("the fetch to fail", || {
        p.service(Some("evil"), "bounce")
            .is_some_and(|s| s["status"] == "error")
    });
    let message = p.service(Some("evil"), "bounce").unwrap()["message"].to_string();
    assert!(message.contains("cannot fetch"), "{message}");
    assert!(
        matches!(inner.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the platform followed the redirect to 127.0.0.1:{inner_port}"
    );
}

/// The holes in a replica's network are the server's own sockets, and the only way out:
/// its namespace has no interface but its loopback; a tenant opening connections to the
/// API without end holds at most its share of them, and the platform goes on answering
/// everyone else.
#[test]
fn a_service_cannot_make_the_server_hold_sockets_without_bound() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "evil"]);
    deploy_shell(&p, "evil", "shell", "");
    let sh = Shell { p: &p };
    // Its network is its loopback and the API's port on it: no interface, address or
    // neighbour of another replica's to spoof or reach, over IPv4 or IPv6.
    let (out, _) = sh.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    assert_eq!(out.trim(), "lo", "interfaces: {out}");
    let (out, _) = sh.run(
        "python3 -c '\nimport os, socket, urllib.parse as up\nport = up.urlparse(os.environ[\"MICRO_API\"]).port\ntry:\n    socket.create_connection((\"::1\", port), timeout=2); print(\"open\")\nexcept Exception as e: print(\"refused\", e)'",
    );
    assert!(out.starts_with("refused"), "the API over IPv6: {out}");
    // 600 connections to the API, held; then how many are still open after a while.
    let (out, rc) = sh.run(
        "python3 -c '\nimport os, socket, time, urllib.parse as up\nport = up.urlparse(os.environ[\"MICRO_API\"]).port\nheld = []\nfor _ in range(600):\n    try:\n        held.append(socket.create_connection((\"127.0.0.1\", port), timeout=2))\n    except Exception:\n        pass\ntime.sleep(2)\nopen_ = 0\nfor s in held:\n    s.setblocking(False)\n    try:\n        open_ += s.recv(1) != b\"\"\n    except BlockingIOError:\n        open_ += 1\n    except Exception:\n        pass\nprint(len(held), open_)'",
    );
    assert_eq!(rc, 0, "{out}");
    let mut counts = out.split_whitespace().map(|n| n.parse::<usize>().unwrap());
    let (made, open) = (counts.next().unwrap(), counts.next().unwrap());
    assert!(made > 0, "{out}");
    assert!(
        open <= 256,
        "a replica holds {open} of the server's connections"
    );
    // Everyone else is still answered, and so is the tenant's own next call.
    still_answered(&p);
}

#[test]
fn a_service_cannot_pin_the_machines_memory_in_socket_buffers() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "evil"]);
    deploy_shell(&p, "evil", "shell", "resources: { memory: 64Mi }\n");
    let sh = Shell { p: &p };
    // Pairs of connections on its own loopback, each filled until the kernel takes no
    // more: socket buffers are kernel memory, ~780 MB for 200 pairs when nobody is
    // charged for them (the whole machine's TCP memory is ~2 GiB here).
    let (out, rc) = sh.run(
        "python3 -c '\nimport socket\nl = socket.socket(); l.bind((\"127.0.0.1\", 0)); l.listen(1024)\nheld, total = [], 0\nfor _ in range(200):\n    try:\n        c = socket.create_connection(l.getsockname(), timeout=2); s, _ = l.accept()\n    except Exception:\n        break\n    held += [c, s]; c.setblocking(False)\n    try:\n        while True:\n            total += c.send(b\"x\" * 65536)\n    except OSError:\n        pass\nprint(len(held) // 2, total)'",
    );
    assert_eq!(rc, 0, "{out}");
    let mut figures = out.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let (pairs, queued) = (figures.next().unwrap(), figures.next().unwrap());
    assert!(pairs > 20, "it could open only {pairs} pairs: {out}");
    assert!(
        queued <= 96 << 20,
        "a replica with 64Mi of memory queued {queued} bytes in {pairs} connections"
    );
    // Its own next call, and everyone else, are still answered.
    still_answered(&p);
}
