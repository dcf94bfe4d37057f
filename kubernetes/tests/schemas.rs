//! Everything the platform renders for a cluster passes the official Kubernetes schemas
//! (`kubernetes-validate --strict`, offline) for the version it is written for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use micro_kubernetes::render::manifests;
use micro_kubernetes::{KUBERNETES_VERSION, Settings};
use micro_reconciler::desired::{DesiredNamespace, DesiredService, ServiceModel, SourceModel};
use micro_reconciler::quota::Quota;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// `kubernetes-validate`: from `KUBERNETES_VALIDATE`, `PATH`, or the virtualenv `.ci/run`
/// installs it into.
fn validator() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBERNETES_VALIDATE") {
        return p.into();
    }
    let on_path = Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return "kubernetes-validate".into();
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let venv = PathBuf::from(home).join(".cache/micro-ci/venv/bin/kubernetes-validate");
    assert!(
        venv.exists(),
        "kubernetes-validate is not installed: run .ci/run once, or pip install kubernetes-validate"
    );
    venv
}

/// Validates each object, failing with the validator's words.
pub fn validate(objects: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let f = dir.path().join(format!("{i:03}.json"));
            std::fs::write(&f, serde_json::to_vec_pretty(o).unwrap()).unwrap();
            f
        })
        .collect();
    let out = Command::new(validator())
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn service(name: &str, model: ServiceModel) -> (String, DesiredService) {
    (
        name.to_owned(),
        DesiredService {
            name: name.into(),
            model,
            tree: "t".into(),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
        },
    )
}

#[test]
fn rendered_tenants_pass_the_official_schemas() {
    let mut plain = ServiceModel {
        code: "c".into(),
        run: Some("python3 main.py".into()),
        replicas: 1,
        ready_timeout: 60,
        ..ServiceModel::default()
    };
    plain.env.insert("GREETING".into(), "hello".into());
    let mut rich = plain.clone();
    rich.build = Some("pip install -r requirements.txt".into());
    rich.port = Some(9000);
    rich.replicas = 3;
    rich.cpu = Some("250m".into());
    rich.memory = Some("128Mi".into());
    rich.ready_path = Some("/health".into());
    rich.config.insert("db.password".into(), 2);
    let mut image = plain.clone();
    image.image = Some("nginx:1.27".into());
    image.run = None;
    let mut source = plain.clone();
    source.source = Some(SourceModel {
        git: "https://example.com/acme/greeter".into(),
        commit: "c0ffee".into(),
        track: None,
        path: Some("cmd/greeter".into()),
    });
    let desired = DesiredNamespace {
        namespace: "team".into(),
        revision: "r".into(),
        services: [
            service("plain", plain),
            service("rich", rich),
            service("web", image),
            service("greeter", source),
        ]
        .into_iter()
        .collect(),
    };
    let objects = manifests(&Settings::default(), &desired, &Quota::default(), None);
    assert_eq!(objects.len(), 4 + 4 * 4);
    validate(&objects);
}

#[test]
fn the_validator_refuses_what_is_wrong() {
    // Guards the test above: a validator that passed everything would prove nothing.
    let bad = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x"}, "spec": {"replicas": "three", "bogus": true},
    });
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.json");
    std::fs::write(&f, bad.to_string()).unwrap();
    let out = Command::new(validator())
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
