//! Everything the platform renders for a cluster passes the official Kubernetes schemas
//! (`kubernetes-validate --strict`, offline) for the version it is written for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use micro_kubernetes::render::manifests;
use micro_kubernetes::{KUBERNETES_VERSION, Settings};
use micro_tenant::desired::{DesiredNamespace, DesiredService, ServiceModel, SourceModel};
use micro_tenant::quota::Quota;
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

/// The Kubernetes versions everything is checked against: the oldest the platform
/// supports (1.30: ValidatingAdmissionPolicy, user namespaces for pods), the one
/// `k8s-openapi` is pinned to, and the newest the validator knows (its default).
const VERSIONS: [Option<&str>; 3] = [Some("1.30.0"), Some(KUBERNETES_VERSION), None];

/// Validates the objects of one file (a YAML stream) for every version of [`VERSIONS`],
/// failing with the validator's words.
fn validate_file(file: &std::path::Path) {
    for version in VERSIONS {
        let mut cmd = Command::new(validator());
        cmd.args(["--strict", "--quiet"]);
        if let Some(v) = version {
            cmd.args(["-k", v]);
        }
        let out = cmd.arg(file).output().expect("run kubernetes-validate");
        assert!(
            out.status.success(),
            "Kubernetes {}: {}{}",
            version.unwrap_or("newest"),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
    rich.liveness = Some(micro_tenant::desired::Liveness {
        path: Some("/alive".into()),
        period: 10,
        failures: 3,
    });
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
    assert_eq!(objects.len(), 5 + 4 * 4);
    validate(&objects);
    // With user namespaces for pods, and egress exceptions of the operator's.
    let settings = Settings {
        pod_user_namespaces: true,
        egress_except: vec!["192.0.2.0/24".into()],
        ..Settings::default()
    };
    validate(&manifests(&settings, &desired, &Quota::default(), None));
    // A public service behind an ingress controller, with cert-manager: its Ingress and
    // the NetworkPolicy letting the controller in.
    let mut public = desired.clone();
    if let Some(web) = public.services.get_mut("web") {
        web.model.public = true;
    }
    let settings = Settings {
        apps_domain: Some("apps.example.com".into()),
        ingress_class: Some("nginx".into()),
        cluster_issuer: Some("letsencrypt".into()),
        ..Settings::default()
    };
    let objects = manifests(&settings, &public, &Quota::default(), None);
    let ingress = objects
        .iter()
        .find(|o| o["kind"] == "Ingress")
        .expect("an Ingress for the public service");
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "web-team.apps.example.com"
    );
    assert_eq!(
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    assert_eq!(
        objects.iter().filter(|o| o["kind"] == "Ingress").count(),
        1,
        "only the public service has an Ingress"
    );
    let policy = objects
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == "micro-public-ingress")
        .expect("the namespace's public policy");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    let pods = |name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
            .unwrap()["spec"]["template"]["metadata"]["labels"]
            .clone()
    };
    assert_eq!(pods("web")["micro/public"], "true");
    assert!(pods("plain").get("micro/public").is_none());
    validate(&objects);
    // With a Gateway instead, an HTTPRoute attached to it (Gateway API: not among the
    // official Kubernetes schemas, so checked here, the rest by the validator).
    let gateway = Settings {
        apps_domain: Some("apps.example.com".into()),
        gateway: Some("edge/public".into()),
        ..Settings::default()
    };
    let objects = manifests(&gateway, &public, &Quota::default(), None);
    assert!(!objects.iter().any(|o| o["kind"] == "Ingress"));
    let route = objects
        .iter()
        .find(|o| o["kind"] == "HTTPRoute")
        .expect("an HTTPRoute");
    assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(
        route["spec"]["parentRefs"][0],
        serde_json::json!({"name": "public", "namespace": "edge"})
    );
    assert_eq!(route["spec"]["hostnames"][0], "web-team.apps.example.com");
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["name"], "web");
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["port"], 8080);
    let rest: Vec<Value> = objects
        .into_iter()
        .filter(|o| o["kind"] != "HTTPRoute")
        .collect();
    validate(&rest);
    // Without an ingress class, nothing public is rendered.
    let no_class = Settings {
        apps_domain: Some("apps.example.com".into()),
        ..Settings::default()
    };
    assert!(
        !manifests(&no_class, &public, &Quota::default(), None)
            .iter()
            .any(|o| o["kind"] == "Ingress")
    );
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

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// `kubectl kustomize manifests/overlays/example`: the base and an operator's values.
fn platform_manifests() -> (tempfile::TempDir, PathBuf, Vec<Value>) {
    kustomize(&manifests_dir().join("overlays/example"))
}

