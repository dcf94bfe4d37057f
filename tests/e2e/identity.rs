//! Service identities: each deployment gets a certificate from the platform CA, as files
//! in its sandbox; with it (mTLS, no token) it reads exactly what its token would let it
//! read, and only while its deployment is live. Another CA's certificate gets nowhere.

use crate::harness::Platform;
use serde_json::Value;

const READER: &str = r#"import json, os, ssl, urllib.request, urllib.error, http.server
def get(path):
    ctx = ssl.create_default_context(cafile=os.environ["MICRO_TLS_CA"])
    ctx.load_cert_chain(os.environ["MICRO_TLS_CERT"], os.environ["MICRO_TLS_KEY"])
    try:
        r = urllib.request.urlopen(os.environ["MICRO_API"] + path, context=ctx)
        return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]
    except Exception as e:
        return [0, str(e)]
def reach(path):
    try:
        return open(path).read()[:10]
    except Exception as e:
        return type(e).__name__
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "own": get("/api/v1/namespaces/default/config/k"),
            "other": get("/api/v1/namespaces/other/config/k"),
            "cert": os.environ.get("MICRO_TLS_CERT"),
            "pem_in_env": [k for k in os.environ if k.endswith("_PEM")],
            "run_micro": sorted(os.listdir("/run/micro")),
            "ca_key": reach(os.environ["CA_KEY"]),
        }).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The identity files of the deployment of `service` serving now, as the host sees them.
pub fn identity_files_of(p: &Platform, service: &str) -> (String, String) {
    let mut found = Vec::new();
    let mut stack = vec![p.data.join("runtime")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let of_service = path.components().any(|c| c.as_os_str() == service);
                if name.starts_with("identity-") {
                    if of_service {
                        found.push(path);
                    }
                } else {
                    stack.push(path);
                }
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let read = |f: &str| std::fs::read_to_string(found[0].join(f)).unwrap();
    (read("cert.pem"), read("key.pem"))
}

/// GETs `path` on the platform presenting `cert`/`key` and no token: status and body.
fn as_service(p: &Platform, cert: &str, key: &str, path: &str) -> Result<(u16, String), String> {
    let ca = std::fs::read_to_string(p.ca()).unwrap();
    let config = micro_pki::client_config_with_identity(&ca, cert, key).unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured((*config).clone())
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let res = http
            .get(format!("{}{path}", p.url()))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok((res.status().as_u16(), res.text().await.unwrap()))
    })
}

