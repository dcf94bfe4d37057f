//! The public edge, as someone on the internet meets it: a service marked `public` is
//! reached at `https://<service>-<namespace>.<apps domain>`, anything else answers 404,
//! and nothing a client sends lets it reach a private service or pose as someone else.

use crate::harness::Platform;
use serde_json::Value;
use std::net::SocketAddr;

const DOMAIN: &str = "apps.test";

/// Answers every GET with what it was asked: the path and the headers it got.
const ECHO: &str = "import json, os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = json.dumps({'service': os.environ['MICRO_SERVICE'] if 'MICRO_SERVICE' in os.environ else os.getcwd(), 'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()}}).encode()\n        self.send_response(200); self.send_header('Content-Type', 'application/json'); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n    def do_POST(self):\n        got = self.rfile.read(int(self.headers['Content-Length']))\n        body = json.dumps({'length': len(got), 'head': got[:5].decode()}).encode()\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn deploy(p: &Platform, name: &str, namespace: &str, public: bool) {
    let dir = format!("{namespace}-{name}");
    p.write_service(
        &dir,
        &[
            (
                "service.yaml",
                &format!("run: python3 -u main.py\npublic: {public}\n"),
            ),
            ("main.py", ECHO),
        ],
    );
    p.ok(&[
        "run",
        &format!("./{dir}"),
        "--name",
        name,
        "--wait",
        "--namespace",
        namespace,
    ]);
}

/// A client that trusts the platform CA and reaches every `*.apps.test` host at `edge`.
fn visitor(p: &Platform, edge: SocketAddr, hosts: &[&str]) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(p.ca()).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30));
    for host in hosts {
        b = b.resolve(host, edge);
    }
    b.build().unwrap()
}

fn get(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    rt.block_on(async {
        let mut req = client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = res.status().as_u16();
        (status, res.text().await.unwrap())
    })
}