/// `kubectl kustomize DIR`: the file it wrote, and its objects.
fn kustomize(dir: &std::path::Path) -> (tempfile::TempDir, PathBuf, Vec<Value>) {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
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
fn the_base_holds_no_operators_values() {
    let (_dir, file, objects) = kustomize(&manifests_dir().join("base"));
    validate_file(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    for weak in ["change-me", "sslmode=disable"] {
        assert!(!text.contains(weak), "the base says {weak:?}");
    }
    assert!(
        !objects.iter().any(|o| o["kind"] == "Secret"),
        "a Secret in the base"
    );
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
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "CronJob",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    // Everything lands in the platform's namespace.
    for o in &objects {
        let cluster_wide = [
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
        .contains(&o["kind"].as_str().unwrap());
        if !cluster_wide {
            assert_eq!(o["metadata"]["namespace"], "micro", "{o}");
        }
    }
    // The server and its database are restarted when they stop answering, and count as
    // ready only when they answer; the server finds its data dir (and an operator's
    // `kubectl exec … micro admin token create` finds it too) from the environment.
    for (kind, name) in [
        ("Deployment", "micro-server"),
        ("StatefulSet", "micro-postgres"),
    ] {
        let o = objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        let c = &o["spec"]["template"]["spec"]["containers"][0];
        assert!(
            c["readinessProbe"].is_object() && c["livenessProbe"].is_object(),
            "{c}"
        );
    }
    let server = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "micro-server" && o["kind"] == "Deployment")
        .unwrap();
    let env = &server["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "MICRO_DATA_DIR" && e["value"] == "/data"),
        "{env}"
    );
    // The listener serves the operator's certificate for the public URL.
    let args = &server["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--tls-cert=/etc/micro/tls/tls.crt"),
        "{args}"
    );
    // The operator's values reach the server: webhooks and links name the public URL,
    // public services get Ingresses under the apps domain.
    for (name, value) in [
        ("MICRO_PUBLIC_URL", "https://micro.example.com"),
        ("MICRO_APPS_DOMAIN", "apps.example.com"),
        ("MICRO_INGRESS_CLASS", "nginx"),
    ] {
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == name && e["value"] == value),
            "{name}: {env}"
        );
    }
    // The nightly backup reads the server's data dir (never writes it) and its store,
    // beside the server (one node holds the volume), with the passphrase's Secret.
    let backup = objects
        .iter()
        .find(|o| o["kind"] == "CronJob" && o["metadata"]["name"] == "micro-backup")
        .unwrap();
    let pod = &backup["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert!(
        c["args"][0]
            .as_str()
            .unwrap()
            .contains("micro admin backup")
    );
    let env = c["env"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "MICRO_DATA_DIR" && e["value"] == "/data")
    );
    assert!(env.iter().any(|e| e["name"] == "MICRO_STORE"
        && e["valueFrom"]["secretKeyRef"]["name"] == "micro-database"));
    let data = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/data")
        .unwrap();
    assert_eq!(data["readOnly"], true);
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| { v["persistentVolumeClaim"]["claimName"] == "micro-data" })
    );
    assert!(
        objects
            .iter()
            .any(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "micro-backup")
    );
    assert_eq!(
        pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]
            ["matchLabels"]["app.kubernetes.io/name"],
        "micro-server"
    );
}

/// Whether `role` allows `verb` on `group`/`plural` (resource names aside).
fn allows(role: &Value, group: &str, plural: &str, verb: &str) -> bool {
    role["rules"].as_array().unwrap().iter().any(|r| {
        let has = |field: &str, v: &str| r[field].as_array().unwrap().iter().any(|x| x == v);
        has("apiGroups", group) && has("resources", plural) && has("verbs", verb)
    })
}

fn cluster_role<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no ClusterRole {name}"))
}

