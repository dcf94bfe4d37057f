//! Services outlive their server: one killed (SIGKILL) or stopped (SIGTERM) leaves them
//! running, and the next adopts them, each replica exactly once; `--stop-services`
//! stops them on purpose.

use crate::harness::Platform;

const APP: &str = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

#[test]
fn services_outlive_a_killed_or_stopped_server_and_the_next_one_adopts_them() {
    let mut p = Platform::start();
    p.write_service(
        "pair",
        &[
            (
                "service.yaml",
                "run: python3 -u pair_main.py\nreplicas: 2\n",
            ),
            ("pair_main.py", APP),
        ],
    );
    p.ok(&["run", "./pair", "--wait"]);
    let before = p.processes("pair_main.py");
    assert_eq!(before.len(), 2, "two replicas: {before:?}");

    // A second server on the same data dir stops before touching anything.
    let second = p
        .command(&["server", "--address", "127.0.0.1:0"])
        .env("MICRO_DATA_DIR", &p.data)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{said}");
    assert!(
        said.contains("is in use by another `micro server`"),
        "{said}"
    );
    assert_eq!(
        p.processes("pair_main.py"),
        before,
        "its services untouched"
    );
    // So does `--stop-services` while the server runs.
    assert!(
        p.stop_services()
            .contains("is in use by another `micro server`"),
        "a running server's services are not stopped under it"
    );
    assert_eq!(p.processes("pair_main.py"), before);

    // A crash (SIGKILL) leaves the replicas running...
    p.kill9();
    assert_eq!(
        p.processes("pair_main.py"),
        before,
        "the services outlive a killed server"
    );
    // ...and the next server adopts them: the same processes, routed to, their output
    // still reaching their log. Nothing starts twice.
    p.restart();
    assert_eq!(p.wait_running(None, "pair", None)["replicas"], "2/2");
    assert!(p.ok(&["call", "pair", "/"]).contains("pair_main.py"));
    p.micro(&["call", "pair", "/after-the-crash"]);
    p.wait_for("the adopted replicas' output in their log", || {
        p.ok(&["logs", "pair"]).contains("/after-the-crash")
    });
    assert_eq!(
        p.processes("pair_main.py"),
        before,
        "adopted, not started again"
    );
    assert!(
        p.ok(&["describe", "pair"]).contains("adopted"),
        "describe tells"
    );

    // Stopping the server on purpose (SIGTERM, Ctrl-C, an upgrade) leaves them too.
    let exit = p.stop();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert_eq!(
        p.processes("pair_main.py"),
        before,
        "SIGTERM leaves services running"
    );
    p.restart();
    assert_eq!(p.wait_running(None, "pair", None)["replicas"], "2/2");
    assert_eq!(p.processes("pair_main.py"), before);
    assert!(p.ok(&["call", "pair", "/"]).contains("pair_main.py"));

    // `--stop-services` stops them on purpose, once the server has stopped, and leaves
    // none of their cgroups behind.
    let groups: Vec<std::path::PathBuf> = p
        .processes("pair_main.py")
        .iter()
        .flat_map(|pid| {
            let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            own.lines()
                .filter_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let controllers = parts.nth(1)?;
                    let path = parts.next()?.trim_start_matches('/');
                    ["memory", "cpu", "pids"]
                        .into_iter()
                        .find(|c| controllers.split(',').any(|x| x == *c))
                        .map(|c| std::path::Path::new("/sys/fs/cgroup").join(c).join(path))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(groups.len(), 6, "{groups:?}");
    assert!(groups.iter().all(|g| g.is_dir()), "{groups:?}");
    p.stop();
    let said = p.stop_services();
    assert!(said.contains("stopped 1 services"), "{said}");
    p.wait_for("the services to stop", || {
        p.processes("pair_main.py").is_empty()
    });
    let left: Vec<_> = groups.iter().filter(|g| g.exists()).collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    // The next server starts them afresh.
    p.restart();
    assert_eq!(p.wait_running(None, "pair", None)["replicas"], "2/2");
    let after = p.processes("pair_main.py");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|pid| !before.contains(pid)), "{after:?}");
}

