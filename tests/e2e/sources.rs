//! Services whose code lives in another git repo, served over HTTP by a real
//! `git http-backend` from a local bare repo.

use crate::harness::Platform;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A minimal CGI bridge: every request goes to `git http-backend` (smart HTTP).
const FORGE: &str = r#"
import os, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
root = sys.argv[2]
class Git(BaseHTTPRequestHandler):
    def handle_git(self):
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        sep = out.find(b"\r\n\r\n"); skip = 4
        if sep < 0:
            sep = out.find(b"\n\n"); skip = 2
        head, rest = out[:sep].decode(), out[sep + skip:]
        status = 200
        headers = []
        for line in head.splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = do_POST = handle_git
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Git).serve_forever()
"#;

struct Forge {
    child: Child,
    port: u16,
    root: PathBuf,
}

impl Drop for Forge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Forge {
    fn start(root: &Path) -> Self {
        std::fs::create_dir_all(root).unwrap();
        let script = root.join("forge.py");
        std::fs::write(&script, FORGE).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(root)
            .spawn()
            .unwrap();
        let forge = Forge {
            child,
            port,
            root: root.to_owned(),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return forge;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("forge did not start");
    }

    fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }
}

const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(open('version.txt').read().encode())\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

/// A working copy of the forge's `greeter` repo, with the service under `app/`.
fn publish(p: &Platform, forge: &Forge, version: &str, tag: Option<&str>) {
    let src = forge.root.join("src");
    if !src.exists() {
        p.git_ok(
            &forge.root,
            &["init", "-q", "--bare", "-b", "main", "greeter"],
        );
        p.git_ok(
            &forge.root,
            &[
                "clone",
                "-q",
                forge.root.join("greeter").to_str().unwrap(),
                "src",
            ],
        );
        std::fs::create_dir_all(src.join("app")).unwrap();
        std::fs::write(src.join("app/service.yaml"), "run: python3 -u main.py\n").unwrap();
        std::fs::write(src.join("app/main.py"), APP).unwrap();
    }
    std::fs::write(src.join("app/version.txt"), version).unwrap();
    p.git_ok(&src, &["add", "."]);
    p.git_ok(&src, &["commit", "-qm", version]);
    if let Some(tag) = tag {
        p.git_ok(&src, &["tag", tag]);
    }
    p.git_ok(&src, &["push", "-q", "--tags", "origin", "HEAD:main"]);
}

fn head_of(p: &Platform, dir: &Path) -> String {
    p.git_ok(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn run_update_and_pin_services_from_another_repo() {
    let forge_dir = tempfile::tempdir().unwrap();
    let forge = Forge::start(forge_dir.path());
    // The forge is on this machine: an operator's choice, made with a flag.
    let p = Platform::start_with(&[
        (
            "MICRO_SOURCE_BASE",
            &format!("http://127.0.0.1:{}", forge.port),
        ),
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
    ]);
    publish(&p, &forge, "v1", Some("v1.0"));
    let v1 = head_of(&p, &forge.root.join("src"));

    // A URL, following its default branch. (Without --name, the service would be named
    // after the folder: `app`.)
    let url = forge.url("greeter");
    p.ok(&["run", &url, "--path", "app", "--name", "greeter", "--wait"]);
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "v1");
    p.ok(&["clone", "repo"]);
    let spec = std::fs::read_to_string(p.work.join("repo/services/greeter/service.yaml")).unwrap();
    assert!(
        spec.contains(&format!("ref: {v1}")),
        "pins the exact commit: {spec}"
    );
    assert!(
        spec.contains("track: \"main\""),
        "remembers what was asked: {spec}"
    );
    let status = p.wait_running(None, "greeter", None);
    assert_eq!(status["source"], url.as_str());

    // A new commit upstream: `update` pins it, and a second `update` changes nothing.
    publish(&p, &forge, "v2", None);
    p.ok(&["update", "greeter", "--wait"]);
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "v2");
    let repo = p.work.join("repo");
    p.git_ok(&repo, &["pull", "-q"]);
    let after_update = head_of(&p, &repo);
    let out = p.micro(&["update", "greeter"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("up to date"));
    p.git_ok(&repo, &["pull", "-q"]);
    assert_eq!(
        head_of(&p, &repo),
        after_update,
        "no commit when nothing changed"
    );

    // A tag, under another name; and a short name resolved against the source base.
    p.ok(&[
        "run",
        &format!("{url}@v1.0"),
        "--path",
        "app",
        "--name",
        "pinned",
        "--wait",
    ]);
    assert_eq!(p.ok(&["call", "pinned", "/"]).trim(), "v1");
    p.ok(&[
        "run",
        "greeter@v1.0",
        "--path",
        "app",
        "--name",
        "short",
        "--wait",
    ]);
    assert_eq!(p.ok(&["call", "short", "/"]).trim(), "v1");
    assert_eq!(p.micro(&["diff"]).status.code(), Some(0));

    // Clear errors, nothing committed.
    assert!(
        p.fails(&["run", &format!("{url}@no-such-tag"), "--path", "app"])
            .contains("no branch or tag")
    );
    assert!(
        p.fails(&["run", &url, "--path", "nowhere"])
            .contains("nowhere")
    );
}

#[test]
fn short_names_without_a_source_base_are_a_clear_error() {
    let p = Platform::start();
    let err = p.fails(&["run", "greeter"]);
    assert!(err.contains("no source base"), "{err}");
    // A local folder of that name wins.
    p.write_service(
        "greeter",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", APP),
            ("version.txt", "local"),
        ],
    );
    p.ok(&["run", "greeter", "--wait"]);
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "local");
}

/// A `source:` service's toolchains are decided on its fetched files by the same rule as a
/// folder of the tenant's own repo: locally its checkout gets the virtualenv and Node's
/// PATH; on a cluster the pod's build tests the same markers on its own checkout (what
/// `micro manifests` shows), with the same PATH.
#[test]
fn a_source_service_gets_the_same_toolchains_on_both_runtimes() {
    let forge_dir = tempfile::tempdir().unwrap();
    let forge = Forge::start(forge_dir.path());
    let p = Platform::start_with(&[("MICRO_ALLOW_LOCAL_SOURCES", "true")]);
    let root = &forge.root;
    p.git_ok(root, &["init", "-q", "--bare", "-b", "main", "tools"]);
    p.git_ok(
        root,
        &[
            "clone",
            "-q",
            root.join("tools").to_str().unwrap(),
            "tools-src",
        ],
    );
    let src = root.join("tools-src");
    for (name, content) in crate::builds::PYTHON_AND_NODE {
        let file = src.join("app").join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    p.git_ok(&src, &["add", "."]);
    p.git_ok(&src, &["commit", "-qm", "tools"]);
    p.git_ok(&src, &["push", "-q", "origin", "HEAD:main"]);

    p.ok(&[
        "run",
        &forge.url("tools"),
        "--path",
        "app",
        "--name",
        "tools",
        "--wait",
    ]);
    crate::builds::assert_local_toolchains(&p, "tools");
    crate::builds::assert_cluster_toolchains(&p, "tools");
}
