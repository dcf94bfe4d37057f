//! The platform on PostgreSQL: `MICRO_STORE=postgres://…` against a throwaway server
//! started from the installed binaries. State survives a server restart.

use crate::harness::Platform;
use micro_store::testing::TempPostgres;

const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(os.environ.get('MICRO_CONFIG_GREETING', '-').encode())\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

#[test]
fn the_platform_runs_on_postgres() {
    let pg = TempPostgres::start();
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pg.fresh_database("platform"));
    let mut p = Platform::start_with(&[("MICRO_STORE", &url)]);
    assert!(
        p.server_log().contains("store=\"postgres\"") || p.server_log().contains("store=postgres"),
        "{}",
        p.server_log()
    );
    p.write_service(
        "pg",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nconfig: [greeting]\n",
            ),
            ("main.py", APP),
        ],
    );
    p.ok(&[
        "config",
        "set",
        "greeting",
        "hello from postgres",
        "--secret",
    ]);
    p.ok(&["run", "./pg", "--wait"]);
    p.wait_for("the config to arrive", || {
        String::from_utf8_lossy(&p.micro(&["call", "pg", "/"]).stdout).trim()
            == "hello from postgres"
    });
    p.ok(&[
        "admin",
        "account",
        "create",
        "pat@example.com",
        "--namespace",
        "default",
        "--password",
        "long password",
    ]);

    p.stop();
    p.restart();
    p.wait_running(None, "pg", None);
    assert_eq!(
        p.ok(&["config", "get", "greeting", "--secret"]).trim(),
        "hello from postgres"
    );
    assert!(
        p.ok(&["admin", "account", "list"])
            .contains("pat@example.com")
    );
    let history: Vec<serde_json::Value> =
        serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
    assert!(
        history.iter().any(|h| h["reason"] == "startup"),
        "history kept across restarts"
    );
}
