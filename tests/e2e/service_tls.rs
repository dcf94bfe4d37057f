//! Services that serve TLS with their certificate identity (`tls: true`, the skeleton of
//! `micro new --tls`): `micro call` and a sibling's call reach them over mTLS from the
//! platform, which names the caller; nothing else gets an answer from them.

use crate::harness::Platform;
use serde_json::Value;

/// Calls `secure` through the platform with its certificate (no token), once as it is
/// and once claiming to be someone else; answers what it got back.
const SIBLING: &str = r#"import json, os, ssl, http.server, urllib.request
def through_platform(headers):
    ctx = ssl.create_default_context(cafile=os.environ["MICRO_TLS_CA"])
    ctx.load_cert_chain(os.environ["MICRO_TLS_CERT"], os.environ["MICRO_TLS_KEY"])
    url = os.environ["MICRO_API"] + "/api/v1/namespaces/default/services/secure/call/hi"
    req = urllib.request.Request(url, headers=headers)
    return json.loads(urllib.request.urlopen(req, context=ctx).read())
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "plain": through_platform({}),
            "forged": through_platform({"X-Micro-Caller": "mailto:boss@example.com"}),
        }).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// What a TLS client gets from `addr` presenting `identity` (cert and key files), if any.
fn direct(addr: &str, ca: &std::path::Path, identity: Option<(&str, &str)>) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let load = identity
        .map(|(c, k)| format!("ctx.load_cert_chain({c:?}, {k:?})"))
        .unwrap_or_default();
    let script = format!(
        r#"import socket, ssl
ctx = ssl.create_default_context(cafile={ca:?})
ctx.check_hostname = False
{load}
try:
    s = ctx.wrap_socket(socket.create_connection(({host:?}, {port})))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = s.recv(4096)
    # TLS 1.3 ends the handshake on the client's side before the server has judged the
    # client's certificate: a refusal may then arrive as an alert or as a closed socket.
    print(data.decode().split("\r\n")[0] if data else "refused: closed without an answer")
except Exception as e:
    print("refused", type(e).__name__)
"#,
        ca = ca.display().to_string()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_tls_service_is_called_over_mtls_and_told_who_calls() {
    let p = Platform::start();
    p.ok(&["new", "secure", "--tls"]);
    p.ok(&["run", "./secure", "--wait"]);

    // A person, through `micro call`: named by their address; what they claim is dropped.
    let seen: Value = serde_json::from_str(&p.ok(&[
        "call",
        "secure",
        "/x",
        "-H",
        "X-Micro-Caller: spiffe://micro.local/ns/default/svc/admin",
    ]))
    .unwrap();
    assert_eq!(seen["caller"], "mailto:admin@localhost", "{seen}");
    assert_eq!(seen["path"], "/x");

    // A sibling, with its certificate and no token: named by its identity.
    p.write_service(
        "sibling",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", SIBLING),
        ],
    );
    p.ok(&["run", "./sibling", "--wait"]);
    let seen: Value = serde_json::from_str(&p.ok(&["call", "sibling", "/"])).unwrap();
    let sibling = "spiffe://micro.local/ns/default/svc/sibling";
    assert_eq!(seen["plain"]["caller"], sibling, "{seen}");
    assert_eq!(seen["forged"]["caller"], sibling, "{seen}");

    // Straight to the replica: without a certificate, refused at the handshake; with a
    // certificate of the platform CA that is not the platform's, refused by the service.
    let described: Value =
        serde_json::from_str(&p.ok(&["describe", "secure", "-o", "json"])).unwrap();
    let endpoint = described["replicas"][0]["endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_owned();
    let said = direct(&endpoint, &p.ca(), None);
    assert!(said.starts_with("refused"), "{said}");
    let (cert, key) = crate::identity::identity_files_of(&p, "sibling");
    let files = tempfile::tempdir().unwrap();
    let (c, k) = (files.path().join("c.pem"), files.path().join("k.pem"));
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    let said = direct(
        &endpoint,
        &p.ca(),
        Some((c.to_str().unwrap(), k.to_str().unwrap())),
    );
    assert_eq!(said, "HTTP/1.0 403 Forbidden", "{said}");
}

/// Health checks speak TLS to a service that serves it, presenting the platform's
/// certificate (the only callers such a service takes): `readiness.path` and
/// `liveness.path` work for `tls: true` as for plain HTTP.
#[test]
fn a_tls_service_health_checks_speak_tls() {
    let p = Platform::start();
    p.ok(&["new", "checked", "--tls"]);
    let spec = p.work.join("checked/service.yaml");
    let mut yaml = std::fs::read_to_string(&spec).unwrap();
    yaml.push_str("readiness: { path: /ready }\nliveness: { path: /alive, period: 1s }\n");
    std::fs::write(&spec, yaml).unwrap();
    p.ok(&["run", "./checked", "--wait"]);
    // The checks are answered (a check over plain HTTP would get no answer from it):
    // seen in its log, and it is neither out of routing nor restarted for failing them.
    p.wait_for("its checks in its log", || {
        let log = p.ok(&["logs", "checked"]);
        log.contains("GET /ready") && log.matches("GET /alive").count() >= 3
    });
    let status = p.wait_running(None, "checked", None);
    assert_eq!(status["replicas"], "1/1", "{status}");
    let detail: Value =
        serde_json::from_str(&p.ok(&["describe", "checked", "-o", "json"])).unwrap();
    assert_eq!(detail["replicas"][0]["restarts"], 0, "{detail}");
}