#[test]
fn a_public_service_is_reached_by_its_host_and_nothing_else_is() {
    let (edge, plain) = (free_addr(), free_addr());
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", DOMAIN),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", &plain.to_string()),
    ]);
    p.ok(&["admin", "namespace", "create", "other"]);
    deploy(&p, "web", "default", true);
    deploy(&p, "vault", "default", false);
    deploy(&p, "vault", "other", false);
    deploy(&p, "site", "other", true);
    let hosts = [
        "web-default.apps.test",
        "vault-default.apps.test",
        "vault-other.apps.test",
        "site-other.apps.test",
        "nosuch-default.apps.test",
    ];
    let c = visitor(&p, edge, &hosts);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Status, describe and `micro open` name the URL of a public service, and only of one.
    let url = format!("https://web-default.apps.test:{}", edge.port());
    assert_eq!(p.service(None, "web").unwrap()["url"], url.as_str());
    assert!(p.service(None, "vault").unwrap().get("url").is_none());
    let table = p.ok(&["status"]);
    assert!(table.lines().next().unwrap().contains("URL"), "{table}");
    assert!(table.contains(&url), "{table}");
    assert!(
        p.ok(&["describe", "web"])
            .contains(&format!("URL:        {url}"))
    );
    assert_eq!(p.ok(&["open", "web", "--print"]).trim(), url);
    let said = p.fails(&["open", "vault"]);
    assert!(said.contains("add `public: true`"), "{said}");

    // The public service answers at its host, and hears who called from the edge alone:
    // what the caller claimed of its origin, its request id, or a platform caller is gone.
    let (status, body) = get(
        &rt,
        &c,
        "https://web-default.apps.test/hello?x=1",
        &[
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-micro-caller", "spiffe://micro.local/ns/other/svc/vault"),
            ("x-request-id", "trace-7"),
            ("authorization", "Bearer the-apps-own"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/hello?x=1");
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{h}");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "web-default.apps.test");
    assert_eq!(
        h["forwarded"],
        "for=127.0.0.1;proto=https;host=web-default.apps.test"
    );
    assert_eq!(h["x-request-id"], "trace-7");
    assert!(h.get("x-micro-caller").is_none(), "{h}");
    assert_eq!(h["authorization"], "Bearer the-apps-own");
    // The router's log has a line for that request, as Heroku's router writes them.
    let lines = p.ok(&["logs", "web", "--router"]);
    let line = lines
        .lines()
        .find(|l| l.contains("request_id=trace-7"))
        .unwrap_or_else(|| panic!("{lines}"));
    for part in [
        "method=GET",
        "path=\"/hello?x=1\"",
        "host=web-default.apps.test",
        "fwd=\"127.0.0.1\"",
        "status=200",
        "service=",
    ] {
        assert!(line.contains(part), "{part} not in {line}");
    }
    // A client that offers HTTP/2 gets it (ALPN), and the same answer.
    let (version, status) = rt.block_on(async {
        let res = c
            .get("https://web-default.apps.test/over-h2")
            .send()
            .await
            .unwrap();
        (res.version(), res.status().as_u16())
    });
    assert_eq!((version, status), (reqwest::Version::HTTP_2, 200));

    // What the edge saw shows in `micro describe` and, per service, at `/metrics`.
    let described: Value = serde_json::from_str(&p.ok(&["describe", "web", "-o", "json"])).unwrap();
    let traffic = &described["traffic"];
    let figure = |name: &str| {
        traffic[name]
            .as_f64()
            .unwrap_or_else(|| panic!("no {name}: {described}"))
    };
    assert!(figure("requests_per_minute") > 0.0);
    assert!(figure("p99_ms") > 0.0);
    assert!(p.ok(&["describe", "web"]).contains("Traffic:"));
    assert!(
        serde_json::from_str::<Value>(&p.ok(&["describe", "vault", "-o", "json"])).unwrap()
            ["traffic"]
            .is_null()
    );
    let metrics = p.metrics();
    let ok: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "micro_edge_requests_total{namespace=\"default\",service=\"web\",class=\"2xx\"} ",
            )
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(ok >= 1, "{metrics}");
    assert!(
        metrics.contains("micro_edge_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("micro_reconciles_total{result=\"applied\"}"),
        "{metrics}"
    );

    // Plain HTTP is sent to the same URL over HTTPS (308 keeps the method and body).
    let plain_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("web-default.apps.test", plain)
        .build()
        .unwrap();
    let (status, location) = rt.block_on(async {
        let res = plain_client
            .post(format!(
                "http://web-default.apps.test:{}/form?a=1",
                plain.port()
            ))
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.headers()["location"].to_str().unwrap().to_owned(),
        )
    });
    assert_eq!(status, 308);
    assert_eq!(location, format!("{url}/form?a=1"));
    // A body goes through as sent (framed by its length, which most apps need), and an
    // answer comes back with its length.
    let (status, length, body) = rt.block_on(async {
        let res = c
            .post("https://web-default.apps.test/upload")
            .body(vec![b'x'; 300_000])
            .send()
            .await
            .unwrap();
        let length = res.headers().get("content-length").cloned();
        (res.status().as_u16(), length, res.text().await.unwrap())
    });
    assert_eq!(status, 200, "{body}");
    assert!(length.is_some(), "no Content-Length on the answer");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["length"],
        300_000
    );
    // Over 10 MiB: refused by its length before any of it is sent (a client still
    // writing a refused body may see the connection end first, so none is sent here).
    let refused = raw_edge(
        &p,
        edge,
        "web-default.apps.test",
        &format!(
            "POST /upload HTTP/1.1\r\nHost: web-default.apps.test\r\nContent-Length: {}\r\n\r\n",
            11 << 20
        ),
    );
    assert!(refused.starts_with("HTTP/1.1 413"), "{refused}");
    // Another namespace's public service is public too.
    assert_eq!(get(&rt, &c, "https://site-other.apps.test/", &[]).0, 200);

    // Private services, and hosts nobody holds, are the same 404, however the host is
    // spelled, and whatever Host a request carries to a public service's address.
    for url in [
        "https://vault-default.apps.test/",
        "https://vault-other.apps.test/",
        "https://nosuch-default.apps.test/",
    ] {
        let (status, body) = get(&rt, &c, url, &[]);
        assert_eq!(status, 404, "{url}: {body}");
        assert!(body.contains("No public service answers"), "{body}");
    }
    for host in [
        "vault-default.apps.test",
        "VAULT-DEFAULT.apps.test",
        "vault-default.apps.test.",
        "vault-default.apps.test:443",
        "vault-other.apps.test",
        "vault.default.apps.test",
        "web-default.apps.test.evil",
        "127.0.0.1",
    ] {
        let (status, body) = get(&rt, &c, "https://web-default.apps.test/", &[("host", host)]);
        assert_eq!(status, 404, "Host {host}: {body}");
    }

    // Made private by a push, its host answers 404 at once; public again, it answers.
    p.write_service(
        "default-web",
        &[("service.yaml", "run: python3 -u main.py\npublic: false\n")],
    );
    p.ok(&["run", "./default-web", "--name", "web", "--wait"]);
    p.wait_for("the host to stop answering", || {
        get(&rt, &c, "https://web-default.apps.test/", &[]).0 == 404
    });

    // A service's own body limit: bigger bodies get 413 and never reach it.
    p.write_service(
        "other-site",
        &[(
            "service.yaml",
            "run: python3 -u main.py\npublic: true\nlimits: { body: 1Ki }\n",
        )],
    );
    p.ok(&[
        "run",
        "./other-site",
        "--name",
        "site",
        "--wait",
        "--namespace",
        "other",
    ]);
    let small = raw_edge(
        &p,
        edge,
        "site-other.apps.test",
        "POST /form HTTP/1.1\r\nHost: site-other.apps.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(small.starts_with("HTTP/1.1 200"), "{small}");
    let big = raw_edge(
        &p,
        edge,
        "site-other.apps.test",
        "POST /form HTTP/1.1\r\nHost: site-other.apps.test\r\nContent-Length: 2048\r\n\r\n",
    );
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");

    // A suspended namespace's public services answer 503, with a page that says so.
    p.ok(&["admin", "suspend", "other"]);
    let mut last = (0, String::new());
    p.wait_for("the suspended page", || {
        last = get(&rt, &c, "https://site-other.apps.test/", &[]);
        last.0 == 503 && last.1.contains("suspended")
    });
}

#[test]
fn a_public_service_whose_host_is_no_dns_label_is_refused_at_push() {
    let edge = free_addr();
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", DOMAIN),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", "off"),
    ]);
    let name = "s".repeat(60);
    p.write_service(
        "long",
        &[
            ("service.yaml", "run: python3 -u main.py\npublic: true\n"),
            ("main.py", ECHO),
        ],
    );
    let said = p.fails(&["run", "./long", "--name", &name]);
    assert!(
        said.contains(&format!("services/{name}/service.yaml:2:")) && said.contains("63"),
        "{said}"
    );
    assert!(p.service(None, &name).is_none());
}

