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

    p.kill9();
    // The services outlive their supervisor...
    assert_eq!(p.processes("pair_main.py").len(), 2);
    p.restart();
    let status = p.wait_running(None, "pair", None);
    assert_eq!(status["replicas"], "2/2");
    // ...and the new server replaces them: no orphan, no duplicate.
    p.wait_for("orphans to be gone", || {
        p.processes("pair_main.py")
            .iter()
            .all(|pid| !before.contains(pid))
    });
    assert_eq!(p.processes("pair_main.py").len(), 2);
    assert!(p.ok(&["call", "pair", "/"]).contains("pair_main.py"));

    let exit = p.stop();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    assert!(
        p.processes("pair_main.py").is_empty(),
        "SIGTERM stops the services"
    );
}
