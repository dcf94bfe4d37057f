//! `micro server --runtime kubernetes`, the real binary, against the fake API server
//! served on a port (as a cluster would be, through a kubeconfig): the walkthrough's
//! verbs work, and a tenant's services land in its own namespace.

use crate::harness::Platform;
use micro_testkit::kubernetes::FakeApiServer;
use serde_json::Value;

const HELLO: &str = "import http.server\nhttp.server.HTTPServer(('', 8080), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

/// The platform on the fake API server (served on a port, reached through a kubeconfig
/// as a cluster would be), with `env` on top.
struct OnCluster {
    // Dropped first: the server stops before the fake it talks to.
    platform: Platform,
    fake: FakeApiServer,
    _rt: tokio::runtime::Runtime,
    _kubeconfig: tempfile::TempDir,
}

fn on_cluster(env: &[(&str, &str)]) -> OnCluster {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = FakeApiServer::default();
    let addr = rt.block_on(fake.serve()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, FakeApiServer::kubeconfig(addr)).unwrap();
    let mut all = vec![
        ("MICRO_RUNTIME", "kubernetes"),
        ("MICRO_KUBECONFIG", kubeconfig.to_str().unwrap()),
        ("MICRO_KUBE_CONTEXT", "fake"),
    ];
    all.extend_from_slice(env);
    OnCluster {
        platform: Platform::start_with(&all),
        fake,
        _rt: rt,
        _kubeconfig: dir,
    }
}

#[test]
fn the_walkthrough_on_a_cluster() {
    let c = on_cluster(&[]);
    let (p, fake) = (&c.platform, &c.fake);
    // The first start's namespace is there, isolated.
    p.wait_for("the default tenant's namespace", || {
        fake.get(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "micro-default",
            "micro-tenant-isolation",
        )
        .is_some()
    });

    p.write_service(
        "hello",
        &[
            (
                "service.yaml",
                "run: python3 main.py\nport: 8080\nreplicas: 2\n",
            ),
            ("main.py", HELLO),
        ],
    );
    p.ok(&["run", "./hello", "--wait"]);
    let d = fake
        .get("apps/v1", "Deployment", "micro-default", "hello")
        .expect("the Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let status = p.service(None, "hello").unwrap();
    assert_eq!(status["status"], "running", "{status}");

    // Logs come from the pods.
    let mut pods = fake.pods("micro-default", "hello");
    pods.sort();
    fake.log(
        "micro-default",
        &pods[0],
        "2026-11-30T10:00:00Z",
        "Serving HTTP on port 8080",
    );
    let logs = p.ok(&["logs", "hello"]);
    assert!(logs.contains("[1] Serving HTTP on port 8080"), "{logs}");
    // What the platform applied (the CA, the identity) is not mistaken for a hand's edit:
    // no redeploy loop.
    let log = p.server_log();
    assert!(!log.contains("service=\"hello\" what=\"its"), "{log}");

    // Calls go through the API server's service proxy (this server is outside the cluster).
    let echo: Value = serde_json::from_str(&p.ok(&["call", "hello", "/greet?x=1"])).unwrap();
    assert_eq!(
        (echo["service"].as_str(), echo["path"].as_str()),
        (Some("hello"), Some("/greet"))
    );
    // A path the API server would decode and clean into another tenant's Secret is
    // refused here (plain `../` never leaves the CLI: URLs drop dot segments).
    let proxied = fake.calls().proxy;
    let err = p.fails(&[
        "call",
        "hello",
        "/..%2F..%2F..%2F..%2Fmicro-other%2Fsecrets%2Fx-env",
    ]);
    assert!(err.contains("encoded separators"), "{err}");
    assert_eq!(fake.calls().proxy, proxied);

    // describe shows the replicas, manifests what was applied.
    let described: Value =
        serde_json::from_str(&p.ok(&["describe", "hello", "-o", "json"])).unwrap();
    assert_eq!(
        described["replicas"].as_array().unwrap().len(),
        2,
        "{described}"
    );
    let listed: Value =
        serde_json::from_str(&p.ok(&["manifests", "--service", "hello", "-o", "json"])).unwrap();
    let rendered = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap()
        .clone();
    assert_eq!(
        rendered["spec"]["template"]["spec"]["containers"][0]["image"],
        d["spec"]["template"]["spec"]["containers"][0]["image"]
    );

    // kill prunes what was ours.
    p.ok(&["kill", "hello"]);
    p.wait_for("the Deployment to go", || {
        fake.get("apps/v1", "Deployment", "micro-default", "hello")
            .is_none()
    });
    assert!(
        fake.get("v1", "Secret", "micro-default", "hello-env")
            .is_none()
    );
}

#[test]
fn a_cluster_that_cannot_be_named_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        FakeApiServer::kubeconfig("127.0.0.1:1".parse().unwrap()),
    )
    .unwrap();
    for (context, config, said) in [
        ("nope", kubeconfig.clone(), "nope"),
        ("fake", dir.path().join("missing"), "missing"),
    ] {
        let out = std::process::Command::new(crate::harness::BIN)
            .args(["server", "--address", "127.0.0.1:0"])
            .env("MICRO_HOME", dir.path().join("home"))
            .env("MICRO_DATA_DIR", dir.path().join("data"))
            .env("MICRO_RUNTIME", "kubernetes")
            .env("MICRO_KUBECONFIG", &config)
            .env("MICRO_KUBE_CONTEXT", context)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: ") && last.contains(said), "{err}");
    }
}

