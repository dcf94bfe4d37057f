//! Custom domains, as a tenant uses them and as the internet meets them, against Pebble
//! (Let's Encrypt's own ACME test server) with `pebble-challtestsrv` answering its DNS:
//! a host is claimed, proved by HTTP-01 through the edge, certified, and served with
//! that certificate; a host whose DNS points elsewhere is not; one host belongs to one
//! namespace.

use crate::harness::Platform;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Pebble and its DNS, stopped when dropped.
struct Pebble {
    children: Vec<Child>,
    /// `https://127.0.0.1:PORT/dir`.
    directory: String,
    management: SocketAddr,
    dns_management: SocketAddr,
    /// The CA Pebble's own HTTPS certificate is from.
    tls_ca: std::path::PathBuf,
    /// Where its DNS answers (the platform's TXT lookups go here too).
    dns: SocketAddr,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens at {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts Pebble to validate HTTP-01 on `http_port` (the edge's plain listener) of
/// whatever its DNS answers: 127.0.0.1 unless told otherwise.
fn pebble(dir: &Path, http_port: u16, tls_port: u16) -> Pebble {
    pebble_issuing_for(dir, http_port, tls_port, None)
}

/// [`pebble`], its certificates valid for `validity` seconds (Pebble's default is five
/// years).
fn pebble_issuing_for(dir: &Path, http_port: u16, tls_port: u16, validity: Option<u64>) -> Pebble {
    let ca = micro_pki::Ca::load_or_create(&dir.join("ca")).unwrap();
    let issued = ca
        .issue_server(&["127.0.0.1".into(), "localhost".into()], 30)
        .unwrap();
    let (cert, key, tls_ca) = (
        dir.join("pebble.crt"),
        dir.join("pebble.key"),
        dir.join("pebble-ca.pem"),
    );
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    std::fs::write(&tls_ca, ca.cert_pem()).unwrap();
    let (acme, management, dns, dns_management) =
        (free_addr(), free_addr(), free_addr(), free_addr());
    let mut config = serde_json::json!({
        "pebble": {
            "listenAddress": acme.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    if let Some(secs) = validity {
        config["pebble"]["certificateValidityPeriod"] = secs.into();
    }
    let config_file = dir.join("pebble.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let challtestsrv = Command::new("pebble-challtestsrv")
        .args([
            "-dns01",
            &dns.to_string(),
            "-management",
            &dns_management.to_string(),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble-challtestsrv (apt-get install pebble)");
    let server = Command::new("pebble")
        .args([
            "-config",
            &config_file.to_string_lossy(),
            "-dnsserver",
            &dns.to_string(),
        ])
        // No random waits before validating, no nonce refused on purpose, and every
        // order validated afresh (as a renewal after a DNS change would be).
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_AUTHZREUSE", "0")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble (apt-get install pebble)");
    let p = Pebble {
        children: vec![challtestsrv, server],
        directory: format!("https://{acme}/dir"),
        management,
        dns_management,
        tls_ca,
        dns,
    };
    wait_listening(acme);
    wait_listening(management);
    wait_listening(dns_management);
    p
}

impl Pebble {
    /// Tells its DNS something (`add-a`, `clear-a`, `set-txt`, ...).
    fn dns(&self, rt: &tokio::runtime::Runtime, path: &str, body: String) {
        rt.block_on(async {
            let res = reqwest::Client::new()
                .post(format!("http://{}/{path}", self.dns_management))
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
        });
    }

    /// The root its certificates chain to (from its management API).
    fn root(&self, rt: &tokio::runtime::Runtime) -> String {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.tls_ca).unwrap()).unwrap();
        let management = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap();
        rt.block_on(async {
            management
                .get(format!("https://{}/roots/0", self.management))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }
}

/// A client that trusts `root` alone and reaches `host` at the edge.
fn trusting(root: &str, host: &str, edge: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()])
        .resolve(host, edge)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A client that takes whatever certificate the edge shows for `host` (the apps
/// domain's, for a host with none of its own yet).
fn any_certificate(host: &str, edge: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve(host, edge)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET https://host/` at the edge: the status and body.
fn get(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    host: &str,
    edge: SocketAddr,
) -> (u16, String) {
    rt.block_on(async {
        let res = client
            .get(format!("https://{host}:{}/", edge.port()))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

fn domains(p: &Platform, ns: &str) -> Vec<Value> {
    let out = p.ok(&["domains", "list", "-o", "json", "--namespace", ns]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn domain(p: &Platform, ns: &str, host: &str) -> Value {
    domains(p, ns)
        .into_iter()
        .find(|d| d["host"] == host)
        .unwrap_or_else(|| panic!("no {host}"))
}

#[test]
fn a_custom_domain_is_proved_certified_by_acme_and_served() {
    let (edge, plain) = (free_addr(), free_addr());
    let tmp = tempfile::tempdir().unwrap();
    let pebble = pebble(tmp.path(), plain.port(), edge.port());
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", "apps.test"),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", &plain.to_string()),
        ("MICRO_ACME_DIRECTORY", &pebble.directory),
        ("MICRO_ACME_CA_FILE", &pebble.tls_ca.to_string_lossy()),
        ("MICRO_ACME_EMAIL", "ops@example.test"),
        ("MICRO_DNS_RESOLVER", &pebble.dns.to_string()),
    ]);
    p.ok(&["admin", "namespace", "create", "other"]);
    p.write_service(
        "web",
        &[
            ("service.yaml", "run: python3 -u main.py\npublic: true\n"),
            (
                "main.py",
                "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.send_header('Content-Length', '9'); self.end_headers(); self.wfile.write(b'web here\\n')\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
            ),
        ],
    );
    p.ok(&["run", "./web", "--wait"]);

    // Bad hosts are refused with the reason, and change nothing.
    for (bad, says) in [
        ("web-default.apps.test", "apps domain"),
        ("127.0.0.1", "DNS name"),
        ("Not A Host", "DNS name"),
    ] {
        let said = p.fails(&["domains", "add", bad, "--service", "web"]);
        assert!(said.contains(says), "{bad}: {said}");
        assert_eq!(said.trim().lines().count(), 1, "{said}");
    }
    assert!(domains(&p, "default").is_empty());

    // Claimed: it tells how to prove it, and the CA proves it through the edge.
    let started = Instant::now();
    let added = p.ok(&["domains", "add", "www.example.test", "--service", "web"]);
    assert!(
        added.contains("_micro-challenge.www.example.test"),
        "{added}"
    );
    p.wait_for("www.example.test to be live", || {
        domain(&p, "default", "www.example.test")["state"] == "live"
    });
    let took = started.elapsed();
    let d = domain(&p, "default", "www.example.test");
    assert_eq!(d["proven_by"], "http-01", "{d}");
    assert!(d["certificate_expires_at"].as_i64().unwrap() > micro_store::now_millis());
    eprintln!("domains add → live with a Pebble certificate: {took:?}");

    // Served with the certificate Pebble issued: a client trusting only Pebble's root
    // reaches the service by the custom host.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = pebble.root(&rt);
    let visitor = trusting(&root, "www.example.test", edge);
    let (status, body) = get(&rt, &visitor, "www.example.test", edge);
    assert_eq!((status, body.as_str()), (200, "web here\n"));
    // With no wildcard of the operator's, the apps domain's own hosts get their
    // certificates from the CA too: the public service's own host is served with one.
    let apps_visitor = trusting(&root, "web-default.apps.test", edge);
    p.wait_for(
        "web-default.apps.test to be served with the CA's certificate",
        || {
            rt.block_on(async {
                apps_visitor
                    .get(format!("https://web-default.apps.test:{}/", edge.port()))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
        },
    );
    // Its key is the platform's alone.
    let key = p.data.join("acme").join("www.example.test.key");
    crate::harness::owner_only(&key);

    // One host belongs to one namespace: a second claim is refused.
    let said = p.fails(&[
        "domains",
        "add",
        "www.example.test",
        "--service",
        "web",
        "--namespace",
        "other",
    ]);
    assert!(said.contains("claimed already"), "{said}");
    assert!(domains(&p, "other").is_empty());

    // A host whose DNS points elsewhere is never proved, even by a TXT record with
    // another claim's token; it says why, and is not served.
    let dns = |path: &str, body: String| pebble.dns(&rt, path, body);
    for host in ["elsewhere.test", "txt-only.test"] {
        dns(
            "add-a",
            format!(r#"{{"host":"{host}.","addresses":["192.0.2.1"]}}"#),
        );
    }
    p.ok(&["domains", "add", "elsewhere.test", "--service", "web"]);
    dns(
        "set-txt",
        format!(
            r#"{{"host":"_micro-challenge.elsewhere.test.","value":"{}"}}"#,
            d["token"].as_str().unwrap()
        ),
    );
    p.wait_for("elsewhere.test to say why it is not live", || {
        let d = domain(&p, "default", "elsewhere.test");
        d["state"] == "pending"
            && d["message"]
                .as_str()
                .is_some_and(|m| m.contains("certificate"))
    });
    let table = p.ok(&["domains", "list"]);
    assert!(
        table.contains("elsewhere.test") && table.contains("pending"),
        "{table}"
    );
    let (status, _) = get(
        &rt,
        &any_certificate("elsewhere.test", edge),
        "elsewhere.test",
        edge,
    );
    assert_eq!(status, 404);

    // The TXT record `add` names, holding its token, proves a host before its DNS
    // points here: it is served (with the apps domain's certificate until the CA can
    // reach it), and the platform keeps trying for its own.
    let added = p.ok(&[
        "domains",
        "add",
        "txt-only.test",
        "--service",
        "web",
        "-o",
        "json",
    ]);
    let token = serde_json::from_str::<Value>(&added).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    dns(
        "set-txt",
        format!(r#"{{"host":"_micro-challenge.txt-only.test.","value":"{token}"}}"#),
    );
    p.wait_for("txt-only.test to be proved by its TXT record", || {
        let d = domain(&p, "default", "txt-only.test");
        d["state"] == "proven" && d["proven_by"] == "txt"
    });
    let (status, body) = get(
        &rt,
        &any_certificate("txt-only.test", edge),
        "txt-only.test",
        edge,
    );
    assert_eq!((status, body.as_str()), (200, "web here\n"));
    assert_eq!(domain(&p, "default", "elsewhere.test")["state"], "pending");

    // Given up, the domain is served no more.
    p.ok(&["domains", "remove", "www.example.test"]);
    let insecure = any_certificate("www.example.test", edge);
    p.wait_for("www.example.test to be served no more", || {
        rt.block_on(async {
            insecure
                .get(format!("https://www.example.test:{}/", edge.port()))
                .send()
                .await
                .is_ok_and(|r| r.status() == 404)
        })
    });
}

/// Runs `web`, a public service that answers `ok`.
fn run_public_ok(p: &Platform) {
    p.write_service(
        "web",
        &[
            ("service.yaml", "run: python3 -u main.py\npublic: true\n"),
            (
                "main.py",
                "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
            ),
        ],
    );
    p.ok(&["run", "./web", "--wait"]);
}

#[test]
fn without_a_plain_http_listener_hosts_are_proved_by_tls_alpn_01() {
    let edge = free_addr();
    let tmp = tempfile::tempdir().unwrap();
    // Pebble's HTTP-01 port leads nowhere: only the edge's TLS port can prove a host.
    let pebble = pebble(tmp.path(), free_addr().port(), edge.port());
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", "apps.test"),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", "off"),
        ("MICRO_ACME_DIRECTORY", &pebble.directory),
        ("MICRO_ACME_CA_FILE", &pebble.tls_ca.to_string_lossy()),
        ("MICRO_DNS_RESOLVER", &pebble.dns.to_string()),
    ]);
    run_public_ok(&p);
    p.ok(&["domains", "add", "alpn.example.test", "--service", "web"]);
    p.wait_for("alpn.example.test to be live", || {
        domain(&p, "default", "alpn.example.test")["state"] == "live"
    });
    assert_eq!(
        domain(&p, "default", "alpn.example.test")["proven_by"],
        "tls-alpn-01"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = pebble.root(&rt);
    let visitor = trusting(&root, "alpn.example.test", edge);
    let (status, body) = get(&rt, &visitor, "alpn.example.test", edge);
    assert_eq!((status, body.as_str()), (200, "ok"));
}

/// The certificate the edge shows for `host` (DER), trusting `root` alone.
fn served_certificate(
    rt: &tokio::runtime::Runtime,
    root: &str,
    host: &str,
    edge: SocketAddr,
) -> Option<Vec<u8>> {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()])
        .resolve(host, edge)
        .tls_info(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    rt.block_on(async {
        let res = client
            .get(format!("https://{host}:{}/", edge.port()))
            .send()
            .await
            .ok()?;
        let info = res.extensions().get::<reqwest::tls::TlsInfo>()?;
        info.peer_certificate().map(<[u8]>::to_vec)
    })
}

#[test]
fn a_certificate_is_renewed_at_two_thirds_of_its_life_and_a_failed_renewal_is_retried() {
    let (edge, plain) = (free_addr(), free_addr());
    let tmp = tempfile::tempdir().unwrap();
    // Certificates for a minute: renewed from 40 s on.
    let pebble = pebble_issuing_for(tmp.path(), plain.port(), edge.port(), Some(60));
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", "apps.test"),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", &plain.to_string()),
        ("MICRO_ACME_DIRECTORY", &pebble.directory),
        ("MICRO_ACME_CA_FILE", &pebble.tls_ca.to_string_lossy()),
        ("MICRO_DNS_RESOLVER", &pebble.dns.to_string()),
    ]);
    run_public_ok(&p);
    let host = "renew.example.test";
    p.ok(&["domains", "add", host, "--service", "web"]);
    p.wait_for("the domain to be live", || {
        domain(&p, "default", host)["state"] == "live"
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = pebble.root(&rt);
    let first = served_certificate(&rt, &root, host, edge).expect("served with Pebble's");
    let first_expiry = domain(&p, "default", host)["certificate_expires_at"]
        .as_i64()
        .unwrap();

    // The host's DNS now points elsewhere: the renewal fails, says so, and is tried
    // again; meanwhile the certificate in hand is still served.
    pebble.dns(
        &rt,
        "add-a",
        format!(r#"{{"host":"{host}.","addresses":["192.0.2.1"]}}"#),
    );
    p.wait_for("the failed renewal to be shown", || {
        let d = domain(&p, "default", host);
        d["state"] == "live"
            && d["message"]
                .as_str()
                .is_some_and(|m| m.contains("certificate:") && m.contains("trying again"))
    });
    assert_eq!(
        served_certificate(&rt, &root, host, edge).as_deref(),
        Some(first.as_slice()),
        "the certificate in hand is served while its renewal fails"
    );

    // DNS points here again: a retry renews it, with no one asking.
    pebble.dns(&rt, "clear-a", format!(r#"{{"host":"{host}."}}"#));
    p.wait_for("a renewed certificate to be served", || {
        served_certificate(&rt, &root, host, edge).is_some_and(|der| der != first)
    });
    let d = domain(&p, "default", host);
    assert!(
        d["certificate_expires_at"].as_i64().unwrap() > first_expiry,
        "{d}"
    );
    assert_eq!(d["message"], "", "{d}");
}
