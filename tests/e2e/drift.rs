//! Drift repair: what is changed by hand under the platform is put back.

use crate::harness::Platform;
use serde_json::Value;

const APP: &str = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

#[test]
fn a_killed_process_and_a_deleted_checkout_are_restored() {
    let p = Platform::start();
    p.write_service(
        "sturdy",
        &[
            ("service.yaml", "run: python3 -u sturdy.py\n"),
            ("sturdy.py", APP),
        ],
    );
    p.ok(&["run", "./sturdy", "--wait"]);
    let first = p.processes("sturdy.py");
    assert_eq!(first.len(), 1);

    // Killed by hand.
    std::process::Command::new("kill")
        .args(["-9", &first[0].to_string()])
        .status()
        .unwrap();
    p.wait_for("a new process", || {
        let now = p.processes("sturdy.py");
        now.len() == 1 && now[0] != first[0]
    });
    p.wait_running(None, "sturdy", None);
    assert!(p.ok(&["call", "sturdy", "/"]).contains("sturdy.py"));

    // Its checkout deleted by hand.
    let work = p.data.join("runtime/default/sturdy");
    std::fs::remove_dir_all(&work).unwrap();
    p.wait_for("the checkout to come back", || work.exists());
    p.wait_for("a drift reconcile in history", || {
        let h: Vec<Value> = serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
        h.iter()
            .any(|e| e["reason"].as_str().unwrap().contains("drift") && e["result"] == "applied")
    });
    p.wait_running(None, "sturdy", None);
    assert!(p.ok(&["call", "sturdy", "/"]).contains("sturdy.py"));
    // The repair is a rollout: the old process serves until the new one is ready.
    p.wait_for("the replaced process to stop", || {
        p.processes("sturdy.py").len() == 1
    });
}
