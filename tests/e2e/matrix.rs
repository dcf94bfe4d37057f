//! The authorisation matrix: every endpoint × {admin, developer of A, developer of B,
//! service of A declaring config key `k`, anonymous} → allowed, not found (what a
//! stranger sees, the same as for a missing thing) or unauthenticated.

use crate::harness::Platform;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PROBE: &str = "import json, os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = json.dumps(dict(os.environ)).encode()\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// 2xx.
    Ok,
    /// 404, exactly like a missing thing.
    Hidden,
    /// 401: log in first.
    Anon,
    /// Past authorisation, into git itself (whatever git makes of a hand-made request).
    Git,
}
use Want::{Anon, Git, Hidden, Ok};

const ROLES: [&str; 5] = ["admin", "dev-a", "dev-b", "svc-a", "anonymous"];

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    want: [Want; 5],
}

fn case(method: Method, path: &str, body: Option<Value>, want: [Want; 5]) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body,
        want,
    }
}

fn login(p: &Platform, email: &str, ns: &str) -> String {
    p.ok(&[
        "admin",
        "account",
        "create",
        email,
        "--namespace",
        ns,
        "--password",
        "long password",
    ]);
    // The developer's own machine, with an env pointing at this platform.
    let home = p.home.with_file_name(format!("home-{email}"));
    std::fs::create_dir_all(&home).unwrap();
    let env = p.env_json(None);
    std::fs::write(home.join("envs.json"), env.to_string()).unwrap();
    let out = p
        .command(&["login", "--email", email, "--password", "long password"])
        .env("MICRO_HOME", &home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let envs: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("envs.json")).unwrap()).unwrap();
    envs["envs"]["p"]["token"].as_str().unwrap().to_owned()
}