/// Sends `raw` to the edge over TLS (SNI `host`) and returns everything it answers.
/// A TLS connection to the edge for `host`, trusting the platform CA (whose wildcard
/// the edge serves), with a generous read timeout.
fn edge_stream(
    p: &Platform,
    edge: SocketAddr,
    host: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let tcp = std::net::TcpStream::connect(edge).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let pem = std::fs::read_to_string(p.ca()).unwrap();
    let config = micro_pki::client_config(&pem).unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

fn raw_edge(p: &Platform, edge: SocketAddr, host: &str, raw: &str) -> String {
    use std::io::{Read, Write};
    let mut s = edge_stream(p, edge, host);
    s.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn smuggled_requests_and_floods_are_refused_at_the_edge() {
    let edge = free_addr();
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", DOMAIN),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", "off"),
        ("MICRO_EDGE_RATE_LIMIT", "3"),
    ]);
    deploy(&p, "web", "default", true);
    let host = "web-default.apps.test";
    // A sane request answers, the one after it on the same connection too.
    let both = raw_edge(
        &p,
        edge,
        host,
        &format!(
            "GET /one HTTP/1.1\r\nHost: {host}\r\n\r\nGET /two HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(both.matches("HTTP/1.1 200").count(), 2, "{both}");
    // Content-Length against Transfer-Encoding (CL.TE / TE.CL smuggling), two
    // Content-Lengths, an obfuscated Transfer-Encoding: refused, never a second request
    // hidden in a body.
    for smuggled in [
        format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: {host}\r\n\r\n"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcdGET /hidden HTTP/1.1\r\nHost: {host}\r\n\r\n"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: {host}\r\n\r\n"
        ),
    ] {
        let answer = raw_edge(&p, edge, host, &smuggled);
        assert!(
            !answer.contains("/hidden"),
            "{smuggled:?} reached the service:\n{answer}"
        );
        // hyper takes a body framed two ways as chunked, drops the length (RFC 9112
        // section 6.3) and ends the connection after answering; two lengths and an
        // unknown coding it refuses with 400.
        assert!(answer.starts_with("HTTP/1.1 "), "{smuggled:?}:\n{answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    }

    // Past three a second (bursts of six) from one address: 429, with when to come back.
    let c = visitor(&p, edge, &[host]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answers: Vec<(u16, Option<String>)> = rt.block_on(async {
        let mut out = Vec::new();
        for _ in 0..30 {
            let res = c.get(format!("https://{host}/")).send().await.unwrap();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            out.push((res.status().as_u16(), retry));
        }
        out
    });
    assert!(answers.iter().any(|(s, _)| *s == 200), "{answers:?}");
    let limited: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "{answers:?}");
    assert!(
        limited.iter().all(|(_, retry)| retry.is_some()),
        "{answers:?}"
    );
}

#[test]
fn a_service_behind_auth_key_takes_its_namespaces_keys_only_until_revoked() {
    let edge = free_addr();
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", DOMAIN),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", "off"),
    ]);
    p.ok(&["admin", "namespace", "create", "other"]);
    p.write_service(
        "guarded",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\npublic: true\nauth: key\n",
            ),
            ("main.py", ECHO),
        ],
    );
    p.ok(&["run", "./guarded", "--name", "api", "--wait"]);
    let host = "api-default.apps.test";
    let c = visitor(&p, edge, &[host]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("https://{host}/");
    let bearer = |key: &str| format!("Bearer {key}");

    // Without a key, or with one that is no key: 401, saying how to send one.
    for auth in [
        None,
        Some("Bearer "),
        Some("Bearer mk_0000"),
        Some("Basic dXNlcjpwdw=="),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let (status, body) = get(&rt, &c, &url, &headers);
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(body.contains("Authorization: Bearer KEY"), "{body}");
    }
    // A key is printed once; listing shows its name only.
    let key = p.ok(&["keys", "create", "ci"]).trim().to_owned();
    assert!(key.starts_with("mk_"), "{key}");
    let listed = p.ok(&["keys", "list", "-o", "json"]);
    assert!(
        listed.contains("\"ci\"") && !listed.contains(&key),
        "{listed}"
    );
    assert!(
        p.fails(&["keys", "create", "ci"])
            .contains("already exists")
    );
    // Another namespace's key opens nothing here.
    let theirs = p
        .ok(&["keys", "create", "ci", "--namespace", "other"])
        .trim()
        .to_owned();
    assert_eq!(
        get(&rt, &c, &url, &[("authorization", &bearer(&theirs))]).0,
        401
    );
    // The namespace's own key goes through, and the service never sees it.
    let (status, body) = get(&rt, &c, &url, &[("authorization", &bearer(&key))]);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    // Revoked: refused from the very next request on.
    p.ok(&["keys", "revoke", "ci"]);
    assert_eq!(
        get(&rt, &c, &url, &[("authorization", &bearer(&key))]).0,
        401
    );
    assert!(p.fails(&["keys", "revoke", "ci"]).contains("not found"));
    // No key is ever written to the server's log.
    let log = p.server_log();
    assert!(!log.contains(&key) && !log.contains(&theirs));
}

