//! `micro logs`: every line stamped with its time, build output and replicas marked,
//! `--since`, and `-f` that ends when the service is removed.

use crate::harness::Platform;

const TALKER: &str = r#"
import os, sys, time, http.server, threading
threading.Thread(target=http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever, daemon=True).start()
print("up", flush=True)
print("to stderr", file=sys.stderr, flush=True)
while True:
    time.sleep(3600)
"#;

fn is_stamped(line: &str) -> bool {
    // 2026-11-29T23:15:00.123Z
    let b = line.as_bytes();
    b.len() > 25 && b[4] == b'-' && b[10] == b'T' && b[23] == b'Z' && b[24] == b' '
}

#[test]
fn lines_are_stamped_and_marked_and_follow_ends_with_the_service() {
    let p = Platform::start();
    p.write_service(
        "talker",
        &[
            (
                "service.yaml",
                "build: echo compiling\nrun: python3 -u main.py\nreplicas: 2\n",
            ),
            ("main.py", TALKER),
        ],
    );
    p.ok(&["run", "./talker", "--wait"]);
    let mut logs = String::new();
    p.wait_for("both replicas' lines", || {
        logs = p.ok(&["logs", "talker"]);
        logs.contains("[1] up") && logs.contains("[2] up")
    });
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.iter().all(|l| is_stamped(l)), "{logs}");
    assert!(logs.contains("[build] compiling"), "{logs}");
    assert!(logs.contains("] to stderr"), "stderr too: {logs}");

    // --since: from the first replica line on, the build is left out.
    let first_up = lines.iter().find(|l| l.contains("] up")).unwrap();
    let since = &first_up[..24];
    let later = p.ok(&["logs", "talker", "--since", since]);
    assert!(
        later.contains("] up") && !later.contains("[build]"),
        "{later}"
    );
    assert!(
        p.ok(&["logs", "talker", "--since", "1h"])
            .contains("[build]")
    );
    let err = p.fails(&["logs", "talker", "--since", "yesterdayish"]);
    assert!(err.contains("neither a duration"), "{err}");

    // -f follows until the service is killed, then ends by itself.
    let follower = p
        .command(&["logs", "talker", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    p.ok(&["kill", "talker"]);
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("talker: removed; no more logs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
