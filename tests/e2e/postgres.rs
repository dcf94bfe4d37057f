//! The platform on PostgreSQL: `MICRO_STORE=postgres://…` against a throwaway server
//! started from the installed binaries. State survives a server restart.

use crate::harness::Platform;
use micro_testkit::TempPostgres;

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

/// The platform's connection to PostgreSQL verifies the database's certificate
/// (`sslmode=verify-full`) and signs in with a client certificate; every way that check
/// can fail stops the server at start with one line, before it serves anything.
#[test]
fn the_platform_verifies_postgres_and_signs_in_with_a_certificate() {
    use micro_testkit::PgTls;
    let dir = tempfile::tempdir().unwrap();
    let db_ca = micro_pki::Ca::load_or_create(&dir.path().join("db-ca")).unwrap();
    let server = db_ca.issue_server(&["127.0.0.1".into()], 30).unwrap();
    let client = db_ca.issue_client("postgres", 30).unwrap();
    let pg = TempPostgres::start_tls(&PgTls {
        server_cert: server.cert_pem,
        server_key: server.key_pem,
        client_ca: db_ca.cert_pem().to_owned(),
    });
    let base = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pg.fresh_database("platform"));
    let other_ca = micro_pki::Ca::load_or_create(&dir.path().join("other-ca")).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        path.display().to_string()
    };
    let (ca, other, cert, key) = (
        file("ca.pem", db_ca.cert_pem()),
        file("other.pem", other_ca.cert_pem()),
        file("client.crt", &client.cert_pem),
        file("client.key", &client.key_pem),
    );
    let good = format!("{base}?sslmode=verify-full&sslrootcert={ca}&sslcert={cert}&sslkey={key}");
    let p = Platform::start_with(&[("MICRO_STORE", &good)]);
    p.ok(&["config", "set", "k", "over tls", "--secret"]);
    assert_eq!(p.ok(&["config", "get", "k", "--secret"]).trim(), "over tls");

    let refused = |what: &str, url: String, says: &str| {
        let out = p
            .command(&["server", "--address", "127.0.0.1:0"])
            .env("MICRO_DATA_DIR", dir.path().join(format!("data-{what}")))
            .env("MICRO_STORE", &url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        assert!(!out.status.success(), "{what}: started");
        assert!(
            last.contains("cannot open the store") && last.contains(says),
            "{what}: {err}"
        );
        assert!(!last.contains(&key), "{what}: {last}");
    };
    refused(
        "another-ca",
        good.replace(&ca, &other),
        "invalid peer certificate",
    );
    refused(
        "wrong-host",
        good.replace("127.0.0.1", "localhost"),
        "certificate not valid for name \"localhost\"",
    );
    refused(
        "no-client-cert",
        format!("{base}?sslmode=verify-full&sslrootcert={ca}"),
        "certificate",
    );
    refused("plain", format!("{base}?sslmode=disable"), "pg_hba.conf");
}