#[test]
fn kill9_in_the_middle_of_a_reconcile_then_restart_converges() {
    let mut p = Platform::start();
    p.write_service(
        "slow",
        &[
            (
                "service.yaml",
                "build: sleep 1; echo built\nrun: python3 -u slow_main.py\nreplicas: 2\n",
            ),
            ("slow_main.py", APP),
        ],
    );
    p.ok(&["run", "./slow", "--wait"]);
    // A new revision whose build is under way when the server dies.
    std::fs::write(p.work.join("slow/slow_main.py"), format!("# v2\n{APP}")).unwrap();
    std::fs::write(
        p.work.join("slow/service.yaml"),
        "build: sleep 30\nrun: python3 -u slow_main.py\nreplicas: 2\n",
    )
    .unwrap();
    p.ok(&["update", "slow"]);
    p.wait_for("the new build to start", || {
        p.service(None, "slow")
            .is_some_and(|s| s["status"] == "building")
    });
    p.kill9();
    // The head would build for 30s: push a quick build so the test need not wait.
    p.restart();
    std::fs::write(
        p.work.join("slow/service.yaml"),
        "build: echo quick\nrun: python3 -u slow_main.py\nreplicas: 2\n",
    )
    .unwrap();
    p.ok(&["update", "slow"]);
    let status = p.wait_running(None, "slow", None);
    assert_eq!(status["replicas"], "2/2");
    p.wait_for("exactly two replicas", || {
        p.processes("slow_main.py").len() == 2
    });
    let builds = p.processes("sleep 30");
    assert!(
        builds.is_empty(),
        "the interrupted build was reaped: {builds:?}"
    );
    let diff = p.micro(&["diff"]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "converged: nothing left to change"
    );
}

#[test]
fn a_push_cut_off_by_kill9_leaves_no_objects_behind_after_restart() {
    let mut p = Platform::start();
    // What git's receive-pack leaves when it is killed mid-push: its quarantine folder
    // of received objects, inside the repo's objects/.
    let quarantine = p
        .data
        .join("repos/default.git/objects/tmp_objdir-incoming-AbCdEf");
    std::fs::create_dir_all(quarantine.join("pack")).unwrap();
    std::fs::write(quarantine.join("pack/tmp_pack_1"), vec![0u8; 4096]).unwrap();
    p.kill9();
    p.restart();
    assert!(
        !quarantine.exists(),
        "the interrupted push's objects are gone"
    );
    // The repo is whole and still takes pushes.
    p.ok(&["clone", "work"]);
    let dir = p.work.join("work");
    p.git_ok(&dir, &["commit", "-q", "--allow-empty", "-m", "after"]);
    p.git_ok(&dir, &["push", "-q"]);
}

/// What a service was handed, as it sees it: where the API is and its certificate.
const HANDED: &str = r#"import json, os, http.server
def read(var):
    try:
        return open(os.environ[var]).read()[:27]
    except Exception as e:
        return type(e).__name__
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"api": os.environ.get("MICRO_API"), "cert": read("MICRO_TLS_CERT")}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// A service the server starts again as it starts is told where the API is and gets its
/// certificate, like one deployed later: nothing reconciles before the controller knows
/// both (a server once started services in that window without them, for good).
#[test]
fn services_started_with_the_server_get_the_api_and_their_certificate() {
    let mut p = Platform::start();
    p.write_service(
        "handed",
        &[
            ("service.yaml", "run: python3 -u handed.py\n"),
            ("handed.py", HANDED),
        ],
    );
    p.ok(&["run", "./handed", "--wait"]);
    let exit = p.stop();
    assert!(exit.success(), "{exit:?}");
    // Stopped on purpose, so the next server starts it as it starts.
    p.stop_services();
    p.restart();
    p.wait_running(None, "handed", None);
    let seen: serde_json::Value = serde_json::from_str(&p.ok(&["call", "handed", "/"])).unwrap();
    assert_eq!(seen["api"], p.url().as_str(), "{seen}");
    assert_eq!(seen["cert"], "-----BEGIN CERTIFICATE-----", "{seen}");
}

