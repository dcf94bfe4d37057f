//! Health all the time: a replica that stops passing its readiness check after it was
//! ready leaves routing, status says so, and it comes back when it passes again.

use crate::harness::Platform;

/// `/health` and `/alive` fail while its namespace's store holds the key `sick` or
/// `wedged` (read with the service's own token, as any service reads its store).
const MOODY: &str = r#"
import os, http.server, urllib.request as u
STORE = os.environ["MICRO_API"] + "/api/v1/namespaces/" + os.environ["MICRO_NAMESPACE"] + "/store/default?key="
AUTH = {"Authorization": "Bearer " + os.environ["MICRO_TOKEN"]}
print("started", flush=True)
def holds(key):
    try:
        return b"yes" in u.urlopen(u.Request(STORE + key, headers=AUTH), timeout=5).read()
    except Exception:
        return False
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200
        if (self.path == "/health" and holds("sick")) or (self.path == "/alive" and holds("wedged")):
            code = 500
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"fine\n" if code == 200 else b"sick\n")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn a_replica_that_stops_being_ready_leaves_routing_until_it_passes_again() {
    let p = Platform::start();
    p.write_service(
        "moody",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nreadiness:\n  path: /health\n",
            ),
            ("main.py", MOODY),
        ],
    );
    p.ok(&["run", "./moody", "--wait"]);
    assert_eq!(p.ok(&["call", "moody", "/"]).trim(), "fine");

    // It turns sick after it was ready: out of routing, and status says why.
    p.ok(&["store", "write", "sick", "yes"]);
    let mut sick = None;
    p.wait_for("moody to be reported unhealthy", || {
        sick = p
            .service(None, "moody")
            .filter(|s| s["status"] == "unhealthy");
        sick.is_some()
    });
    let sick = sick.unwrap();
    assert_eq!(sick["ready"], 0, "{sick}");
    let message = sick["message"].as_str().unwrap();
    assert!(message.contains("GET /health answered 500"), "{message}");
    let refused = p.fails(&["call", "moody", "/"]);
    assert!(refused.contains("no ready replica"), "{refused}");
    // The process was not restarted for it: readiness is not liveness.
    let described = p.ok(&["describe", "moody"]);
    assert!(described.contains("out of routing"), "{described}");

    // Well again: back in routing with no push and no restart.
    p.ok(&["store", "delete", "sick"]);
    p.wait_running(None, "moody", None);
    assert_eq!(p.ok(&["call", "moody", "/"]).trim(), "fine");
    let described = p.ok(&["describe", "moody"]);
    assert!(described.contains("ready again"), "{described}");
    assert!(described.contains("restarts 0"), "{described}");
}

#[test]
fn a_replica_that_fails_its_liveness_check_is_restarted() {
    let p = Platform::start();
    p.write_service(
        "moody",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nliveness:\n  path: /alive\n  period: 1s\n  failures: 2\n",
            ),
            ("main.py", MOODY),
        ],
    );
    p.ok(&["run", "./moody", "--wait"]);
    assert_eq!(p.ok(&["call", "moody", "/"]).trim(), "fine");

    // Wedged: still listening, but failing its liveness check, so it is restarted.
    p.ok(&["store", "write", "wedged", "yes"]);
    let mut described = String::new();
    p.wait_for(
        "moody to be restarted for failing its liveness check",
        || {
            described = p.ok(&["describe", "moody"]);
            described
                .contains("failed its liveness check: GET /alive answered 500 (2 checks in a row)")
        },
    );
    // Unwedged: it runs again, and says how many times it was restarted.
    p.ok(&["store", "delete", "wedged"]);
    p.wait_running(None, "moody", None);
    assert_eq!(p.ok(&["call", "moody", "/"]).trim(), "fine");
    let described = p.ok(&["describe", "moody"]);
    assert!(!described.contains("restarts 0"), "{described}");
    assert!(p.ok(&["logs", "moody"]).matches("started").count() >= 2);
}