#[test]
fn a_service_reads_its_config_with_its_certificate_and_nothing_more() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "other"]);
    p.ok(&["config", "set", "k", "first"]);
    p.write_service(
        "reader",
        &[
            (
                "service.yaml",
                &format!(
                    "run: python3 -u main.py\nport: 8080\nconfig: [k]\nenv: {{ CA_KEY: {:?} }}\n",
                    p.data.join("tls/ca.key").display().to_string()
                ),
            ),
            ("main.py", READER),
        ],
    );
    p.ok(&["run", "./reader", "--wait"]);
    let seen: Value = serde_json::from_str(&p.ok(&["call", "reader", "/"])).unwrap();
    assert_eq!(seen["own"][0], 200, "{seen}");
    assert!(seen["own"][1].as_str().unwrap().contains("first"), "{seen}");
    assert_eq!(
        seen["other"][0], 404,
        "another namespace, as if missing: {seen}"
    );
    assert_eq!(seen["cert"], "/run/micro/identity/cert.pem");
    assert_eq!(
        seen["pem_in_env"],
        serde_json::json!([]),
        "the key is a file, not a variable"
    );
    // A shell in the service sees its own identity and the CA certificate, never the
    // platform CA's key that signs every identity.
    assert_eq!(
        seen["run_micro"],
        serde_json::json!(["ca.pem", "identity", "platform-ca.pem"]),
        "{seen}"
    );
    assert_eq!(seen["ca_key"], "FileNotFoundError", "{seen}");

    // The same certificate from outside the sandbox: the same rights, and no more.
    let (cert, key) = identity_files_of(&p, "reader");
    let own = as_service(&p, &cert, &key, "/api/v1/namespaces/default/config/k").unwrap();
    assert_eq!(own.0, 200, "{own:?}");
    let me = as_service(&p, &cert, &key, "/api/v1/whoami").unwrap();
    assert_eq!(me.0, 200, "{me:?}");
    assert!(me.1.contains("\"service\""), "{me:?}");
    // What the token may not do (the namespace's status), neither may the certificate.
    let status = as_service(&p, &cert, &key, "/api/v1/namespaces/default/status").unwrap();
    assert_eq!(status.0, 404, "{status:?}");
    let admin = as_service(&p, &cert, &key, "/api/v1/admin/namespaces").unwrap();
    assert_eq!(admin.0, 404, "{admin:?}");

    // A new deployment (a new config version) ends the old one's identity.
    p.ok(&["config", "set", "k", "second"]);
    p.wait_for("the old certificate to be refused", || {
        as_service(&p, &cert, &key, "/api/v1/namespaces/default/config/k")
            .is_ok_and(|(code, _)| code == 401)
    });
    let seen: Value = serde_json::from_str(&p.ok(&["call", "reader", "/"])).unwrap();
    assert!(
        seen["own"][1].as_str().unwrap().contains("second"),
        "{seen}"
    );

    // A certificate naming the same service from another CA: refused at the handshake.
    let other = tempfile::tempdir().unwrap();
    let theirs = micro_pki::Ca::load_or_create(other.path()).unwrap();
    let forged = theirs
        .issue_identity(
            &micro_pki::Identity {
                trust_domain: "micro.local".into(),
                namespace: "default".into(),
                service: "reader".into(),
                deployment: "anything".into(),
            },
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    let err = as_service(&p, &forged.cert_pem, &forged.key_pem, "/api/v1/whoami").unwrap_err();
    assert!(!err.is_empty());
    p.wait_for("the refused handshake in the log", || {
        p.server_log().contains("TLS handshake refused")
    });
}

/// Calls the API with its certificate (read afresh each time) and no token, every
/// 300 ms, printing what it got, with which certificate, from which process.
const RENEWING: &str = r#"import hashlib, http.server, json, os, ssl, threading, time, urllib.request, urllib.error
server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.BaseHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
start = time.time()
while True:
    cert = open(os.environ["MICRO_TLS_CERT"], "rb").read()
    try:
        ctx = ssl.create_default_context(cafile=os.environ["MICRO_TLS_CA"])
        ctx.load_cert_chain(os.environ["MICRO_TLS_CERT"], os.environ["MICRO_TLS_KEY"])
        status = urllib.request.urlopen(os.environ["MICRO_API"] + "/api/v1/whoami", context=ctx).status
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception as e:
        status = str(e)
    print(json.dumps({"after": time.time() - start, "pid": os.getpid(), "status": status,
                      "cert": hashlib.sha256(cert).hexdigest()[:12]}), flush=True)
    time.sleep(0.3)
"#;