#[test]
fn a_socket_activated_server_restarts_without_refusing_a_connection() {
    let mut p = Platform::start_activated();
    let address = format!("127.0.0.1:{}", p.port);
    let ca = p.ca();
    // Calls on new connections, one after another, all through the restart.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = {
        let (stop, address, ca) = (stop.clone(), address.clone(), ca.clone());
        std::thread::spawn(move || {
            let (mut calls, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                calls += 1;
                if !crate::harness::healthz_within(
                    &address,
                    Some(&ca),
                    std::time::Duration::from_secs(60),
                ) {
                    failed += 1;
                }
            }
            (calls, failed)
        })
    };
    let before = p.ok(&["status", "-o", "json"]);
    p.restart_in_place();
    p.restart_in_place();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (calls, failed) = caller.join().unwrap();
    assert!(calls > 0);
    assert_eq!(
        failed, 0,
        "{failed} of {calls} calls failed during two restarts"
    );
    // It was restarted, twice, on the socket it was handed: no address of its own.
    let log = p.server_log();
    assert_eq!(log.matches("micro server ready").count(), 3, "{log}");
    assert_eq!(
        log.matches("listening on the socket the service manager handed over")
            .count(),
        3,
        "{log}"
    );
    // And the CLI goes on as before.
    assert_eq!(p.ok(&["status", "-o", "json"]), before);
}

#[test]
fn a_connection_that_never_sends_a_request_cannot_hold_a_restart() {
    let mut p = Platform::start_activated();
    // Anyone on the network: connect, then say nothing at all, several times over.
    let silent: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap())
        .collect();
    // The restart still ends (within the drain time, the wait `restart_in_place` allows),
    // and the silent connections were closed by the old server, not carried over.
    p.restart_in_place();
    for mut s in silent {
        use std::io::Read;
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert!(
            matches!(s.read(&mut buf), Ok(0) | Err(_)),
            "a silent connection was kept open"
        );
    }
    assert!(p.ok(&["whoami"]).contains("admin"));
}

