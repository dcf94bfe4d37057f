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

/// Validates the objects of one file (a YAML stream), failing with the validator's words.
fn validate_file(file: &std::path::Path) {
    let out = Command::new(validator())
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(file)
        .output()
        .expect("run kubernetes-validate");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Validates each object, failing with the validator's words.
pub fn validate(objects: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    let stream: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
    std::fs::write(&file, stream.join("\n---\n")).unwrap();
    validate_file(&file);
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

/// `kubectl kustomize manifests/`, as objects.
fn platform_manifests() -> (tempfile::TempDir, PathBuf, Vec<Value>) {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&base)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("platform.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<Value> = text
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect();
    (dir, file, objects)
}

#[test]
fn the_platforms_own_manifests_pass_the_official_schemas() {
    let (_dir, file, objects) = platform_manifests();
    validate_file(&file);
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "StatefulSet",
        "NetworkPolicy",
        "Secret",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    // Everything lands in the platform's namespace.
    for o in &objects {
        let cluster_wide = ["Namespace", "ClusterRole", "ClusterRoleBinding"]
            .contains(&o["kind"].as_str().unwrap());
        if !cluster_wide {
            assert_eq!(o["metadata"]["namespace"], "micro", "{o}");
        }
    }
}

#[test]
fn the_cluster_role_allows_exactly_what_the_runtime_applies_and_no_wildcard() {
    let (_dir, _file, objects) = platform_manifests();
    let role = objects.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
    let rules = role["rules"].as_array().unwrap();
    let text = role.to_string();
    assert!(!text.contains("\"*\""), "a wildcard in {text}");
    let allowed = |group: &str, plural: &str, verb: &str| {
        rules.iter().any(|r| {
            let has = |field: &str, v: &str| r[field].as_array().unwrap().iter().any(|x| x == v);
            has("apiGroups", group) && has("resources", plural) && has("verbs", verb)
        })
    };
    // Every kind a tenant is rendered into: applied (create, patch) and watched.
    let model = ServiceModel {
        run: Some("x".into()),
        replicas: 1,
        ..ServiceModel::default()
    };
    let desired = DesiredNamespace {
        namespace: "t".into(),
        revision: "r".into(),
        services: [service("s", model)].into_iter().collect(),
    };
    let rendered = manifests(&Settings::default(), &desired, &Quota::default(), None);
    let mut needed = Vec::new();
    for o in &rendered {
        let api_version = o["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, o["kind"].as_str().unwrap());
        let plural = kube::api::ApiResource::from_gvk(&gvk).plural;
        needed.push(plural.clone());
        for verb in ["get", "list", "watch", "create", "patch"] {
            assert!(
                allowed(group, &plural, verb),
                "{verb} {group}/{plural} is not allowed"
            );
        }
    }
    // Pods and their logs are read, never written.
    for verb in ["get", "list", "watch"] {
        assert!(allowed("", "pods", verb));
    }
    assert!(allowed("", "pods/log", "get"));
    for verb in ["create", "patch", "delete"] {
        assert!(!allowed("", "pods", verb), "{verb} pods");
    }
    // `micro call` through the service proxy: any method a caller may use.
    for verb in ["get", "create", "update", "patch", "delete"] {
        assert!(allowed("", "services/proxy", verb), "{verb} services/proxy");
    }
    needed.extend(["pods", "pods/log", "services/proxy"].map(str::to_owned));
    // And nothing else.
    for rule in rules {
        for resource in rule["resources"].as_array().unwrap() {
            let resource = resource.as_str().unwrap();
            assert!(
                needed.iter().any(|p| p == resource),
                "{resource} is allowed but never used"
            );
        }
    }
    // Prune deletes a service's objects, never a namespace or its isolation.
    for plural in ["deployments", "services", "secrets", "serviceaccounts"] {
        let group = if plural == "deployments" { "apps" } else { "" };
        assert!(allowed(group, plural, "delete"), "{plural}");
    }
    assert!(!allowed("", "namespaces", "delete"));
    assert!(!allowed("networking.k8s.io", "networkpolicies", "delete"));
}