#[test]
fn a_running_service_gets_a_new_certificate_before_its_old_one_expires() {
    // Certificates valid 4 s: renewed at 2 s, so the first has expired after 4 s.
    let p = Platform::start_with(&[("MICRO_IDENTITY_LIFETIME", "4s")]);
    p.write_service(
        "renewing",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", RENEWING),
        ],
    );
    p.ok(&["run", "./renewing", "--wait"]);
    let calls = || -> Vec<Value> {
        p.ok(&["logs", "renewing"])
            .lines()
            .filter_map(|l| l.find('{').and_then(|i| serde_json::from_str(&l[i..]).ok()))
            .collect()
    };
    p.wait_for("calls spanning three lifetimes", || {
        calls()
            .last()
            .is_some_and(|c| c["after"].as_f64().unwrap() > 12.0)
    });
    let calls = calls();
    let pids: std::collections::BTreeSet<_> = calls.iter().map(|c| c["pid"].to_string()).collect();
    assert_eq!(pids.len(), 1, "renewed without a restart: {calls:#?}");
    let certs: std::collections::BTreeSet<_> =
        calls.iter().map(|c| c["cert"].to_string()).collect();
    assert!(certs.len() >= 3, "renewed every 2 s: {certs:?}");
    // Long after the first certificate expired, the service still gets in with the
    // certificate it holds now (a call that read the files mid-swap may fail; the next
    // one does not).
    let late: Vec<&Value> = calls
        .iter()
        .filter(|c| c["after"].as_f64().unwrap() > 8.0)
        .collect();
    let ok = late.iter().filter(|c| c["status"] == 200).count();
    assert!(
        ok + 1 >= late.len() && ok >= 5,
        "calls after the first certificate expired: {late:#?}"
    );
}

/// A small service that only listens (its identity is what the test uses).
const LISTENER: &str = "import http.server, os\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.BaseHTTPRequestHandler).serve_forever()\n";

#[test]
fn a_pods_checkout_signs_in_with_its_certificate_and_only_fetches_its_own_repo() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "other"]);
    p.write_service(
        "web",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", LISTENER),
        ],
    );
    p.ok(&["run", "./web", "--wait"]);
    let revision = p.service(None, "web").unwrap()["revision"]
        .as_str()
        .unwrap()
        .to_owned();
    let (cert, key) = identity_files_of(&p, "web");
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (cert_file, key_file) = (write("cert.pem", &cert), write("key.pem", &key));
    // What the init container runs: no token anywhere, the certificate only.
    let checkout = |repo: &str, identity: bool, into: &str| {
        let mut args = vec![
            "checkout".to_owned(),
            "--git".to_owned(),
            format!("{}/git/{repo}.git", p.url()),
            "--commit".to_owned(),
            revision.clone(),
            "--path".to_owned(),
            "services/web".to_owned(),
            "--into".to_owned(),
            files.path().join(into).display().to_string(),
        ];
        if identity {
            args.push("--identity".to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = p
            .command(&args)
            .env_remove("MICRO_TOKEN")
            .env("MICRO_TLS_CA", p.ca())
            .env("MICRO_TLS_CERT", &cert_file)
            .env("MICRO_TLS_KEY", &key_file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), err)
    };
    let (ok, err) = checkout("default", true, "app");
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(files.path().join("app/main.py")).unwrap(),
        LISTENER
    );
    // Another namespace's repo: as if it did not exist. Nothing without the certificate.
    let (ok, err) = checkout("other", true, "stolen");
    assert!(!ok && err.contains("repository not found"), "{err}");
    assert!(!files.path().join("stolen/main.py").exists());
    let (ok, _) = checkout("default", false, "anonymous");
    assert!(!ok);
    // A certificate fetches; it never pushes.
    let ca = std::fs::read_to_string(p.ca()).unwrap();
    let config = micro_pki::client_config_with_identity(&ca, &cert, &key).unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured((*config).clone())
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (method, path) in [
        ("GET", "info/refs?service=git-receive-pack"),
        ("POST", "git-receive-pack"),
    ] {
        let status = rt.block_on(async {
            http.request(
                method.parse().unwrap(),
                format!("{}/git/default.git/{path}", p.url()),
            )
            .send()
            .await
            .unwrap()
            .status()
        });
        assert_eq!(status, 404, "{method} {path}");
    }
    // A new deployment: the old certificate fetches nothing more.
    p.ok(&["restart", "web", "--wait"]);
    p.wait_for("the old certificate to be refused", || {
        let (ok, err) = checkout("default", true, "late");
        !ok && err.contains("did not take the certificate")
    });
}
