//! The runtime against a cluster reached through a kubeconfig, as `micro server` reaches
//! one: a tenant applied and running, probes and an Ingress rendered, an identity renewed
//! without a rollout, drift repaired, a restart that writes nothing, a service pruned,
//! the tenant removed; on a real cluster
//! also that its NetworkPolicy holds (a tenant's pod reaches neither another tenant nor
//! the metadata address).
//!
//! `MICRO_TEST_KUBECONFIG=path cargo test -p micro-kubernetes --test cluster -- --ignored`
//! runs it against that cluster (kind or any other; README, "A real cluster"). Without
//! the variable the ignored test says so and passes. The same scenario runs in every
//! `cargo test` against the fake API server served on a port, through a kubeconfig.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use micro_kubernetes::{KubeRuntime, Settings};
use micro_runtime::Runtime;
use micro_store::{ServiceState, Trigger};
use micro_testkit::kubernetes::FakeApiServer;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a real cluster may take to pull an image and start pods.
const PATIENCE: Duration = Duration::from_secs(300);

/// A service a cluster can run as it is: Python's own HTTP server from a public image.
fn service(image: &str) -> String {
    format!(
        "image: {image}\nrun: python3 -m http.server $PORT\nport: 8080\nreadiness: {{ path: / }}\nliveness: {{ path: / }}\npublic: true\nresources: {{ cpu: 100m, memory: 64Mi }}\n"
    )
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn settings() -> Settings {
    Settings {
        apps_domain: Some("apps.test".into()),
        ingress_class: Some("nginx".into()),
        ..Settings::default()
    }
}

/// The whole scenario, on the cluster `client` reaches. `real`: pods really run there.
async fn scenario(client: kube::Client, real: bool) {
    let image = std::env::var("MICRO_TEST_IMAGE").unwrap_or_else(|_| "python:3.12-slim".into());
    // Names of our own, so a shared cluster's other tenants are never touched.
    let suffix: String = format!("{:06x}", rand_suffix());
    let (a, b) = (format!("ct{suffix}a"), format!("ct{suffix}b"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = Arc::new(KubeRuntime::start(client.clone(), settings(), tx));
    // Identities due at once, so a renewal can be asked for.
    let issued = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let issuer = micro_reconciler::controller::IdentityIssuer {
        issue: Arc::new(move |ns: &str, svc: &str, _: &str| {
            let n = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Ok(micro_runtime::Pem {
                cert: format!("cert {n} of {ns}/{svc}"),
                key: micro_runtime::Secret::new(format!("key {n}")),
            })
        }),
        lifetime: Duration::ZERO,
        platform: "spiffe://test/platform".into(),
    };
    let access = micro_reconciler::controller::PlatformAccess {
        identity: Some(issuer),
        ..micro_reconciler::testing::access()
    };
    let (_dir, repos, controller) = micro_reconciler::testing::fixture_with_access(
        &[a.as_str(), b.as_str()],
        runtime.clone(),
        access,
    )
    .await;
    tokio::spawn(controller.clone().consume_events(rx));
    controller.spawn_workers(2);
    for ns in [&a, &b] {
        micro_testkit::commit_to_namespace(
            &repos,
            ns,
            &[("services/web/service.yaml", &service(&image))],
        );
        controller.queue().trigger(ns, Trigger::Push);
    }

    // Applied and running, with its probes and its Ingress.
    let store = controller.store().clone();
    until("web to run in both tenants", || {
        let store = store.clone();
        let (a, b) = (a.clone(), b.clone());
        async move {
            let mut ok = true;
            for ns in [&a, &b] {
                let rows = store.service_statuses(ns).await.unwrap();
                ok &= rows
                    .iter()
                    .any(|r| r.name == "web" && r.status == ServiceState::Running);
            }
            ok
        }
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &format!("micro-{a}"));
    let web = deployments.get("web").await.unwrap();
    let container = &web
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert!(container.readiness_probe.is_some() && container.liveness_probe.is_some());
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &format!("micro-{a}"));
    let ingress = ingresses.get("web").await.unwrap();
    let host = ingress.spec.unwrap().rules.unwrap()[0]
        .host
        .clone()
        .unwrap();
    assert_eq!(host, format!("web-{a}.apps.test"));

    // An identity renewed: the Secret's certificate replaced, the pods not rolled.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &format!("micro-{a}"));
    let cert = |s: k8s_openapi::api::core::v1::Secret| {
        s.data
            .and_then(|d| d.get("MICRO_TLS_CERT_PEM").map(|b| b.0.clone()))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let first = cert(secrets.get("web-env").await.unwrap());
    let generation = web.metadata.generation;
    assert!(controller.renew_identities().await.unwrap() >= 1);
    until("the renewed certificate in the Secret", || {
        let secrets = secrets.clone();
        let first = first.clone();
        async move { cert(secrets.get("web-env").await.unwrap()) != first }
    })
    .await;
    assert_eq!(
        deployments.get("web").await.unwrap().metadata.generation,
        generation,
        "a renewal rolled the pods"
    );

    // Deleted by hand: put back.
    let uid = web.metadata.uid.clone().unwrap();
    deployments
        .delete("web", &Default::default())
        .await
        .unwrap();
    until("the deleted Deployment to be put back", || {
        let deployments = deployments.clone();
        let uid = uid.clone();
        async move {
            deployments
                .get_opt("web")
                .await
                .unwrap()
                .and_then(|d| d.metadata.uid)
                .is_some_and(|u| u != uid)
        }
    })
    .await;

    // A restarted server (a new runtime and controller on the same cluster, store and
    // repos) adopts what runs: the same Deployment, not even written again.
    let before = deployments.get("web").await.unwrap().metadata;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let again = Arc::new(KubeRuntime::start(client.clone(), settings(), tx));
    let restarted = micro_reconciler::Controller::new(
        repos.clone(),
        store.clone(),
        again,
        micro_reconciler::testing::access(),
    );
    let why: micro_reconciler::queue::Reasons = [Trigger::Restart].into_iter().collect();
    let out = restarted.reconcile(&a, &why).await.unwrap();
    assert!(
        matches!(out, micro_reconciler::Outcome::Applied { .. }),
        "{out:?}"
    );
    let after = deployments.get("web").await.unwrap().metadata;
    assert_eq!(
        (after.uid, after.resource_version),
        (before.uid, before.resource_version),
        "a restart wrote the Deployment again"
    );

    if real {
        network_policy_holds(&a, &b).await;
    }

    // Removed from the branch: pruned. The tenant deleted: its namespace goes.
    remove_service(&repos, &a);
    controller.queue().trigger(&a, Trigger::Push);
    until("web to be pruned", || {
        let deployments = deployments.clone();
        async move { deployments.get_opt("web").await.unwrap().is_none() }
    })
    .await;
    for ns in [&a, &b] {
        runtime.delete_namespace(ns).await.unwrap();
    }
}

/// Drops `services/web` from tenant `ns`'s branch.
fn remove_service(repos: &micro_tenant::Repos, ns: &str) {
    let repo = git2::Repository::open_bare(repos.path(ns)).unwrap();
    let head = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut tree = repo.treebuilder(Some(&head.tree().unwrap())).unwrap();
    tree.remove("services").unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "kill web",
        &tree,
        &[&head],
    )
    .unwrap();
}

/// From a pod in tenant `a`'s namespace: `b`'s service and the metadata address are out
/// of reach, `a`'s own is not (`kubectl run` with the kubeconfig under test).
async fn network_policy_holds(a: &str, b: &str) {
    let kubeconfig = std::env::var("MICRO_TEST_KUBECONFIG").unwrap();
    let try_from_a = |url: String| {
        let kubeconfig = kubeconfig.clone();
        let ns = format!("micro-{a}");
        async move {
            let overrides = r#"{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":10001,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"probe","image":"python:3.12-slim","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}"#;
            let name = format!("probe{}", rand_suffix());
            let out = tokio::process::Command::new("kubectl")
                .args(["--kubeconfig", &kubeconfig, "-n", &ns, "run", &name, "--rm", "-i"])
                .args(["--restart=Never", "--image=python:3.12-slim", "--overrides", overrides])
                .args(["--command", "--", "python3", "-c"])
                .arg(format!(
                    "import urllib.request\ntry:\n    urllib.request.urlopen('{url}', timeout=5); print('reached')\nexcept Exception as e:\n    print('refused', e)\n"
                ))
                .output()
                .await
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let own = try_from_a(format!("http://web.micro-{a}.svc.cluster.local:8080/")).await;
    assert!(own.contains("reached"), "its own service: {own}");
    let other = try_from_a(format!("http://web.micro-{b}.svc.cluster.local:8080/")).await;
    assert!(
        other.contains("refused"),
        "another tenant's service: {other}"
    );
    let metadata = try_from_a("http://169.254.169.254/".into()).await;
    assert!(
        metadata.contains("refused"),
        "the metadata address: {metadata}"
    );
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos ^ std::process::id()) & 0xff_ffff
}

#[tokio::test]
#[ignore = "needs a cluster: MICRO_TEST_KUBECONFIG=path (README, \"A real cluster\")"]
async fn on_the_cluster_of_micro_test_kubeconfig() {
    let Some(path) = std::env::var_os("MICRO_TEST_KUBECONFIG") else {
        eprintln!("skipped: MICRO_TEST_KUBECONFIG is not set");
        return;
    };
    let client = micro_kubernetes::connect(Some(Path::new(&path)), None)
        .await
        .expect("the cluster of MICRO_TEST_KUBECONFIG");
    scenario(client, true).await;
}

/// The same scenario, through a kubeconfig, against the fake served on a port: what the
/// suite asks of a cluster holds for the fake the rest of the tests trust.
#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_suite_holds_on_the_fake_through_a_kubeconfig() {
    let fake = FakeApiServer::default();
    let addr = fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, FakeApiServer::kubeconfig(addr)).unwrap();
    let client = micro_kubernetes::connect(Some(&kubeconfig), None)
        .await
        .unwrap();
    scenario(client, false).await;
}
