use super::*;
use crate::labels;
use micro_tenant::desired::{ServiceModel, SourceModel};
use serde_json::Value;

fn service(name: &str, model: ServiceModel) -> DesiredService {
    DesiredService {
        name: name.into(),
        model,
        tree: "t".into(),
        revision: "0123456789abcdef0123456789abcdef01234567".into(),
    }
}

fn artifact_of(svc: &DesiredService) -> Artifact {
    cluster_artifact(&svc.name, &svc.revision, &svc.model)
}

fn model() -> ServiceModel {
    ServiceModel {
        code: "c".into(),
        run: Some("python3 main.py".into()),
        replicas: 2,
        ready_timeout: 60,
        ..ServiceModel::default()
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {objects:#?}"))
}

fn desired(services: Vec<DesiredService>) -> DesiredNamespace {
    DesiredNamespace {
        namespace: "team".into(),
        revision: "r".into(),
        services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
    }
}

#[test]
fn a_tenant_gets_an_isolated_namespace_with_its_quota() {
    let quota = Quota {
        replicas: 4,
        services: 2,
        cpu_millis: 2000,
        memory_bytes: 1 << 30,
        ..Quota::default()
    };
    let objects = manifests(&Settings::default(), &desired(vec![]), &quota, None);
    let ns = find(&objects, "Namespace", "micro-team");
    assert_eq!(ns["metadata"]["labels"][labels::TENANT], "team");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let policy = find(&objects, "NetworkPolicy", "micro-tenant-isolation");
    assert_eq!(policy["metadata"]["namespace"], "micro-team");
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    // The outside world yes, the cluster's own addresses (other tenants, the database) no.
    let outside = &policy["spec"]["egress"][3]["to"][0]["ipBlock"];
    assert_eq!(outside["cidr"], "0.0.0.0/0");
    // Nor the clouds' metadata service (link-local) or shared space (CGNAT).
    for denied in ["10.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10"] {
        assert!(
            outside["except"]
                .as_array()
                .unwrap()
                .contains(&denied.into()),
            "{denied}: {outside}"
        );
    }
    let hard = &find(&objects, "ResourceQuota", "micro-quota")["spec"]["hard"];
    assert_eq!(hard["pods"], "6", "replicas plus one surge pod per service");
    assert_eq!(hard["requests.cpu"], "4000m");
    assert_eq!(hard["requests.memory"], "2048Mi");
    // What each replica may use is the LimitRange's to hold: requests are the quota.
    assert!(hard["limits.memory"].is_null() && hard["limits.cpu"].is_null());
    assert_eq!(limits_of(&objects)["defaultRequest"]["cpu"], "100m");
    assert_eq!(limits_of(&objects)["default"]["cpu"], "1000m");
    // A node's disk too: each pod may hold a checkout, no more.
    assert_eq!(hard["limits.ephemeral-storage"], "12288Mi");
    let limits = &find(&objects, "LimitRange", "micro-limits")["spec"]["limits"][0];
    assert_eq!(limits["max"]["ephemeral-storage"], "2048Mi");
    // The server's verbs here come from this namespace's own binding, applied second.
    assert_eq!(objects[1]["kind"], "RoleBinding");
    assert_eq!(objects[1]["metadata"]["namespace"], "micro-team");
    assert_eq!(objects[1]["roleRef"]["name"], TENANT_ROLE);
    // And what the operator adds.
    let settings = Settings {
        egress_except: vec!["192.0.2.0/24".into()],
        ..Settings::default()
    };
    let objects = manifests(&settings, &desired(vec![]), &quota, None);
    let policy = find(&objects, "NetworkPolicy", "micro-tenant-isolation");
    let except = &policy["spec"]["egress"][3]["to"][0]["ipBlock"]["except"];
    assert!(
        except.as_array().unwrap().contains(&"192.0.2.0/24".into()),
        "{except}"
    );
}

#[test]
fn the_build_gets_no_secret_and_the_checkout_no_config() {
    let mut m = model();
    m.build = Some("pip install -r requirements.txt".into());
    m.config.insert("db.password".into(), 3);
    m.memory = Some("128Mi".into());
    let svc = service("api", m);
    let mut secret = placeholder_secret(&svc);
    let objects = service_objects(
        &Settings::default(),
        &workload::ServiceInput::of("team", &svc, &artifact_of(&svc), &secret, 64 << 20),
    );
    let pod = &find(&objects, "Deployment", "api")["spec"]["template"]["spec"];
    let names = |c: &Value| -> Vec<String> {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let container = |list: &str, name: &str| {
        pod[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let (checkout, build, main) = (
        container("initContainers", "checkout"),
        container("initContainers", "build"),
        container("containers", "service"),
    );
    assert!(names(&main).contains(&"MICRO_CONFIG_DB_PASSWORD".to_owned()));
    assert!(names(&main).contains(&"MICRO_TOKEN".to_owned()));
    // The build runs third-party install scripts: no token, no config value.
    for secret_var in [
        "MICRO_TOKEN",
        "MICRO_CONFIG_DB_PASSWORD",
        "MICRO_DEPLOYMENT",
    ] {
        assert!(
            !names(&build).contains(&secret_var.to_owned()),
            "build has {secret_var}"
        );
    }
    // The checkout fetches with the token (no identity here), and reads no config.
    assert!(names(&checkout).contains(&"MICRO_TOKEN".to_owned()));
    assert!(!names(&checkout).contains(&"MICRO_CONFIG_DB_PASSWORD".to_owned()));
    // `/app` and `/tmp` are bounded: the namespace's checkout-size, the memory limit.
    let size = |name: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()["emptyDir"]["sizeLimit"]
            .clone()
    };
    assert_eq!(size("app"), "64Mi");
    assert_eq!(size("tmp"), "128Mi");
    assert!(pod.get("hostUsers").is_none());
    // With an identity the checkout signs in with it, and gets no token either; the
    // build still sees no identity file.
    for k in WITH_IDENTITY {
        secret.insert(k.to_owned(), "pem".into());
    }
    let settings = Settings {
        platform_ca: Some("ca".into()),
        pod_user_namespaces: true,
        ..Settings::default()
    };
    let objects = service_objects(
        &settings,
        &workload::ServiceInput::of("team", &svc, &artifact_of(&svc), &secret, 64 << 20),
    );
    let pod = &find(&objects, "Deployment", "api")["spec"]["template"]["spec"];
    let checkout = pod["initContainers"][0].clone();
    let build = pod["initContainers"][1].clone();
    assert_eq!(checkout["name"], "checkout");
    assert!(!names(&checkout).contains(&"MICRO_TOKEN".to_owned()));
    let mounts = build["volumeMounts"].to_string();
    assert!(
        mounts.contains("ca.pem") && !mounts.contains("identity"),
        "{mounts}"
    );
    assert_eq!(pod["hostUsers"], false);
}

#[test]
fn a_service_runs_locked_down_from_its_pinned_revision() {
    let mut m = model();
    m.port = Some(9000);
    m.build = Some("pip install -r requirements.txt".into());
    m.ready_path = Some("/health".into());
    m.cpu = Some("250m".into());
    m.config.insert("db.password".into(), 3);
    let objects = manifests(
        &Settings::default(),
        &desired(vec![service("api", m)]),
        &Quota::default(),
        Some("api"),
    );
    assert_eq!(objects.len(), 4, "only the service's objects: {objects:#?}");
    let sa = find(&objects, "ServiceAccount", "api");
    assert_eq!(sa["automountServiceAccountToken"], false);
    let svc = find(&objects, "Service", "api");
    assert_eq!(svc["spec"]["ports"][0]["port"], 9000);
    assert_eq!(svc["spec"]["selector"][labels::SERVICE], "api");
    let d = find(&objects, "Deployment", "api");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let main = &pod["containers"][0];
    assert_eq!(main["readinessProbe"]["httpGet"]["path"], "/health");
    // The spec gave its CPU (both) but not its memory: a small request, the default limit.
    assert_eq!(main["resources"]["limits"]["cpu"], "250m");
    assert_eq!(main["resources"]["requests"]["cpu"], "250m");
    assert_eq!(main["resources"]["requests"]["memory"], "128Mi");
    assert_eq!(main["resources"]["limits"]["memory"], "512Mi");
    let sc = &main["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let init = pod["initContainers"].as_array().unwrap();
    assert_eq!(init[0]["name"], "checkout");
    let args: Vec<&str> = init[0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w
            == [
                "--git",
                "https://micro.micro.svc.cluster.local:8081/git/team.git"
            ]),
        "{args:?}"
    );
    assert!(
        args.windows(2).any(|w| w == ["--path", "services/api"]),
        "{args:?}"
    );
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--commit" && w[1].starts_with("0123456"))
    );
    assert_eq!(init[1]["name"], "build");
    let build = init[1]["command"][2].as_str().unwrap();
    assert!(
        build.ends_with("\npip install -r requirements.txt"),
        "{build}"
    );
    assert!(build.contains("python3 -m venv .venv"), "{build}");
}

#[test]
fn secret_values_never_show_in_manifests() {
    let mut m = model();
    m.config.insert("db.password".into(), 3);
    let objects = manifests(
        &Settings::default(),
        &desired(vec![service("api", m)]),
        &Quota::default(),
        None,
    );
    let secret = find(&objects, "Secret", "api-env");
    let data = secret["stringData"].as_object().unwrap();
    let keys: Vec<&String> = data.keys().collect();
    assert_eq!(
        keys,
        [
            "MICRO_CONFIG_DB_PASSWORD",
            "MICRO_DEPLOYMENT",
            "MICRO_TOKEN"
        ]
    );
    assert_eq!(data["MICRO_DEPLOYMENT"], AT_APPLY);
    assert_eq!(data["MICRO_TOKEN"], PLACEHOLDER);
    assert_eq!(data["MICRO_CONFIG_DB_PASSWORD"], PLACEHOLDER);
}

#[test]
fn a_config_version_or_revision_change_rolls_the_pods() {
    let s = Settings::default();
    let template = |m: &ServiceModel, rev: &str| {
        let mut svc = service("api", m.clone());
        svc.revision = rev.into();
        let objects = manifests(&s, &desired(vec![svc]), &Quota::default(), Some("api"));
        find(&objects, "Deployment", "api")["spec"]["template"].clone()
    };
    let mut m = model();
    m.config.insert("k".into(), 1);
    let before = template(&m, "r1");
    assert_eq!(before, template(&m, "r1"), "rendering is deterministic");
    assert_ne!(before, template(&m, "r2"));
    m.config.insert("k".into(), 2);
    assert_ne!(before, template(&m, "r1"));
}

#[test]
fn images_and_sources_run_what_they_name() {
    let mut img = model();
    img.image = Some("nginx:1.27".into());
    img.run = None;
    let mut src = model();
    src.source = Some(SourceModel {
        git: "https://example.com/acme/greeter".into(),
        commit: "c0ffee".into(),
        track: Some("v1".into()),
        path: Some("cmd/greeter".into()),
    });
    let objects = manifests(
        &Settings::default(),
        &desired(vec![service("web", img), service("greeter", src)]),
        &Quota::default(),
        None,
    );
    let web = &find(&objects, "Deployment", "web")["spec"]["template"]["spec"];
    assert_eq!(web["containers"][0]["image"], "nginx:1.27");
    assert!(web["containers"][0].get("command").is_none());
    assert!(web["containers"][0].get("workingDir").is_none());
    assert_eq!(web["initContainers"], serde_json::json!([]));
    let greeter = &find(&objects, "Deployment", "greeter")["spec"]["template"]["spec"];
    let args = greeter["initContainers"][0]["command"].to_string();
    assert!(args.contains("\"https://example.com/acme/greeter\",\"--commit\",\"c0ffee\",\"--path\",\"cmd/greeter\""), "{args}");
}

#[test]
fn the_runner_follows_the_folders_language() {
    let mut settings = Settings::default();
    settings
        .runner_images
        .insert("node".into(), "registry.example/runner-node:1".into());
    let mut node = model();
    node.toolchain = Some("node".into());
    node.build = Some("npm ci".into());
    let plain = model();
    let objects = manifests(
        &settings,
        &desired(vec![service("js", node), service("py", plain)]),
        &Quota::default(),
        None,
    );
    let js = &find(&objects, "Deployment", "js")["spec"]["template"]["spec"];
    assert_eq!(
        js["containers"][0]["image"],
        "registry.example/runner-node:1"
    );
    assert_eq!(
        js["initContainers"][1]["image"],
        "registry.example/runner-node:1"
    );
    let py = &find(&objects, "Deployment", "py")["spec"]["template"]["spec"];
    assert_eq!(py["containers"][0]["image"], settings.runner_image);
}

#[test]
fn a_language_without_a_runner_of_its_own_is_warned_about() {
    let mut go = model();
    go.toolchain = Some("go".into());
    let namespace = desired(vec![service("api", go), service("plain", model())]);
    // Every language detection knows has a runner by default.
    assert!(warnings(&Settings::default(), &namespace).is_empty());
    // An operator who named Python's alone: the Go service would run in it.
    let mut settings = Settings::default();
    settings.runner_images.retain(|lang, _| lang == "python");
    let said = warnings(&settings, &namespace);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("api: a go folder") && said[0].contains("--runner-image go=IMAGE"),
        "{said:?}"
    );
}

#[test]
fn a_spec_variable_replaces_the_platforms_default_of_that_name() {
    let mut m = model();
    m.env.insert("PATH".into(), "/opt/bin:/usr/bin".into());
    m.env.insert("HOME".into(), "/app".into());
    let objects = manifests(
        &Settings::default(),
        &desired(vec![service("api", m)]),
        &Quota::default(),
        Some("api"),
    );
    let env =
        find(&objects, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .clone();
    let named = |n: &str| env.iter().filter(|e| e["name"] == n).collect::<Vec<_>>();
    assert_eq!(named("PATH").len(), 1, "{env:?}");
    assert_eq!(named("PATH")[0]["value"], "/opt/bin:/usr/bin");
    assert_eq!(named("HOME")[0]["value"], "/app");
    assert_eq!(named("MICRO_NAMESPACE")[0]["value"], "team");
}

#[test]
fn pods_trust_the_platform_ca_when_there_is_one() {
    let settings = Settings {
        platform_ca: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
        ..Settings::default()
    };
    let secret: std::collections::BTreeMap<String, String> = [
        ("MICRO_TOKEN", "mt_x"),
        ("MICRO_TLS_CERT_PEM", "cert"),
        ("MICRO_TLS_KEY_PEM", "key"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let svc = service("web", model());
    let objects = workload::service_objects(
        &settings,
        &workload::ServiceInput::of("team", &svc, &artifact_of(&svc), &secret, 2 << 30),
    );
    let s = find(&objects, "Secret", "web-env");
    assert!(
        s["stringData"]["MICRO_TLS_CA_PEM"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let d = find(&objects, "Deployment", "web");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][1]["secret"]["items"][0]["path"], "ca.pem");
    for c in pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["containers"].as_array().unwrap())
    {
        let env = c["env"].as_array().unwrap();
        assert!(
            env.iter()
                .any(|e| e["name"] == "SSL_CERT_FILE" && e["value"] == "/run/micro/ca.pem"),
            "{c}"
        );
        assert!(env.iter().any(|e| e["name"] == "MICRO_TLS_CA"), "{c}");
        assert!(env.iter().any(|e| e["name"] == "MICRO_TLS_CERT"), "{c}");
        assert!(
            c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mountPath"] == "/run/micro"),
            "{c}"
        );
    }
    // The init container fetches the tenant's repo signed in with the pod's certificate.
    let fetch = pod["initContainers"][0]["command"].as_array().unwrap();
    assert_eq!(fetch[1], "checkout", "{fetch:?}");
    assert_eq!(fetch.last().unwrap(), "--identity", "{fetch:?}");
    // Without one, nothing of it.
    let plain = workload::service_objects(
        &Settings::default(),
        &workload::ServiceInput::of("team", &svc, &artifact_of(&svc), &secret, 2 << 30),
    );
    assert!(
        find(&plain, "Secret", "web-env")["stringData"]
            .get("MICRO_TLS_CA_PEM")
            .is_none()
    );
}

#[test]
fn a_liveness_check_restarts_pods_only_after_they_started() {
    let mut m = model();
    m.ready_path = Some("/ready".into());
    m.ready_timeout = 90;
    let plain = service("api", m.clone());
    let secret = placeholder_secret(&plain);
    let objects = service_objects(
        &Settings::default(),
        &workload::ServiceInput::of("team", &plain, &artifact_of(&plain), &secret, 64 << 20),
    );
    let main = &find(&objects, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0];
    // Without a liveness check, nothing restarts a pod but its own exit.
    assert!(main.get("livenessProbe").is_none() && main.get("startupProbe").is_none());
    m.liveness = Some(micro_tenant::desired::Liveness {
        path: Some("/alive".into()),
        period: 5,
        failures: 4,
    });
    let live = service("api", m);
    let objects = service_objects(
        &Settings::default(),
        &workload::ServiceInput::of("team", &live, &artifact_of(&live), &secret, 64 << 20),
    );
    let main = &find(&objects, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0];
    let liveness = &main["livenessProbe"];
    assert_eq!(liveness["httpGet"]["path"], "/alive");
    assert_eq!(liveness["httpGet"]["port"], "http");
    assert_eq!(
        (
            liveness["periodSeconds"].as_i64(),
            liveness["failureThreshold"].as_i64()
        ),
        (Some(5), Some(4))
    );
    // Liveness waits for the readiness check to pass once, within the readiness timeout.
    let startup = &main["startupProbe"];
    assert_eq!(startup["httpGet"]["path"], "/ready");
    assert_eq!(
        startup["periodSeconds"].as_i64().unwrap() * startup["failureThreshold"].as_i64().unwrap(),
        90
    );
}

#[test]
fn the_operators_build_env_reaches_the_build_alone_under_the_services_own() {
    let mut m = model();
    m.build = Some("pip install -r requirements.txt".into());
    m.env
        .insert("PIP_INDEX_URL".into(), "https://own.example/simple".into());
    let svc = service("api", m);
    let secret = placeholder_secret(&svc);
    let settings = Settings {
        build_env: vec![
            (
                "PIP_INDEX_URL".into(),
                "https://mirror.example/simple".into(),
            ),
            ("npm_config_registry".into(), "https://npm.example/".into()),
        ],
        ..Settings::default()
    };
    let objects = service_objects(
        &settings,
        &workload::ServiceInput::of("team", &svc, &artifact_of(&svc), &secret, 64 << 20),
    );
    let pod = &find(&objects, "Deployment", "api")["spec"]["template"]["spec"];
    let env_of = |list: &str, name: &str| -> Vec<(String, String)> {
        pod[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_owned(),
                    e["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let build = env_of("initContainers", "build");
    let pip: Vec<_> = build.iter().filter(|(k, _)| k == "PIP_INDEX_URL").collect();
    assert_eq!(pip.len(), 1, "{build:?}");
    assert_eq!(pip[0].1, "https://own.example/simple");
    assert!(
        build
            .iter()
            .any(|(k, v)| k == "npm_config_registry" && v == "https://npm.example/")
    );
    let main = env_of("containers", "service");
    assert!(
        !main.iter().any(|(k, _)| k == "npm_config_registry"),
        "{main:?}"
    );
}

fn limits_of(objects: &[Value]) -> Value {
    find(objects, "LimitRange", "micro-limits")["spec"]["limits"][0].clone()
}

#[test]
fn a_preview_is_a_namespace_like_any_other_with_its_own_host() {
    let settings = Settings {
        apps_domain: Some("apps.example".into()),
        ingress_class: Some("nginx".into()),
        ..Settings::default()
    };
    let web = service(
        "web",
        ServiceModel {
            public: true,
            ..model()
        },
    );
    let preview = DesiredNamespace {
        namespace: "team-pr-7".into(),
        ..desired(vec![web])
    };
    let quota = Quota::default().preview_class();
    let objects = manifests(&settings, &preview, &quota, None);
    let ns = find(&objects, "Namespace", "micro-team-pr-7");
    assert_eq!(ns["metadata"]["labels"][labels::TENANT], "team-pr-7");
    let policy = find(&objects, "NetworkPolicy", "micro-tenant-isolation");
    assert_eq!(policy["metadata"]["namespace"], "micro-team-pr-7");
    let hard = &find(&objects, "ResourceQuota", "micro-quota")["spec"]["hard"];
    assert_eq!(
        hard["pods"], "20",
        "the previews class: 10 replicas plus a surge each"
    );
    let ingress = find(&objects, "Ingress", "web");
    assert_eq!(ingress["metadata"]["namespace"], "micro-team-pr-7");
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "web-team-pr-7.apps.example"
    );
}

#[test]
fn init_containers_request_little_and_may_use_what_the_service_may() {
    let mut m = model();
    m.build = Some("pip install -r requirements.txt".into());
    m.cpu = Some("2".into());
    m.memory = Some("1Gi".into());
    let svc = service("api", m);
    let secret = placeholder_secret(&svc);
    let objects = service_objects(
        &Settings::default(),
        &workload::ServiceInput::of("team", &svc, &artifact_of(&svc), &secret, 64 << 20),
    );
    let pod = &find(&objects, "Deployment", "api")["spec"]["template"]["spec"];
    for init in pod["initContainers"].as_array().unwrap() {
        let r = &init["resources"];
        assert_eq!(r["requests"]["cpu"], "100m", "{init}");
        assert_eq!(r["requests"]["memory"], "128Mi", "{init}");
        assert_eq!(r["limits"]["cpu"], "2000m", "{init}");
        assert_eq!(r["limits"]["memory"], "1024Mi", "{init}");
    }
    let main = &pod["containers"][0]["resources"];
    assert_eq!(main["requests"]["cpu"], "2000m");
}