#[test]
fn the_server_may_write_only_in_its_tenants_namespaces() {
    let (_dir, _file, objects) = platform_manifests();
    let server = cluster_role(&objects, "micro-server");
    let tenant = cluster_role(&objects, micro_kubernetes::render::TENANT_ROLE);
    for role in [server, tenant] {
        assert!(!role.to_string().contains("\"*\""), "a wildcard in {role}");
    }
    // Only the server's role is bound cluster-wide; the tenant role is bound by the
    // RoleBinding rendered into each tenant namespace.
    let bindings: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding")
        .collect();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0]["roleRef"]["name"], "micro-server");
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
    let binding = rendered
        .iter()
        .find(|o| o["kind"] == "RoleBinding")
        .expect("a RoleBinding in the tenant namespace");
    assert_eq!(binding["metadata"]["namespace"], "micro-t");
    assert_eq!(binding["roleRef"]["name"], tenant["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], "micro-server");
    let mut needed = Vec::new();
    for o in &rendered {
        let api_version = o["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, o["kind"].as_str().unwrap());
        let plural = kube::api::ApiResource::from_gvk(&gvk).plural;
        needed.push(plural.clone());
        // Namespaces and the binding into them are the server's own; the rest only in
        // the tenant namespace, through the binding.
        let role = if ["namespaces", "rolebindings"].contains(&plural.as_str()) {
            server
        } else {
            tenant
        };
        for verb in ["get", "list", "watch", "create", "patch"] {
            assert!(
                allows(role, group, &plural, verb),
                "{verb} {group}/{plural} is not allowed"
            );
        }
    }
    // The caches watch cluster-wide what they can read without harm: never Secrets.
    for plural in [
        "serviceaccounts",
        "services",
        "pods",
        "resourcequotas",
        "limitranges",
    ] {
        assert!(allows(server, "", plural, "watch"), "{plural}");
        for verb in ["create", "patch", "delete", "update"] {
            assert!(
                !allows(server, "", plural, verb),
                "{verb} {plural} cluster-wide"
            );
        }
    }
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert!(
            !allows(server, "", "secrets", verb),
            "{verb} secrets cluster-wide"
        );
    }
    assert!(!allows(server, "apps", "deployments", "patch"));
    // Binding: the tenant role only.
    let bind = server["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["verbs"].as_array().unwrap().iter().any(|v| v == "bind"))
        .expect("bind");
    assert_eq!(
        bind["resourceNames"],
        serde_json::json!([micro_kubernetes::render::TENANT_ROLE])
    );
    // Pods and their logs are read, never written.
    for verb in ["get", "list", "watch"] {
        assert!(allows(tenant, "", "pods", verb));
    }
    assert!(allows(tenant, "", "pods/log", "get"));
    for verb in ["create", "patch", "delete"] {
        assert!(!allows(tenant, "", "pods", verb), "{verb} pods");
    }
    // `micro call` through the service proxy: any method a caller may use.
    for verb in ["get", "create", "update", "patch", "delete"] {
        assert!(
            allows(tenant, "", "services/proxy", verb),
            "{verb} services/proxy"
        );
    }
    // Prune deletes a service's objects; a deleted tenant's namespace goes whole.
    for plural in ["deployments", "services", "secrets", "serviceaccounts"] {
        let group = if plural == "deployments" { "apps" } else { "" };
        assert!(allows(tenant, group, plural, "delete"), "{plural}");
    }
    assert!(allows(server, "", "namespaces", "delete"));
    assert!(!allows(
        tenant,
        "networking.k8s.io",
        "networkpolicies",
        "delete"
    ));
    // A public service's Ingress (with `--ingress-class`) is applied, and pruned when
    // the service stops being public.
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert!(
            allows(tenant, "networking.k8s.io", "ingresses", verb),
            "{verb} ingresses"
        );
    }
    assert!(allows(server, "networking.k8s.io", "ingresses", "watch"));
    assert!(allows(
        tenant,
        "gateway.networking.k8s.io",
        "httproutes",
        "delete"
    ));
    needed.extend(
        [
            "pods",
            "pods/log",
            "services/proxy",
            "clusterroles",
            "ingresses",
            "httproutes",
        ]
        .map(str::to_owned),
    );
    for role in [server, tenant] {
        for rule in role["rules"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                let resource = resource.as_str().unwrap();
                assert!(
                    needed.iter().any(|p| p == resource),
                    "{resource} is allowed but never used"
                );
            }
        }
    }
    // And the API server holds the server's account to namespaces of the platform's.
    let policy = objects
        .iter()
        .find(|o| o["kind"] == "ValidatingAdmissionPolicy")
        .unwrap();
    let condition = policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(
        condition.contains("system:serviceaccount:micro:micro-server"),
        "{condition}"
    );
    let rules = policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"].to_string();
    for plural in &needed {
        if !["pods", "pods/log", "services/proxy", "clusterroles"].contains(&plural.as_str()) {
            assert!(
                rules.contains(plural.as_str()),
                "{plural} is not held by the policy"
            );
        }
    }
    let binding = objects
        .iter()
        .find(|o| o["kind"] == "ValidatingAdmissionPolicyBinding")
        .unwrap();
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(
        binding["spec"]["validationActions"],
        serde_json::json!(["Deny"])
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The volume a container reads `path` from: the one mounted at a folder above it.
fn volume_of<'a>(pod: &'a Value, path: &str) -> &'a Value {
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let mount = mounts
        .iter()
        .find(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .unwrap_or_else(|| panic!("nothing mounted above {path}: {mounts:#?}"));
    pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap()
}

#[test]
fn the_tls_components_wire_every_certificate_from_its_secret() {
    // An operator's overlay beside their copy of manifests/, as README.md shows.
    let root = tempfile::tempdir().unwrap();
    copy_dir(&manifests_dir(), &root.path().join("manifests"));
    let overlay = root.path().join("platform");
    std::fs::create_dir(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../manifests/overlays/example]\ncomponents: [../manifests/components/database-tls]\n",
    )
    .unwrap();
    let (_dir, file, objects) = kustomize(&overlay);
    validate_file(&file);
    let find = |kind: &str, prefix: &str| {
        objects
            .iter()
            .find(|o| {
                o["kind"] == kind && o["metadata"]["name"].as_str().unwrap().starts_with(prefix)
            })
            .unwrap_or_else(|| panic!("no {kind} {prefix}"))
    };
    for o in &objects {
        if ![
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
        .contains(&o["kind"].as_str().unwrap())
        {
            assert_eq!(o["metadata"]["namespace"], "micro", "{o}");
        }
    }
    let secret_of = |pod: &Value, path: &str| {
        volume_of(pod, path)["secret"]["secretName"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} is not from a Secret"))
            .to_owned()
    };

    // The listener: the operator's certificate and key, from Secret micro-tls.
    let server = &find("Deployment", "micro-server")["spec"]["template"]["spec"];
    let args: Vec<&str> = server["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for flag in ["--tls-cert=", "--tls-key="] {
        let path = args.iter().find_map(|a| a.strip_prefix(flag)).unwrap();
        assert_eq!(secret_of(server, path), "micro-tls", "{flag}");
    }
    assert_eq!(
        server["containers"][0]["readinessProbe"]["httpGet"]["scheme"],
        "HTTPS"
    );

    // The server's database connection: verify-full, and each file from the client Secret.
    use base64::Engine;
    let url = base64::engine::general_purpose::STANDARD
        .decode(
            find("Secret", "micro-database")["data"]["url"]
                .as_str()
                .unwrap()
                .replace('\n', ""),
        )
        .unwrap();
    let url = url::Url::parse(std::str::from_utf8(&url).unwrap()).unwrap();
    let param = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .unwrap()
            .1
            .into_owned()
    };
    assert_eq!(param("sslmode"), "verify-full");
    assert_eq!(
        url.password(),
        None,
        "the certificate signs in, not a password"
    );
    for k in ["sslrootcert", "sslcert", "sslkey"] {
        assert_eq!(
            secret_of(server, &param(k)),
            "micro-database-client-tls",
            "{k}"
        );
    }

    // The database: TLS on, its files from the server Secret (a key mode PostgreSQL takes),
    // and an hba that refuses plain TCP and asks for a certificate.
    let db = &find("StatefulSet", "micro-postgres")["spec"]["template"]["spec"];
    let args: Vec<&str> = db["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"ssl=on"), "{args:?}");
    let setting = |k: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}"))
    };
    for k in ["ssl_cert_file", "ssl_key_file", "ssl_ca_file"] {
        assert_eq!(
            secret_of(db, setting(k)),
            "micro-database-server-tls",
            "{k}"
        );
    }
    assert_eq!(
        volume_of(db, setting("ssl_key_file"))["secret"]["defaultMode"],
        0o640
    );
    let hba = volume_of(db, setting("hba_file"))["configMap"]["name"]
        .as_str()
        .unwrap();
    let hba = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == hba)
        .unwrap()["data"]["pg_hba.conf"]
        .as_str()
        .unwrap();
    let rules: Vec<&str> = hba.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(rules.contains(&"hostssl all all all cert"), "{hba}");
    assert!(rules.contains(&"hostnossl all all all reject"), "{hba}");
}
