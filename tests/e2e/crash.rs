//! A service that crashes is restarted with backoff, and status says so.

use crate::harness::Platform;

/// Exits with an error on its first two starts, then serves.
const FLAKY: &str = r#"
import os, sys, http.server
starts = int(open("starts").read()) + 1 if os.path.exists("starts") else 1
open("starts", "w").write(str(starts))
print(f"start {starts}", flush=True)
if starts < 3:
    sys.exit(3)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever()
"#;

#[test]
fn a_crashing_service_restarts_and_status_shows_it() {
    let p = Platform::start();
    p.write_service(
        "flaky",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", FLAKY),
        ],
    );
    p.ok(&["run", "./flaky"]);
    let mut crashed = None;
    p.wait_for("flaky to be reported in a crash loop", || {
        crashed = p
            .service(None, "flaky")
            .filter(|s| s["status"] == "crashloop");
        crashed.is_some()
    });
    let message = crashed.unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("restart #"), "{message}");
    p.wait_running(None, "flaky", None);
    let logs = p.ok(&["logs", "flaky"]);
    assert!(
        logs.contains("start 1") && logs.contains("start 3"),
        "{logs}"
    );
}

#[test]
fn a_failing_build_is_an_error_with_a_message() {
    let p = Platform::start();
    p.write_service(
        "nobuild",
        &[(
            "service.yaml",
            "build: echo compiling; exit 7\nrun: sleep 1000\n",
        )],
    );
    p.ok(&["run", "./nobuild"]);
    let mut failed = None;
    p.wait_for("the build to fail", || {
        failed = p
            .service(None, "nobuild")
            .filter(|s| s["status"] == "error");
        failed.is_some()
    });
    assert!(
        failed.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("build exited with code 7")
    );
    assert!(p.ok(&["logs", "nobuild"]).contains("compiling"));
    let out = p.micro(&["run", "./nobuild", "--wait"]);
    assert!(!out.status.success(), "--wait reports the failure");
    // The history says the revision's rollout failed, not only that it was applied.
    let history: Vec<serde_json::Value> =
        serde_json::from_str(&p.ok(&["history", "-o", "json"])).unwrap();
    let newest = &history[0];
    assert!(
        newest["rollout_failed"]
            .as_str()
            .is_some_and(|w| w.contains("nobuild: build exited with code 7")),
        "{newest}"
    );
    let table = p.ok(&["history"]);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("failed") && l.contains("rollout failed")),
        "{table}"
    );
}

#[test]
fn a_build_that_failed_for_a_passing_reason_is_retried_by_restart() {
    let p = Platform::start();
    // Fails the first time, as a network blip would; the checkout remembers the try.
    p.write_service(
        "flaky",
        &[
            (
                "service.yaml",
                "build: if [ -f tried ]; then echo ok; else touch tried; echo blip; exit 1; fi\nrun: python3 -u main.py\n",
            ),
            ("main.py", "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n"),
        ],
    );
    let out = p.micro(&["run", "./flaky", "--wait"]);
    assert!(!out.status.success());
    p.ok(&["restart", "flaky", "--wait"]);
    assert_eq!(p.service(None, "flaky").unwrap()["status"], "running");
    let history: serde_json::Value =
        serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
    assert!(
        history[0]["reason"].as_str().unwrap().contains("restart"),
        "{}",
        history[0]
    );
    let err = p.fails(&["restart", "nosuch"]);
    assert!(err.contains("not found"), "{err}");
}
