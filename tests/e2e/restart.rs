//! A server killed with SIGKILL and started again runs each replica exactly once; a
//! server stopped with SIGTERM stops what it runs.

use crate::harness::Platform;

const APP: &str = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

#[test]
fn sigkill_then_restart_leaves_exactly_one_process_per_replica() {
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
    assert!(
        p.ok(&["env"]).contains(&p.port.to_string()),
        "env untouched"
    );

    // SIGKILL releases the data dir with the process.
    p.kill9();
    // The sandboxes die with their supervisor: nothing runs unsupervised...
    p.wait_for("the services to stop with the server", || {
        p.processes("pair_main.py").is_empty()
    });
    p.restart();
    let status = p.wait_running(None, "pair", None);
    assert_eq!(status["replicas"], "2/2");
    // ...and the new server starts them again: no orphan, no duplicate.
    p.wait_for("two new replicas and no orphan", || {
        let now = p.processes("pair_main.py");
        now.len() == 2 && now.iter().all(|pid| !before.contains(pid))
    });
    // Status never claimed more than runs: the dead server's rows were reset.
    assert_eq!(p.wait_running(None, "pair", None)["replicas"], "2/2");
    assert!(p.ok(&["call", "pair", "/"]).contains("pair_main.py"));

    let exit = p.stop();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert!(
        p.processes("pair_main.py").is_empty(),
        "SIGTERM stops the services"
    );
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