#[test]
fn every_endpoint_for_every_kind_of_caller() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "bee"]);
    let admin = p.admin_token();
    let dev_a = login(&p, "a@example.com", "default");
    let dev_b = login(&p, "b@example.com", "bee");
    p.ok(&["config", "set", "k", "declared", "--secret"]);
    p.ok(&["config", "set", "other", "undeclared"]);
    p.write_service(
        "probe",
        &[
            ("service.yaml", "run: python3 -u main.py\nconfig: [k]\n"),
            ("main.py", PROBE),
        ],
    );
    p.ok(&["run", "./probe", "--wait"]);
    // Restarted by the matrix (probe's identity must stay valid throughout).
    p.write_service(
        "spare",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", PROBE),
        ],
    );
    p.ok(&["run", "./spare", "--wait"]);
    let env: Value = serde_json::from_str(&p.ok(&["call", "probe", "/"])).unwrap();
    let svc_a = env["MICRO_TOKEN"].as_str().unwrap().to_owned();
    assert_eq!(env["MICRO_CONFIG_K"], "declared");
    assert_eq!(env["MICRO_API"], p.url().as_str());
    // Services trust the platform CA (with the system's roots) by default.
    assert_eq!(env["SSL_CERT_FILE"], "/run/micro/ca.pem");
    assert_eq!(env["MICRO_TLS_CA"], "/run/micro/ca.pem");
    p.ok(&["store", "write", "r", "record", "--table", "t"]);
    for role in ROLES {
        p.ok(&[
            "store",
            "write",
            &format!("del-{role}"),
            "x",
            "--table",
            "t",
        ]);
    }

    let ns = "/api/v1/namespaces/default";
    let mut cases = vec![
        case(Method::GET, "/healthz", None, [Ok, Ok, Ok, Ok, Ok]),
        case(Method::GET, "/api/v1/whoami", None, [Ok, Ok, Ok, Ok, Anon]),
        case(
            Method::GET,
            "/api/v1/sources/base",
            None,
            [Ok, Ok, Ok, Ok, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/status"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            "/api/v1/namespaces/nosuch/status",
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/history"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/plan"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/manifests"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/services/probe"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/services/probe/logs?lines=1"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/services/probe/call"),
            None,
            [Ok, Ok, Hidden, Ok, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/services/probe/call/x"),
            None,
            [Ok, Ok, Hidden, Ok, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/services/nosuch/call"),
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::POST,
            &format!("{ns}/services/spare/restart"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::POST,
            &format!("{ns}/services/nosuch/restart"),
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/config"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/config/k?reveal=true"),
            None,
            [Ok, Ok, Hidden, Ok, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/config/other"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/keys"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::DELETE,
            &format!("{ns}/keys/nosuch"),
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/domains"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::DELETE,
            &format!("{ns}/domains/nosuch.example.com"),
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::PUT,
            &format!("{ns}/config/k2"),
            Some(json!({"value": 1})),
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/store/t?key=r"),
            None,
            [Ok, Ok, Hidden, Ok, Anon],
        ),
        case(
            Method::PUT,
            &format!("{ns}/store/t/r2"),
            Some(json!({"value": "x"})),
            [Ok, Ok, Hidden, Ok, Anon],
        ),
        case(
            Method::GET,
            "/api/v1/admin/namespaces",
            None,
            [Ok, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            "/api/v1/admin/namespaces/default/quota",
            None,
            [Ok, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::PUT,
            "/api/v1/admin/namespaces/default/quota",
            Some(json!({"set": "services=50"})),
            [Ok, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            "/api/v1/admin/namespaces/nosuch/quota",
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            "/api/v1/admin/accounts",
            None,
            [Ok, Hidden, Hidden, Hidden, Anon],
        ),
        // Deleting an account nobody has: only an admin learns it is not there.
        case(
            Method::DELETE,
            "/api/v1/admin/accounts/nobody@example.com",
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            &format!("{ns}/previews"),
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::GET,
            "/api/v1/admin/outbox",
            None,
            [Ok, Hidden, Hidden, Hidden, Anon],
        ),
        // Resuming a namespace that runs changes nothing, so every role may try it.
        case(
            Method::POST,
            "/api/v1/admin/namespaces/default/resume",
            None,
            [Ok, Hidden, Hidden, Hidden, Anon],
        ),
        // Deleting a namespace nobody has: only an admin learns it is not there.
        case(
            Method::DELETE,
            "/api/v1/admin/namespaces/nosuch",
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        case(
            Method::POST,
            "/api/v1/admin/namespaces/nosuch/suspend",
            None,
            [Hidden, Hidden, Hidden, Hidden, Anon],
        ),
        // A made-up claim opens nothing, whoever asks.
        case(
            Method::POST,
            "/api/v1/signup/claim",
            Some(json!({"claim": "mc_0000"})),
            [Hidden, Hidden, Hidden, Hidden, Hidden],
        ),
        case(
            Method::GET,
            "/metrics",
            None,
            [Ok, Hidden, Hidden, Hidden, Anon],
        ),
        // A service fetches its own namespace's repo (pods check out their code), never
        // pushes to it.
        case(
            Method::GET,
            "/git/default.git/info/refs?service=git-upload-pack",
            None,
            [Ok, Ok, Hidden, Ok, Anon],
        ),
        case(
            Method::POST,
            "/git/default.git/git-upload-pack",
            None,
            [Git, Git, Hidden, Git, Anon],
        ),
        case(
            Method::GET,
            "/git/default.git/info/refs?service=git-receive-pack",
            None,
            [Ok, Ok, Hidden, Hidden, Anon],
        ),
        case(
            Method::POST,
            "/git/default.git/git-receive-pack",
            None,
            [Git, Git, Hidden, Hidden, Anon],
        ),
        case(
            Method::POST,
            "/api/v1/login",
            Some(json!({"email": "a@example.com", "password": "long password"})),
            [Ok, Ok, Ok, Ok, Ok],
        ),
    ];
    // Writes whose effect must not collide across roles get a path or body of their own.
    let per_role = |role: &str| {
        vec![
            (
                Method::DELETE,
                format!("{ns}/store/t/del-{role}"),
                None,
                "store delete",
            ),
            (
                Method::POST,
                "/api/v1/admin/namespaces".to_owned(),
                Some(json!({"name": format!("ns-{}", role.replace('-', ""))})),
                "namespace create",
            ),
            (
                Method::POST,
                "/api/v1/admin/accounts".to_owned(),
                Some(
                    json!({"email": format!("{}@new.example", role.replace('-', "")), "namespace": "default", "password": "long password"}),
                ),
                "account create",
            ),
        ]
    };
    let per_role_want = [
        [Ok, Ok, Hidden, Ok, Anon],
        [Ok, Hidden, Hidden, Hidden, Anon],
        [Ok, Hidden, Hidden, Hidden, Anon],
    ];

    let tokens = [Some(admin), Some(dev_a), Some(dev_b), Some(svc_a), None];
    let base = p.url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = p.http();
    let send = |method: Method, path: &str, body: Option<Value>, token: &Option<String>| {
        let mut req = http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            // git clients use Basic auth; the API takes Bearer. Send what each expects.
            req = if path.starts_with("/git/") {
                req.basic_auth("micro", Some(t))
            } else {
                req.bearer_auth(t)
            };
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        rt.block_on(async { req.send().await.unwrap().status() })
    };
    let check = |want: Want, got: StatusCode| match want {
        Ok => got.is_success(),
        Hidden => got == StatusCode::NOT_FOUND,
        Anon => got == StatusCode::UNAUTHORIZED,
        Git => got != StatusCode::UNAUTHORIZED && got != StatusCode::NOT_FOUND,
    };
    let mut failures = Vec::new();
    for c in cases.drain(..) {
        for (i, token) in tokens.iter().enumerate() {
            let got = send(c.method.clone(), &c.path, c.body.clone(), token);
            if !check(c.want[i], got) {
                failures.push(format!(
                    "{} {} as {}: want {:?}, got {got}",
                    c.method, c.path, ROLES[i], c.want[i]
                ));
            }
        }
    }
    for (i, token) in tokens.iter().enumerate() {
        for ((method, path, body, what), want) in per_role(ROLES[i]).into_iter().zip(per_role_want)
        {
            let got = send(method, &path, body, token);
            if !check(want[i], got) {
                failures.push(format!(
                    "{what} as {}: want {:?}, got {got}",
                    ROLES[i], want[i]
                ));
            }
        }
    }
    // What the admin's scraper reads: the reconciles this test caused, in Prometheus text.
    let metrics = p.metrics();
    let applied: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("micro_reconciles_total{result=\"applied\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(applied >= 2, "startup and probe at least:\n{metrics}");
    assert!(
        !metrics.contains("bee") && !metrics.contains("default"),
        "no namespace names in metrics:\n{metrics}"
    );

    // Nothing a refused caller tried changed anything.
    assert!(!p.ok(&["admin", "namespace", "list"]).contains("ns-devb"));
    assert_eq!(
        p.ok(&["store", "read", "del-dev-b", "--table", "t"]).trim(),
        "x"
    );

    // Last, as it ends each session: logout revokes the caller's own token.
    for (i, token) in tokens.iter().enumerate() {
        let want = if token.is_some() { Ok } else { Anon };
        let got = send(Method::POST, "/api/v1/logout", None, token);
        if !check(want, got) {
            failures.push(format!("logout as {}: want {want:?}, got {got}", ROLES[i]));
        }
        if token.is_some() {
            let after = send(Method::GET, "/api/v1/whoami", None, token);
            if after != StatusCode::UNAUTHORIZED {
                failures.push(format!(
                    "{}'s token still works after logout: {after}",
                    ROLES[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorisation matrix:\n{}",
        failures.join("\n")
    );
}
