//! Two namespaces: their services do not see each other's files or ports, and a
//! developer of one cannot read, call, log, clone or push the other. A namespace that is
//! not yours answers exactly like one that does not exist.

use crate::harness::Platform;
use micro_store::{Role, Store};
use serde_json::Value;

/// Answers with what the process can see of the platform: its environment, its working
/// directory and the files in it.
pub(crate) const PROBE: &str = r#"
import json, os, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "files": sorted(os.listdir("."))}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

pub fn developer_token(p: &Platform, namespace: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open_sqlite(&p.data.join("store.db")).await.unwrap();
        let dev = store
            .create_account(
                &format!("dev@{namespace}.example"),
                Role::Developer,
                Some(namespace),
            )
            .await
            .unwrap();
        store.mint_token(&dev, "test").await.unwrap()
    })
}

#[test]
fn namespaces_are_isolated() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "other"]);
    assert!(p.ok(&["admin", "namespace", "list"]).contains("other"));
    p.write_service(
        "probe",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", PROBE),
        ],
    );
    p.ok(&["run", "./probe", "--wait"]);
    p.ok(&["run", "./probe", "--wait", "--namespace", "other"]);

    let mine: Value = serde_json::from_str(&p.ok(&["call", "probe", "/"])).unwrap();
    let theirs: Value =
        serde_json::from_str(&p.ok(&["call", "probe", "/", "--namespace", "other"])).unwrap();
    assert_eq!(mine["env"]["MICRO_NAMESPACE"], "default");
    assert_eq!(theirs["env"]["MICRO_NAMESPACE"], "other");
    // Each sees only its own folder, at a path that names nothing of the server, and
    // nothing in its environment names the other's port, folder or namespace (nor the
    // server's own settings).
    for seen in [&mine, &theirs] {
        let cwd = seen["cwd"].as_str().unwrap();
        assert!(!cwd.contains(p.data.to_str().unwrap()), "{cwd}");
    }
    assert_eq!(
        mine["files"],
        serde_json::json!(["main.py", "service.yaml"])
    );
    let my_env = mine["env"].to_string();
    assert!(!my_env.contains("other"), "{my_env}");
    assert!(
        !my_env.contains(theirs["env"]["PORT"].as_str().unwrap()),
        "{my_env}"
    );
    let admin: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.home.join("envs.json")).unwrap()).unwrap();
    let admin_token = admin["envs"]["server"]["token"].as_str().unwrap();
    assert!(
        !my_env.contains("MICRO_HOME") && !my_env.contains(admin_token),
        "no server secrets: {my_env}"
    );
    // Each service has an identity of its own.
    assert_ne!(mine["env"]["MICRO_TOKEN"], theirs["env"]["MICRO_TOKEN"]);
    assert!(
        mine["env"]["MICRO_TOKEN"]
            .as_str()
            .unwrap()
            .starts_with("mt_")
    );

    // A developer of `other` sees their own namespace…
    let token = developer_token(&p, "other");
    let dev_home = p.home.with_file_name("dev-home");
    std::fs::create_dir_all(&dev_home).unwrap();
    let env = p.env_json(Some(&token));
    std::fs::write(dev_home.join("envs.json"), env.to_string()).unwrap();
    let dev = |args: &[&str]| {
        p.command(args)
            .env("MICRO_HOME", &dev_home)
            .output()
            .unwrap()
    };
    let out = dev(&["status", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("probe"));

    // …and of `default` exactly what they see of a namespace that does not exist.
    for ns in ["default", "nosuch"] {
        for args in [
            vec!["status"],
            vec!["call", "probe", "/"],
            vec!["logs", "probe"],
            vec!["kill", "probe"],
        ] {
            let mut args = args.clone();
            args.extend(["--namespace", ns]);
            let out = dev(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} must be refused");
            assert!(err.contains("not found"), "{args:?}: {err}");
            assert!(!err.contains("probe running"), "{err}");
        }
        let out = dev(&["admin", "namespace", "create", "sneaky"]);
        assert!(!out.status.success());
    }
    // git: clone and push into someone else's repo are refused like a missing repo.
    let url = format!("https://micro:{token}@127.0.0.1:{}/git/default.git", p.port);
    let out = p.git(&p.work, &["clone", "-q", &url, "stolen"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!p.work.join("stolen").exists());
    // The owner's service is untouched.
    assert!(
        p.ok(&["call", "probe", "/"])
            .contains("\"MICRO_NAMESPACE\": \"default\"")
    );
}

#[test]
fn the_spec_port_is_the_port_every_replica_listens_on() {
    let p = Platform::start();
    p.write_service(
        "fixed",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nport: 8080\nreplicas: 2\n",
            ),
            ("main.py", PROBE),
        ],
    );
    p.ok(&["run", "./fixed", "--wait"]);
    // Round-robin over both replicas: each in its own network namespace on 8080.
    for _ in 0..2 {
        let seen: Value = serde_json::from_str(&p.ok(&["call", "fixed", "/"])).unwrap();
        assert_eq!(seen["env"]["PORT"], "8080");
    }
}
