//! Rollouts: a new revision (code, build, replicas) replaces the old one with no failed
//! call; readiness is honest; a revision that cannot become ready leaves the old one
//! serving and says why.

use crate::harness::Platform;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Answers its `version.txt`; `/health` answers `$HEALTH` (default 200).
const WEB: &str = r#"
import os, http.server
VERSION = open("version.txt").read().strip()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(os.environ.get("HEALTH", "200")) if self.path == "/health" else 200
        body = VERSION.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn web(p: &Platform, spec: &str, version: &str) {
    p.write_service(
        "web",
        &[
            ("service.yaml", spec),
            ("main.py", WEB),
            ("version.txt", version),
        ],
    );
}

/// Calls `web` through the platform in a loop until stopped: the answers and failures.
struct Caller {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Result<String, String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Caller {
    fn start(p: &Platform) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let command = {
            let mut c = p.command(&["call", "web", "/"]);
            c.stdin(std::process::Stdio::null());
            c
        };
        let (program, args, envs, dir) = (
            command.get_program().to_owned(),
            command.get_args().map(|a| a.to_owned()).collect::<Vec<_>>(),
            command
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
                .collect::<Vec<_>>(),
            command.get_current_dir().map(|d| d.to_owned()),
        );
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut c = std::process::Command::new(&program);
                    c.args(&args);
                    for (k, v) in &envs {
                        match v {
                            Some(v) => c.env(k, v),
                            None => c.env_remove(k),
                        };
                    }
                    if let Some(d) = &dir {
                        c.current_dir(d);
                    }
                    let out = c.output().unwrap();
                    let answer = if out.status.success() {
                        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
                    } else {
                        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
                    };
                    seen.lock().unwrap().push(answer);
                }
            })
        };
        Caller {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn answered(&self, version: &str) -> bool {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.as_deref() == Ok(version))
    }

    /// Stops calling; every answer, and asserts none failed.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        let failed: Vec<_> = seen.iter().filter_map(|a| a.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} of {} calls failed: {:?}",
            failed.len(),
            seen.len(),
            failed.first()
        );
        seen.into_iter().map(Result::unwrap).collect()
    }
}

#[test]
fn updates_and_scaling_roll_out_with_no_failed_call() {
    let p = Platform::start();
    web(
        &p,
        "run: python3 -u main.py\nreadiness: { path: /health }\n",
        "v1",
    );
    p.ok(&["run", "./web", "--wait"]);

    // A slow build: the old revision serves all along.
    let caller = Caller::start(&p);
    p.wait_for("the first answers", || caller.answered("v1"));
    web(
        &p,
        "build: sleep 6\nrun: python3 -u main.py\nreadiness: { path: /health }\n",
        "v2",
    );
    p.ok(&["update", "web", "--wait"]);
    p.wait_for("an answer from v2", || caller.answered("v2"));
    let answers = caller.finish();
    assert!(answers.len() > 10, "called all along: {}", answers.len());
    let first_v2 = answers.iter().position(|a| a == "v2").unwrap();
    assert!(
        answers[first_v2..].iter().all(|a| a == "v2"),
        "once v2 answers, v1 no longer does"
    );

    // Scaling out and in.
    let caller = Caller::start(&p);
    p.wait_for("answers", || caller.answered("v2"));
    let said = p.ok(&["scale", "web", "3", "--wait"]);
    assert!(said.is_empty() || !said.contains("error"), "{said}");
    assert_eq!(p.service(None, "web").unwrap()["ready"], 3);
    p.ok(&["scale", "web", "1", "--wait"]);
    let answers = caller.finish();
    assert!(answers.iter().all(|a| a == "v2"));
    let s = p.service(None, "web").unwrap();
    assert_eq!(
        (s["ready"].as_u64(), s["desired"].as_u64()),
        (Some(1), Some(1))
    );
    let spec = std::fs::read_to_string(p.work.join("web/service.yaml")).unwrap();
    assert!(
        !spec.contains("replicas"),
        "the local folder is not touched"
    );
    let history = p.ok(&["history"]);
    assert!(history.contains("Scale web to 1"), "{history}");
}