/// Answers a WebSocket handshake (RFC 6455's accept key), then echoes what it reads.
const WEBSOCKET_ECHO: &str = r#"
import base64, hashlib, os, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() != "websocket":
            self.send_response(426); self.send_header("Content-Length", "0"); self.end_headers(); return
        key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket"); self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept); self.end_headers(); self.wfile.flush()
        while True:
            data = self.rfile.read1(4096)
            if not data:
                return
            self.wfile.write(b"echo:" + data); self.wfile.flush()
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn a_websocket_goes_through_the_edge_both_ways() {
    use std::io::{Read, Write};
    let (edge, plain) = (free_addr(), free_addr());
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", DOMAIN),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", &plain.to_string()),
    ]);
    p.write_service(
        "chat",
        &[
            ("service.yaml", "run: python3 -u main.py\npublic: true\n"),
            ("main.py", WEBSOCKET_ECHO),
        ],
    );
    p.ok(&["run", "./chat", "--wait"]);
    let host = "chat-default.apps.test";
    let mut s = edge_stream(&p, edge, host);
    write!(
        s,
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    s.flush().unwrap();
    // The handshake's answer, up to its blank line.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    // From here the connection is the client's and the replica's: bytes go both ways,
    // more than once.
    for word in ["ping", "pong again"] {
        s.write_all(word.as_bytes()).unwrap();
        s.flush().unwrap();
        let want = format!("echo:{word}");
        let mut got = vec![0u8; want.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
}
