//! Bench 17 (issue 30): preview environments. A namespace linked to a forge repo (a local
//! bare repo), a two-service app (`web`, public, and `api`); pull requests opened by
//! signed `pull_request` deliveries, as GitHub sends them. Measured: delivery → the
//! preview's URL answering with the head's text; a second push to a pull request whose
//! build is cached → its URL answering the new text; closed → its namespace, repo and
//! route gone; and what 5 idle previews cost in memory.

use super::{BIN, Server, bench_certs, free_port, git, micro, pss_rss, start};
use hmac::{Hmac, Mac};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const WEB: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = open('text').read().encode()\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n    def log_message(self, *a): pass\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

struct Linked {
    server: Server,
    edge: u16,
    hook: String,
    secret: String,
    work: std::path::PathBuf,
    forge: std::path::PathBuf,
}

/// A server with an edge whose `default` namespace follows a forge repo holding `web`
/// and `api` (`build`, when given, is `api`'s build step, with an empty
/// requirements.txt), previews on.
fn linked(root: &Path, build: Option<&str>) -> Linked {
    let (cert, key) = bench_certs(root);
    let edge = free_port();
    let edge_addr = format!("127.0.0.1:{edge}");
    let server = start(
        root,
        &[
            "--apps-domain",
            "apps.test",
            "--edge-address",
            &edge_addr,
            "--edge-http-address",
            "off",
            "--apps-cert",
            cert.to_str().unwrap(),
            "--apps-key",
            key.to_str().unwrap(),
            "--allow-local-sources",
            "--poll",
            "3600",
        ],
    );
    let home = root.join("home");
    micro(root, &["clone", "work"]);
    let work = root.join("work");
    for (name, public) in [("web", true), ("api", false)] {
        let dir = work.join("services").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut spec = format!("run: python3 -u app.py\npublic: {public}\n");
        if let (Some(build), "api") = (build, name) {
            spec.push_str(&format!("build: {build}\n"));
            std::fs::write(dir.join("requirements.txt"), "").unwrap();
        }
        std::fs::write(dir.join("service.yaml"), spec).unwrap();
        std::fs::write(dir.join("app.py"), WEB).unwrap();
        std::fs::write(dir.join("text"), "main").unwrap();
    }
    std::fs::write(
        work.join("micro.yaml"),
        "schema: 1\nnamespace: default\npreviews:\n  enabled: true\n  services: [web, api]\n  max: 5\n",
    )
    .unwrap();
    git(&work, &home, &["add", "-A"]);
    git(&work, &home, &["commit", "-qm", "app"]);
    git(&work, &home, &["push", "-q"]);
    let forge = root.join("forge.git");
    git(
        root,
        &home,
        &["init", "-q", "--bare", forge.to_str().unwrap()],
    );
    git(
        &work,
        &home,
        &[
            "push",
            "-q",
            forge.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ],
    );
    let out = Command::new(BIN)
        .args([
            "repo",
            "link",
            &format!("file://{}", forge.display()),
            "--forge",
            "github",
            "-o",
            "json",
        ])
        .current_dir(root)
        .env("MICRO_HOME", &home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web = format!("https://web-default.apps.test:{edge}/");
    let deadline = Instant::now() + Duration::from_secs(300);
    while get(&web, edge).as_deref() != Some("main") {
        assert!(Instant::now() < deadline, "the app never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    Linked {
        server,
        edge,
        hook: v["webhook_url"].as_str().unwrap().to_owned(),
        secret: v["webhook_secret"].as_str().unwrap().to_owned(),
        work,
        forge,
    }
}

/// The body of `url` through the edge at `edge`, if it answers 200.
fn get(url: &str, edge: u16) -> Option<String> {
    let host = url.trim_start_matches("https://").split(':').next()?;
    let out = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "--resolve",
        ])
        .arg(format!("{host}:{edge}:127.0.0.1"))
        .arg(url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    (code == "200").then(|| body.to_owned())
}

fn status(url: &str, edge: u16) -> String {
    let host = url
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap();
    let out = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--resolve")
        .arg(format!("{host}:{edge}:127.0.0.1"))
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Linked {
    /// Commits `text` as web's answer, pushes it as pull request `n`'s head; the commit.
    fn push_pull(&self, root: &Path, n: u64, text: &str) -> String {
        let home = root.join("home");
        std::fs::write(self.work.join("services/web/text"), text).unwrap();
        git(&self.work, &home, &["commit", "-qam", text]);
        let sha = super::head_of(&self.work);
        git(
            &self.work,
            &home,
            &[
                "push",
                "-qf",
                self.forge.to_str().unwrap(),
                &format!("HEAD:refs/pull/{n}/head"),
            ],
        );
        git(&self.work, &home, &["reset", "-q", "--hard", "HEAD~1"]);
        sha
    }

    /// Sends a signed `pull_request` delivery.
    fn deliver(&self, rt: &tokio::runtime::Runtime, action: &str, n: u64, sha: &str, id: &str) {
        let body = serde_json::json!({"action": action, "number": n, "pull_request": {"number": n,
            "head": {"sha": sha, "ref": "f"}, "base": {"ref": "main"}, "merged": false}})
        .to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let status = rt.block_on(async {
            reqwest::Client::new()
                .post(&self.hook)
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", id)
                .header("x-hub-signature-256", signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status.as_u16(), 202);
    }

    /// From `started` to `micro previews` calling `n` ready at `head` (every service
    /// running).
    fn until_ready(&self, root: &Path, n: u64, head: &str, started: Instant) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let out = Command::new(BIN)
                .args(["previews", "-o", "json"])
                .current_dir(root)
                .env("MICRO_HOME", root.join("home"))
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let ready = v.as_array().into_iter().flatten().any(|p| {
                p["number"] == n
                    && p["environment"]["state"] == "ready"
                    && p["environment"]["head"] == head
            });
            if ready {
                return started.elapsed();
            }
            assert!(Instant::now() < deadline, "preview #{n} never ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, n: u64) -> String {
        format!("https://web-default-pr-{n}.apps.test:{}/", self.edge)
    }

    /// From a delivery to `n`'s URL answering `text`.
    fn until_answers(&self, n: u64, text: &str, started: Instant) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(600);
        while get(&self.url(n), self.edge).as_deref() != Some(text) {
            assert!(
                Instant::now() < deadline,
                "preview #{n} never answered {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(super) fn bench_previews(rt: &tokio::runtime::Runtime) {
    // Without a build: 5 pull requests opened one after another, then left idle.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let l = linked(root, None);
    let server_pid = l.server.child.id();
    std::thread::sleep(Duration::from_secs(2));
    let server_before = pss_rss(server_pid).0;
    let (mut opened, mut ready) = (Vec::new(), Vec::new());
    for n in 1..=5u64 {
        let sha = l.push_pull(root, n, &format!("pr{n}"));
        let t = Instant::now();
        l.deliver(rt, "opened", n, &sha, &format!("o{n}"));
        opened.push(l.until_answers(n, &format!("pr{n}"), t).as_secs_f64());
        ready.push(l.until_ready(root, n, &sha, t).as_secs_f64());
    }
    println!(
        "bench 17 previews, no build: pull request opened → ready (both services) median {:.2} s; → its URL answering: median {:.2} s (each: {})",
        median(ready),
        median(opened.clone()),
        opened
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Idle: what start-up allocated has settled.
    std::thread::sleep(Duration::from_secs(5));
    let (mut app, mut processes) = (0u64, 0usize);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cgroups
            .lines()
            .any(|l| l.contains(":pids:") && l.contains("/default-pr-"))
        {
            app += pss_rss(pid).0;
            processes += 1;
        }
    }
    let grew = pss_rss(server_pid).0.saturating_sub(server_before);
    println!(
        "bench 17 previews, 5 idle (2 services each): their processes' PSS {:.1} MiB in all, {:.1} MiB per preview ({processes} processes); the server grew {:.1} MiB, {:.2} MiB per preview",
        app as f64 / 1024.0,
        app as f64 / 1024.0 / 5.0,
        grew as f64 / 1024.0,
        grew as f64 / 1024.0 / 5.0
    );
    let mut gone = Vec::new();
    for n in 1..=5u64 {
        let t = Instant::now();
        l.deliver(rt, "closed", n, "0", &format!("c{n}"));
        let repo = root.join(format!("data/repos/default-pr-{n}.git"));
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let listed = Command::new(BIN)
                .args(["status", "--namespace", &format!("default-pr-{n}")])
                .current_dir(root)
                .env("MICRO_HOME", root.join("home"))
                .output()
                .unwrap()
                .status
                .success();
            if !listed && !repo.exists() && status(&l.url(n), l.edge) == "404" {
                break;
            }
            assert!(Instant::now() < deadline, "#{n} never went");
            std::thread::sleep(Duration::from_millis(20));
        }
        gone.push(t.elapsed().as_secs_f64());
    }
    println!(
        "bench 17 previews: pull request closed → namespace, repo and route gone: median {:.2} s (each: {})",
        median(gone.clone()),
        gone.iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    drop(l);
    drop(tmp);

    // With a build (`api` makes its virtualenv): the preview's first build, then a
    // code-only push to the pull request, whose build reuses the preview's environment.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let l = linked(
        root,
        Some("python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt"),
    );
    let sha = l.push_pull(root, 1, "built");
    let t = Instant::now();
    l.deliver(rt, "opened", 1, &sha, "b1");
    l.until_answers(1, "built", t);
    let first = l.until_ready(root, 1, &sha, t);
    std::fs::write(
        l.work.join("services/api/app.py"),
        format!("{WEB}\n# changed\n"),
    )
    .unwrap();
    git(&l.work, &root.join("home"), &["commit", "-qam", "api code"]);
    let sha = l.push_pull(root, 1, "rebuilt");
    let t = Instant::now();
    l.deliver(rt, "synchronize", 1, &sha, "b2");
    l.until_answers(1, "rebuilt", t);
    let cached = l.until_ready(root, 1, &sha, t);
    println!(
        "bench 17 previews, with a build (`api` makes a virtualenv): opened → ready {:.2} s (the preview's first build); a code-only push → ready {:.2} s (its environment reused)",
        first.as_secs_f64(),
        cached.as_secs_f64()
    );
}