#[test]
fn a_service_that_never_listens_is_not_running_and_wait_says_why() {
    let p = Platform::start();
    p.write_service(
        "idle",
        &[(
            "service.yaml",
            "run: sleep 1000\nreadiness: { timeout: 3s }\n",
        )],
    );
    let out = p.micro(&["run", "./idle", "--wait"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("not ready within 3s"), "{said}");
    assert!(said.contains("nothing listens on $PORT"), "{said}");
    let s = p.service(None, "idle").unwrap();
    assert_eq!(s["status"], "error", "{s}");
    assert_eq!(s["ready"], 0, "{s}");
    assert!(
        p.processes("sleep 1000").is_empty(),
        "a failed rollout stops its replicas"
    );
}

#[test]
fn a_revision_that_cannot_become_ready_leaves_the_old_one_serving() {
    let p = Platform::start();
    web(
        &p,
        "run: python3 -u main.py\nreadiness: { path: /health }\n",
        "v1",
    );
    p.ok(&["run", "./web", "--wait"]);

    let attempts = [
        (
            "build: echo compiling; exit 4\nrun: python3 -u main.py\n",
            "build exited with code 4",
        ),
        (
            // Long enough for Python to start on a loaded machine: the point is the 503.
            "run: python3 -u main.py\nenv: { HEALTH: \"503\" }\nreadiness: { path: /health, timeout: 8s }\n",
            "GET /health answered 503",
        ),
        (
            "run: python3 -u nosuch.py\n",
            "exited with code 2 before it was ready",
        ),
    ];
    for (spec, why) in attempts {
        web(&p, spec, "broken");
        let out = p.micro(&["update", "web", "--wait"]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(why), "{why}: {said}");
        assert_eq!(p.ok(&["call", "web", "/"]).trim(), "v1", "after: {why}");
        let s = p.service(None, "web").unwrap();
        assert_eq!(s["status"], "error", "{s}");
        assert!(
            s["message"].as_str().unwrap().contains("still serves"),
            "{s}"
        );
    }

    // A good revision after the failures replaces v1 as usual.
    web(&p, "run: python3 -u main.py\n", "v3");
    p.ok(&["update", "web", "--wait"]);
    assert_eq!(p.ok(&["call", "web", "/"]).trim(), "v3");
}

/// Answers with the status its own identity gets from the platform API.
const IDENTITY: &str = r#"
import os, http.server, urllib.request, urllib.error
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        req = urllib.request.Request(os.environ["MICRO_API"] + "/api/v1/whoami",
            headers={"Authorization": "Bearer " + os.environ["MICRO_TOKEN"]})
        try:
            code = urllib.request.urlopen(req, timeout=5).status
        except urllib.error.HTTPError as e:
            code = e.code
        body = f"{open('version.txt').read().strip()} {code}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn the_serving_revision_keeps_its_identity_through_rollouts() {
    let p = Platform::start();
    let deploy = |spec: &str, version: &str| {
        p.write_service(
            "who",
            &[
                ("service.yaml", spec),
                ("main.py", IDENTITY),
                ("version.txt", version),
            ],
        );
    };
    deploy("run: python3 -u main.py\n", "v1");
    p.ok(&["run", "./who", "--wait"]);
    assert_eq!(p.ok(&["call", "who", "/"]).trim(), "v1 200");

    // A new deployment whose rollout fails: v1 serves on, and can still reach the API.
    deploy("build: exit 1\nrun: python3 -u main.py\n", "v2");
    assert!(!p.micro(&["update", "who", "--wait"]).status.success());
    assert_eq!(p.ok(&["call", "who", "/"]).trim(), "v1 200");

    // One that rolls out: it serves with an identity of its own.
    deploy("run: python3 -u main.py\n", "v3");
    p.ok(&["update", "who", "--wait"]);
    p.wait_for("v3 alone", || {
        String::from_utf8_lossy(&p.micro(&["call", "who", "/"]).stdout).trim() == "v3 200"
    });
    p.ok(&["restart", "who", "--wait"]);
    assert_eq!(p.ok(&["call", "who", "/"]).trim(), "v3 200");
}

/// `micro scale NAME 0` pauses a service (as `heroku ps:scale web=0` does): nothing runs,
/// status says `paused`, and scaling up brings it back.
#[test]
fn scaling_to_zero_pauses_and_scaling_up_resumes() {
    let p = Platform::start();
    web(&p, "run: python3 -u main.py\n", "v1");
    p.ok(&["run", "./web", "--wait"]);
    assert!(!p.processes("main.py").is_empty());
    let out = p.micro(&["scale", "web", "0", "--wait"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("web: paused at"), "{said}");
    let s = p.service(None, "web").unwrap();
    assert_eq!(
        (s["status"].as_str(), s["desired"].as_u64()),
        (Some("paused"), Some(0)),
        "{s}"
    );
    p.wait_for("the paused service's processes to be gone", || {
        p.processes("main.py").is_empty()
    });
    let status = p.ok(&["status", "web"]);
    assert!(status.contains("paused"), "{status}");
    p.ok(&["scale", "web", "1", "--wait"]);
    assert!(p.ok(&["call", "web", "/"]).contains("v1"));
}