#[test]
fn a_public_service_gets_an_ingress_on_a_cluster_and_loses_it_when_private() {
    let c = on_cluster(&[
        ("MICRO_APPS_DOMAIN", "apps.example.com"),
        ("MICRO_INGRESS_CLASS", "nginx"),
        ("MICRO_CLUSTER_ISSUER", "letsencrypt"),
    ]);
    let (p, fake) = (&c.platform, &c.fake);
    // The namespace lets the ingress controller reach its public pods, and only those.
    p.wait_for("the namespace's public policy", || {
        fake.get(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "micro-default",
            "micro-public-ingress",
        )
        .is_some()
    });
    p.write_service(
        "site",
        &[
            (
                "service.yaml",
                "run: python3 main.py\nport: 8080\npublic: true\n",
            ),
            ("main.py", HELLO),
        ],
    );
    p.ok(&["run", "./site", "--wait"]);
    let ingress = fake
        .get("networking.k8s.io/v1", "Ingress", "micro-default", "site")
        .expect("the Ingress");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "site-default.apps.example.com"
    );
    assert_eq!(
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    let pods = fake
        .get("apps/v1", "Deployment", "micro-default", "site")
        .unwrap();
    assert_eq!(
        pods["spec"]["template"]["metadata"]["labels"]["micro/public"],
        "true"
    );
    assert_eq!(
        p.service(None, "site").unwrap()["url"],
        "https://site-default.apps.example.com"
    );
    // Custom domains are the platform's own edge's, not a cluster's yet: said at once.
    let said = p.fails(&["domains", "add", "www.example.com", "--service", "site"]);
    assert!(said.contains("cluster"), "{said}");

    // Made private by a push, it keeps no route in.
    p.write_service(
        "site",
        &[(
            "service.yaml",
            "run: python3 main.py\nport: 8080\npublic: false\n",
        )],
    );
    p.ok(&["run", "./site", "--wait"]);
    p.wait_for("the Ingress to go", || {
        fake.get("networking.k8s.io/v1", "Ingress", "micro-default", "site")
            .is_none()
    });
}

#[test]
fn with_a_gateway_a_public_service_gets_an_http_route() {
    let c = on_cluster(&[
        ("MICRO_APPS_DOMAIN", "apps.example.com"),
        ("MICRO_GATEWAY", "edge/public"),
    ]);
    let (p, fake) = (&c.platform, &c.fake);
    p.write_service(
        "site",
        &[
            (
                "service.yaml",
                "run: python3 main.py\nport: 8080\npublic: true\n",
            ),
            ("main.py", HELLO),
        ],
    );
    p.ok(&["run", "./site", "--wait"]);
    let route = fake
        .get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "micro-default",
            "site",
        )
        .expect("the HTTPRoute");
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "public");
    assert_eq!(
        route["spec"]["hostnames"][0],
        "site-default.apps.example.com"
    );
    assert!(
        fake.get("networking.k8s.io/v1", "Ingress", "micro-default", "site")
            .is_none()
    );
    p.ok(&["kill", "site"]);
    p.wait_for("the HTTPRoute to go", || {
        fake.get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "micro-default",
            "site",
        )
        .is_none()
    });
}