/// What an upgrade looks like to tenants (issue 26): the service manager holds the
/// socket and the server restarts twice under a steady load of `micro call`s of a
/// service and `git push`es. No call and no push fails, and the service is the same
/// processes throughout: adopted, not started again.
#[test]
fn services_answer_calls_and_pushes_land_through_socket_activated_restarts() {
    let mut p = Platform::start_activated();
    p.write_service(
        "steady",
        &[
            ("service.yaml", "run: python3 -u steady_main.py\n"),
            ("steady_main.py", APP),
        ],
    );
    p.ok(&["run", "./steady", "--wait"]);
    let pids = p.processes("steady_main.py");
    assert_eq!(pids.len(), 1, "{pids:?}");
    p.ok(&["clone", "pusher"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (home, work, ca) = (p.home.clone(), p.work.clone(), p.ca());
    let caller = {
        let (stop, home, work) = (stop.clone(), home.clone(), work.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut times = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = std::time::Instant::now();
                let out = std::process::Command::new(crate::harness::BIN)
                    .args(["call", "steady", "/"])
                    .current_dir(&work)
                    .env("MICRO_HOME", &home)
                    .env_remove("MICRO_ENV")
                    .env_remove("MICRO_NAMESPACE")
                    .output()
                    .unwrap();
                times.push(started.elapsed());
                if !out.status.success()
                    || !String::from_utf8_lossy(&out.stdout).contains("steady_main.py")
                {
                    failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            (times, failures)
        })
    };
    let pusher = {
        let (stop, dir) = (stop.clone(), work.join("pusher"));
        std::thread::spawn(move || {
            let git = |args: &[&str]| {
                std::process::Command::new("git")
                    .arg("-c")
                    .arg(format!("http.sslCAInfo={}", ca.display()))
                    .args(args)
                    .current_dir(&dir)
                    .env("MICRO_HOME", &home)
                    .env_remove("GIT_SSL_CAINFO")
                    .env("GIT_TERMINAL_PROMPT", "0")
                    .env("GIT_AUTHOR_NAME", "Tess")
                    .env("GIT_AUTHOR_EMAIL", "tess@example.com")
                    .env("GIT_COMMITTER_NAME", "Tess")
                    .env("GIT_COMMITTER_EMAIL", "tess@example.com")
                    .output()
                    .unwrap()
            };
            let (mut pushes, mut failures) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                pushes += 1;
                std::fs::write(dir.join("NOTES.md"), format!("push {pushes}\n")).unwrap();
                assert!(git(&["add", "NOTES.md"]).status.success());
                assert!(git(&["commit", "-q", "-m", "a note"]).status.success());
                let out = git(&["push", "-q"]);
                if !out.status.success() {
                    failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            (pushes, failures)
        })
    };
    // Some calls and pushes before, then two restarts in a row.
    p.wait_for("some calls", || {
        p.ok(&["logs", "steady"]).matches("GET /").count() > 2
    });
    p.restart_in_place();
    p.restart_in_place();
    p.wait_for("calls after the restarts", || {
        p.ok(&["logs", "steady"]).matches("GET /").count() > 8
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut times, call_failures) = caller.join().unwrap();
    let (pushes, push_failures) = pusher.join().unwrap();
    assert!(
        call_failures.is_empty(),
        "{} of {} calls failed: {call_failures:?}",
        call_failures.len(),
        times.len()
    );
    assert!(pushes > 0);
    assert!(push_failures.is_empty(), "{push_failures:?}");
    assert_eq!(p.processes("steady_main.py"), pids, "not restarted");
    times.sort();
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    eprintln!(
        "{} calls, {pushes} pushes through two restarts; calls' p99 {p99:?}",
        times.len()
    );
    assert_eq!(p.wait_running(None, "steady", None)["replicas"], "1/1");
}

/// A restart restores what was serving: a service whose newer revision failed its
/// rollout goes on serving the revision before it, on the same processes, and status
/// still says the newer one failed (a restart once brought it back at the failing
/// revision, with nothing ready).
#[test]
fn a_restart_keeps_the_good_revision_serving_when_the_newer_one_failed() {
    let mut p = Platform::start();
    p.write_service(
        "keep",
        &[
            ("service.yaml", "run: python3 -u keep_main.py\n"),
            ("keep_main.py", APP),
        ],
    );
    p.ok(&["run", "./keep", "--wait"]);
    let pids = p.processes("keep_main.py");
    std::fs::write(
        p.work.join("keep/service.yaml"),
        "run: python3 -u nosuch.py\n",
    )
    .unwrap();
    let out = p.micro(&["update", "keep", "--wait"]);
    assert!(!out.status.success());
    let failed = p.service(None, "keep").unwrap();
    assert_eq!(failed["status"], "error", "{failed}");

    for crash in [false, true] {
        if crash {
            p.kill9();
        } else {
            assert!(p.stop().success());
        }
        p.restart();
        p.wait_for("its status as it was", || {
            p.service(None, "keep")
                .is_some_and(|s| s["status"] == "error")
        });
        let s = p.service(None, "keep").unwrap();
        assert_eq!(s["revision"], failed["revision"], "{s}");
        assert!(
            s["message"].as_str().unwrap().contains("still serves"),
            "{s}"
        );
        assert!(p.ok(&["call", "keep", "/"]).contains("keep_main.py"));
        assert_eq!(p.processes("keep_main.py"), pids, "the same processes");
        // Nothing was deployed again: the plan stays as it was.
        assert_eq!(p.micro(&["diff"]).status.code(), Some(0));
    }
}

/// A replica that died while no server ran (its process gone, or its pid taken by
/// another process) is not adopted: the next server deploys its service afresh while
/// what still runs serves, and stops nothing that is not the platform's.
#[test]
fn replicas_that_died_while_no_server_ran_are_started_afresh() {
    let mut p = Platform::start();
    p.write_service(
        "twin",
        &[
            (
                "service.yaml",
                "run: python3 -u twin_main.py\nreplicas: 2\n",
            ),
            ("twin_main.py", APP),
        ],
    );
    p.ok(&["run", "./twin", "--wait"]);
    let before = p.processes("twin_main.py");
    assert_eq!(before.len(), 2, "{before:?}");
    p.kill9();
    // One replica dies while nothing watches it.
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &before[0].to_string()])
            .status()
            .unwrap()
            .success()
    );
    p.wait_for("the replica to die", || {
        p.processes("twin_main.py").len() == 1
    });
    p.restart();
    // The service is deployed afresh: two new replicas, and the survivor stopped once
    // they are ready (nothing serves twice, nothing is left unowned).
    p.wait_for("two fresh replicas and nothing else", || {
        let now = p.processes("twin_main.py");
        now.len() == 2 && now.iter().all(|pid| !before.contains(pid))
    });
    assert_eq!(p.wait_running(None, "twin", None)["replicas"], "2/2");
    assert!(p.ok(&["call", "twin", "/"]).contains("twin_main.py"));
}
