//! The Kubernetes runtime driven by the real controller (real store, real bare repos)
//! against the in-process fake API server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use micro_kubernetes::{KubeRuntime, Settings};
use micro_reconciler::controller::PlatformAccess;
use micro_reconciler::queue::Reasons;
use micro_reconciler::testing::{fixture_with, fixture_with_access};
use micro_reconciler::{Controller, Outcome};
use micro_runtime::Runtime;
use micro_store::Trigger;
use micro_tenant::Repos;
use micro_testkit::commit_to_namespace as commit;
use micro_testkit::kubernetes::{FakeApiServer, Rollouts};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Platform {
    _dir: tempfile::TempDir,
    repos: Repos,
    controller: Arc<Controller>,
    runtime: Arc<KubeRuntime>,
    fake: FakeApiServer,
}

async fn platform(live: bool) -> Platform {
    platform_with(live, micro_reconciler::testing::access()).await
}

async fn platform_with(live: bool, access: PlatformAccess) -> Platform {
    let fake = FakeApiServer::default();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = Arc::new(KubeRuntime::start(fake.client(), Settings::default(), tx));
    let (dir, repos, controller) = fixture_with_access(&["a", "b"], runtime.clone(), access).await;
    if live {
        // As `micro server` runs it: events in, workers reconciling what is queued.
        tokio::spawn(controller.clone().consume_events(rx));
        controller.spawn_workers(2);
    }
    Platform {
        _dir: dir,
        repos,
        controller,
        runtime,
        fake,
    }
}

fn why(t: Trigger) -> Reasons {
    [t].into_iter().collect()
}

const THREE: &[(&str, &str)] = &[
    (
        "services/api/service.yaml",
        "run: python3 main.py\nport: 9000\nreplicas: 2\nresources: { cpu: 250m, memory: 128Mi }\n",
    ),
    ("services/api/main.py", "print(1)\n"),
    (
        "services/web/service.yaml",
        "image: nginx:1.27\nport: 80\nresources: { cpu: 250m, memory: 128Mi }\n",
    ),
    (
        "services/worker/service.yaml",
        "run: python3 worker.py\nbuild: pip install -r requirements.txt\nresources: { cpu: 250m, memory: 128Mi }\n",
    ),
];

/// Waits (polling, never asserting on time) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Until the runtime's caches show every service of `ns` as applied, without drift.
async fn settled(p: &Platform, ns: &str, services: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = p.runtime.observe(ns).await.unwrap();
        if seen.len() == services && seen.iter().all(|s| s.drift.is_none()) {
            return;
        }
        assert!(Instant::now() < deadline, "never settled: {seen:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the status row of a service to reach `state`, and returns it.
async fn status_row(
    p: &Platform,
    name: &str,
    state: micro_store::ServiceState,
) -> micro_store::ServiceStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = p.controller.store().service_statuses("a").await.unwrap();
        if let Some(r) = rows.iter().find(|r| r.name == name && r.status == state) {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Commits `files` to tenant a's branch and queues its reconcile, as a push would.
fn push(p: &Platform, files: &[(&str, &str)]) {
    commit(&p.repos, "a", files);
    p.controller.queue().trigger("a", Trigger::Push);
}

fn deployment(p: &Platform, ns: &str, name: &str) -> Option<Value> {
    p.fake
        .get("apps/v1", "Deployment", &format!("micro-{ns}"), name)
}

#[tokio::test]
async fn a_tenant_is_applied_and_a_resync_writes_nothing() {
    let p = platform(false).await;
    commit(&p.repos, "a", THREE);
    let out = p
        .controller
        .reconcile("a", &why(Trigger::Push))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Applied { .. }), "{out:?}");
    let ns = p
        .fake
        .get("v1", "Namespace", "", "micro-a")
        .expect("namespace");
    assert_eq!(ns["metadata"]["labels"]["micro/tenant"], "a");
    for (kind, api, name) in [
        (
            "NetworkPolicy",
            "networking.k8s.io/v1",
            "micro-tenant-isolation",
        ),
        ("ResourceQuota", "v1", "micro-quota"),
        ("LimitRange", "v1", "micro-limits"),
    ] {
        assert!(p.fake.get(api, kind, "micro-a", name).is_some(), "{kind}");
    }
    for name in ["api", "web", "worker"] {
        let d = deployment(&p, "a", name).expect(name);
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "micro"
        );
        assert!(p.fake.get("v1", "Service", "micro-a", name).is_some());
        assert!(
            p.fake
                .get("v1", "ServiceAccount", "micro-a", name)
                .is_some()
        );
        let secret = p
            .fake
            .get("v1", "Secret", "micro-a", &format!("{name}-env"))
            .unwrap();
        assert!(secret["data"]["MICRO_TOKEN"].is_string(), "{secret}");
    }
    assert_eq!(deployment(&p, "a", "api").unwrap()["spec"]["replicas"], 2);
    // Tenant b has nothing yet: its namespace is not even there.
    assert!(p.fake.get("v1", "Namespace", "", "micro-b").is_none());

    settled(&p, "a", 3).await;
    let writes = p.fake.calls().write;
    assert!(writes >= 4 + 3 * 4, "{writes}");
    // A resync, and a reconcile forced past the "nothing changed" shortcut, write nothing.
    p.controller
        .reconcile("a", &why(Trigger::Resync))
        .await
        .unwrap();
    p.controller
        .reconcile("a", &why(Trigger::Drift))
        .await
        .unwrap();
    assert_eq!(p.fake.calls().write, writes, "a no-change reconcile wrote");
    // Secrets are read in the tenant's namespace only: the server may not list them
    // cluster-wide (kube-system's among them).
    let reads = p.fake.reads();
    let secrets: Vec<&str> = reads
        .iter()
        .filter(|(plural, _)| plural == "secrets")
        .map(|(_, ns)| ns.as_str())
        .collect();
    assert_eq!(secrets, ["micro-a"], "{reads:?}");
}

#[tokio::test]
async fn a_removed_service_is_pruned_and_nothing_foreign_is_touched() {
    let p = platform(false).await;
    commit(&p.repos, "a", THREE);
    p.controller
        .reconcile("a", &why(Trigger::Push))
        .await
        .unwrap();
    settled(&p, "a", 3).await;
    // Someone else's objects in the tenant's namespace, one named like a service of ours.
    let foreign = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "notes", "namespace": "micro-a"}, "data": {"k": "v"}});
    p.fake.apply_as("someone", &foreign).unwrap();
    let theirs = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "worker2", "namespace": "micro-a"}});
    p.fake.apply_as("someone", &theirs).unwrap();

    let repo = git2::Repository::open_bare(p.repos.path("a")).unwrap();
    let head = repo.head().unwrap().peel_to_tree().unwrap();
    let mut services = git2::build::TreeUpdateBuilder::new();
    services.remove("services/worker/service.yaml");
    let tree = services.create_updated(&repo, &head).unwrap();
    let sig = git2::Signature::now("t", "t@t").unwrap();
    let parent = repo.head().unwrap().peel_to_commit().unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "kill worker",
        &repo.find_tree(tree).unwrap(),
        &[&parent],
    )
    .unwrap();
    p.controller
        .reconcile("a", &why(Trigger::Push))
        .await
        .unwrap();

    assert!(deployment(&p, "a", "worker").is_none());
    assert!(p.fake.get("v1", "Service", "micro-a", "worker").is_none());
    assert!(
        p.fake
            .get("v1", "Secret", "micro-a", "worker-env")
            .is_none()
    );
    assert!(
        p.fake
            .get("v1", "ServiceAccount", "micro-a", "worker")
            .is_none()
    );
    assert!(deployment(&p, "a", "api").is_some(), "the others stay");
    assert!(p.fake.get("v1", "ConfigMap", "micro-a", "notes").is_some());
    assert!(
        p.fake
            .get("v1", "ServiceAccount", "micro-a", "worker2")
            .is_some()
    );
}

#[tokio::test]
async fn what_is_changed_or_deleted_by_hand_is_put_back() {
    let p = platform(true).await;
    push(&p, THREE);
    until("applied", || deployment(&p, "a", "web").is_some()).await;
    settled(&p, "a", 3).await;

    p.fake
        .delete("apps/v1", "Deployment", "micro-a", "web")
        .unwrap();
    until("the deployment is back", || {
        deployment(&p, "a", "web").is_some()
    })
    .await;

    p.fake
        .edit("apps/v1", "Deployment", "micro-a", "api", |d| {
            d["spec"]["replicas"] = json!(7)
        })
        .unwrap();
    until("replicas are put back", || {
        deployment(&p, "a", "api").is_some_and(|d| d["spec"]["replicas"] == 2)
    })
    .await;

    p.fake.delete("v1", "Service", "micro-a", "worker").unwrap();
    until("the service is back", || {
        p.fake.get("v1", "Service", "micro-a", "worker").is_some()
    })
    .await;

    p.fake
        .edit(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "micro-a",
            "micro-tenant-isolation",
            |n| {
                n["spec"]["ingress"] = json!([{}]);
            },
        )
        .unwrap();
    until("the isolation is restored", || {
        p.fake
            .get(
                "networking.k8s.io/v1",
                "NetworkPolicy",
                "micro-a",
                "micro-tenant-isolation",
            )
            .is_some_and(|n| n["spec"]["ingress"][0]["from"].is_array())
    })
    .await;

    let detail = p.runtime.describe("a", "web").unwrap();
    assert!(
        detail
            .events
            .iter()
            .any(|e| e.what.contains("drift: its Deployment web was deleted")),
        "{:?}",
        detail.events
    );
}

#[tokio::test]
async fn a_new_config_version_rolls_the_deployment_and_status_follows() {
    let p = platform(true).await;
    push(
        &p,
        &[
            (
                "services/api/service.yaml",
                "run: python3 main.py\nconfig: [db.password]\nresources: { cpu: 250m, memory: 128Mi }\n",
            ),
            ("config.yaml", "db.password: { version: 1, secret: true }\n"),
        ],
    );
    until("applied", || deployment(&p, "a", "api").is_some()).await;
    let before = deployment(&p, "a", "api").unwrap();
    push(
        &p,
        &[("config.yaml", "db.password: { version: 2, secret: true }\n")],
    );
    until("rolled", || {
        deployment(&p, "a", "api").is_some_and(|d| {
            d["spec"]["template"]["metadata"]["annotations"]["micro/config-digest"]
                != before["spec"]["template"]["metadata"]["annotations"]["micro/config-digest"]
        })
    })
    .await;
    assert!(
        deployment(&p, "a", "api").unwrap()["metadata"]["generation"].as_i64()
            > before["metadata"]["generation"].as_i64()
    );
    // The pretend controller rolled it out: the status row says so.
    status_row(&p, "api", micro_store::ServiceState::Running).await;
}

#[tokio::test]
async fn a_rollout_that_never_gets_ready_shows_as_starting() {
    let p = platform(true).await;
    p.fake.rollouts(Rollouts::Hold);
    push(&p, &THREE[..2]);
    until("applied", || deployment(&p, "a", "api").is_some()).await;
    let r = status_row(&p, "api", micro_store::ServiceState::Starting).await;
    assert_eq!((r.ready, r.desired), (0, 2));
}

#[tokio::test]
async fn an_unreachable_cluster_fails_the_reconcile_saying_what_it_was_doing() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = Arc::new(KubeRuntime::start(client, Settings::default(), tx));
    let (_dir, repos, controller) = fixture_with(&["a"], runtime).await;
    commit(&repos, "a", THREE);
    let err = controller
        .reconcile("a", &why(Trigger::Push))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("API server has not answered"),
        "{err}"
    );
    let history = controller.store().history("a", 1).await.unwrap();
    assert_eq!(history[0].result, micro_store::ReconcileResult::Failed);
}

#[tokio::test]
async fn kubectl_lists_what_the_runtime_applied() {
    let p = platform(false).await;
    commit(&p.repos, "a", THREE);
    p.controller
        .reconcile("a", &why(Trigger::Push))
        .await
        .unwrap();
    let addr = p.fake.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, FakeApiServer::kubeconfig(addr)).unwrap();
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "get",
            "deployments",
            "-n",
            "micro-a",
            "-l",
            "app.kubernetes.io/managed-by=micro",
            "-o",
            "name",
        ])
        .env("HOME", dir.path())
        .output()
        .await
        .expect("kubectl");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "deployment.apps/api",
            "deployment.apps/web",
            "deployment.apps/worker"
        ]
    );
}

#[tokio::test]
async fn a_failed_rollout_says_why_and_deletes_nothing() {
    let p = platform(true).await;
    push(&p, &THREE[..2]);
    until("applied", || deployment(&p, "a", "api").is_some()).await;
    settled(&p, "a", 1).await;
    // The next revision's pods never get ready: its image cannot be pulled.
    p.fake.rollouts(Rollouts::Fail(
        "ReplicaSet \"api-2\" has timed out progressing: image cannot be pulled".into(),
    ));
    push(
        &p,
        &[(
            "services/api/service.yaml",
            "run: python3 main.py\nport: 9000\nreplicas: 3\nresources: { cpu: 250m, memory: 128Mi }\n",
        )],
    );
    let r = status_row(&p, "api", micro_store::ServiceState::Error).await;
    assert!(
        r.message.contains("cannot be pulled") && r.message.contains("still serves"),
        "{r:?}"
    );
    // What ran keeps its objects.
    assert!(deployment(&p, "a", "api").is_some());
    assert!(p.fake.get("v1", "Service", "micro-a", "api").is_some());
}

#[tokio::test]
async fn a_namespace_the_cluster_refuses_does_not_hold_up_the_others() {
    let p = platform(true).await;
    p.fake.refuse_writes("micro-a", true);
    commit(&p.repos, "a", THREE);
    commit(&p.repos, "b", THREE);
    p.controller.queue().trigger("a", Trigger::Push);
    p.controller.queue().trigger("b", Trigger::Push);
    until("b applied", || deployment(&p, "b", "worker").is_some()).await;
    assert!(deployment(&p, "a", "api").is_none());
    let history = p.controller.store().history("a", 1).await.unwrap();
    assert_eq!(
        history[0].result,
        micro_store::ReconcileResult::Failed,
        "{history:?}"
    );
    assert!(
        history[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("request timed out"),
        "{history:?}"
    );
    // Retried with backoff: once the cluster takes writes again, a converges.
    p.fake.refuse_writes("micro-a", false);
    until("a applied after a retry", || {
        deployment(&p, "a", "worker").is_some()
    })
    .await;
}

#[tokio::test]
async fn a_restarted_server_converges_without_touching_workloads() {
    let p = platform(false).await;
    commit(&p.repos, "a", THREE);
    p.controller
        .reconcile("a", &why(Trigger::Push))
        .await
        .unwrap();
    settled(&p, "a", 3).await;
    let before: Vec<Value> = ["api", "web", "worker"]
        .iter()
        .map(|n| deployment(&p, "a", n).unwrap())
        .collect();
    p.runtime.shutdown().await;
    let writes = p.fake.calls().write;

    // A new server process: new runtime and controller, the same store, repos and cluster.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = Arc::new(KubeRuntime::start(p.fake.client(), Settings::default(), tx));
    let controller = Controller::new(
        p.repos.clone(),
        p.controller.store().clone(),
        runtime,
        micro_reconciler::testing::access(),
    );
    controller
        .reconcile("a", &why(Trigger::Startup))
        .await
        .unwrap();
    assert_eq!(p.fake.calls().write, writes, "the restarted server wrote");
    for (old, name) in before.iter().zip(["api", "web", "worker"]) {
        let now = deployment(&p, "a", name).unwrap();
        assert_eq!(
            now["metadata"]["resourceVersion"], old["metadata"]["resourceVersion"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn logs_describe_and_crashes_come_from_the_pods() {
    let p = platform(true).await;
    push(&p, &THREE[..2]);
    until("two pods", || p.fake.pods("micro-a", "api").len() == 2).await;
    let pods = {
        let mut pods = p.fake.pods("micro-a", "api");
        pods.sort();
        pods
    };
    p.fake.log(
        "micro-a",
        &pods[0],
        "2026-11-30T10:00:01Z",
        "first from one",
    );
    p.fake
        .log("micro-a", &pods[1], "2026-11-30T10:00:02Z", "then from two");
    p.fake
        .log("micro-a", &pods[0], "2026-11-30T10:00:03Z", "last from one");
    let query = micro_runtime::LogQuery {
        tail: 2,
        ..Default::default()
    };
    let want = "2026-11-30T10:00:02Z [2] then from two\n2026-11-30T10:00:03Z [1] last from one\n";
    // The runtime lists pods from its watch-fed cache, which may lag the cluster a moment.
    let mut text = String::new();
    for _ in 0..200 {
        text = read_all(p.runtime.logs("a", "api", query).await.unwrap()).await;
        if text == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(text, want);
    assert!(matches!(
        p.runtime.logs("a", "nosuch", query).await,
        Err(micro_runtime::RuntimeError::NotFound(_))
    ));

    // Following: what the pods write from now on.
    let follow = micro_runtime::LogQuery {
        tail: 1,
        follow: true,
        ..Default::default()
    };
    let mut stream = p.runtime.logs("a", "api", follow).await.unwrap();
    use futures_util::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"2026-11-30T10:00:03Z [1] last from one\n");
    p.fake
        .log("micro-a", &pods[1], "2026-11-30T10:00:04Z", "news");
    let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&next[..], b"2026-11-30T10:00:04Z [2] news\n");

    let detail = p.runtime.describe("a", "api").unwrap();
    assert_eq!(detail.replicas.len(), 2);
    assert!(
        detail
            .replicas
            .iter()
            .all(|r| r.state == micro_runtime::WorkloadState::Running)
    );

    // A new revision whose process exits: crashed, saying how, while the old pods serve.
    p.fake.rollouts(Rollouts::Crash(3));
    push(&p, &[("services/api/main.py", "raise SystemExit(3)\n")]);
    let r = status_row(&p, "api", micro_store::ServiceState::CrashLoop).await;
    assert!(
        r.message.contains("exited with code 3") && r.message.contains("still serves"),
        "{r:?}"
    );
    let detail = p.runtime.describe("a", "api").unwrap();
    assert!(
        detail
            .replicas
            .iter()
            .any(|r| r.state == micro_runtime::WorkloadState::CrashLoop
                && r.last_exit.as_deref() == Some("exited with code 3 (Error)")),
        "{:?}",
        detail.replicas
    );
}

async fn read_all(stream: micro_runtime::LogStream) -> String {
    use futures_util::TryStreamExt;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

#[tokio::test]
async fn calls_go_through_the_service_proxy_and_never_climb_out_of_it() {
    use micro_runtime::CallRequest;
    let p = platform(false).await;
    commit(&p.repos, "a", THREE);
    commit(&p.repos, "b", THREE);
    p.controller
        .reconcile("a", &why(Trigger::Push))
        .await
        .unwrap();
    p.controller
        .reconcile("b", &why(Trigger::Push))
        .await
        .unwrap();
    settled(&p, "a", 3).await;
    assert!(
        p.runtime.forwards_calls(),
        "this test's server is outside any cluster"
    );
    let request = |path: &str| CallRequest {
        method: "POST".into(),
        path: path.into(),
        headers: vec![("x-trace".into(), b"1".to_vec())],
        body: bytes::Bytes::from_static(b"{\"name\": \"Ann\"}"),
    };
    let answer = p
        .runtime
        .call("a", "api", request("greet?loud=1"))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let body = read_all(answer.body).await;
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["namespace"], "micro-a");
    assert_eq!(echo["service"], "api");
    assert_eq!(echo["port"], "9000");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/greet");
    assert_eq!(echo["query"], "loud=1");
    assert_eq!(echo["body"], "{\"name\": \"Ann\"}");
    assert_eq!(echo["headers"]["x-trace"], "1");

    // A hostile tenant's path that the API server would clean into another tenant's
    // Secret never reaches it.
    let proxied = p.fake.calls().proxy;
    for path in [
        "../../../../micro-b/secrets/api-env",
        "..%2F..%2F..%2Fmicro-b%2Fsecrets%2Fapi-env",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/micro-b/secrets/api-env",
        "x/./../../../../micro-b/secrets/api-env",
    ] {
        match p.runtime.call("a", "api", request(path)).await {
            Err(micro_runtime::RuntimeError::Refused(why)) => {
                assert!(why.contains(".."), "{why}")
            }
            Err(e) => panic!("{path}: {e}"),
            Ok(a) => panic!("{path}: forwarded, {}", a.status),
        }
    }
    assert_eq!(p.fake.calls().proxy, proxied, "a climbing path was sent");
    // Another tenant's service is not there for this one.
    assert!(matches!(
        p.runtime.call("a", "nosuch", request("")).await,
        Err(micro_runtime::RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_restart_rolls_the_deployment_at_its_revision() {
    let p = platform(true).await;
    push(&p, &THREE[..2]);
    until("applied", || deployment(&p, "a", "api").is_some()).await;
    settled(&p, "a", 1).await;
    let before = deployment(&p, "a", "api").unwrap();
    assert!(p.runtime.restart("a", "api"));
    assert!(!p.runtime.restart("a", "nosuch"));
    p.controller.queue().trigger("a", Trigger::Restart);
    until("a new rollout", || {
        deployment(&p, "a", "api").is_some_and(|d| {
            d["metadata"]["generation"].as_i64() > before["metadata"]["generation"].as_i64()
        })
    })
    .await;
    let after = deployment(&p, "a", "api").unwrap();
    let annotation =
        |d: &Value, k: &str| d["spec"]["template"]["metadata"]["annotations"][k].clone();
    assert_eq!(
        annotation(&after, "micro/revision"),
        annotation(&before, "micro/revision")
    );
    assert_ne!(
        annotation(&after, "micro/deployment"),
        annotation(&before, "micro/deployment")
    );
}

#[tokio::test]
async fn a_renewed_identity_replaces_the_secret_files_without_a_rollout_or_drift() {
    let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let issuer = micro_reconciler::controller::IdentityIssuer {
        issue: Arc::new(move |ns: &str, svc: &str, _: &str| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Ok(micro_runtime::Pem {
                cert: format!("cert {n} of {ns}/{svc}"),
                key: micro_runtime::Secret::new(format!("key {n}")),
            })
        }),
        // Every live deployment is due at once.
        lifetime: Duration::ZERO,
        platform: "spiffe://test/platform".into(),
    };
    let p = platform_with(
        true,
        PlatformAccess {
            identity: Some(issuer),
            ..micro_reconciler::testing::access()
        },
    )
    .await;
    push(&p, &THREE[..2]);
    until("applied", || deployment(&p, "a", "api").is_some()).await;
    settled(&p, "a", 1).await;
    let secret = || {
        use base64::Engine;
        let s = p.fake.get("v1", "Secret", "micro-a", "api-env").unwrap();
        let field = |k: &str| {
            let b64 = s["data"][k].as_str().unwrap_or_default().to_owned();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap()
        };
        (field("MICRO_TLS_CERT_PEM"), field("MICRO_TOKEN"))
    };
    let (cert, token) = secret();
    assert_eq!(cert, "cert 1 of a/api");
    let generation = deployment(&p, "a", "api").unwrap()["metadata"]["generation"].clone();

    assert_eq!(p.controller.renew_identities().await.unwrap(), 1);
    let (cert, token_after) = secret();
    assert_eq!(cert, "cert 2 of a/api");
    assert_eq!(token_after, token, "the rest of the Secret stays");
    // Our own apply is not drift, and the pods are not rolled.
    p.controller.queue().trigger("a", Trigger::Resync);
    settled(&p, "a", 1).await;
    let writes = p.fake.calls().write;
    p.controller
        .reconcile("a", &why(Trigger::Drift))
        .await
        .unwrap();
    assert_eq!(p.fake.calls().write, writes, "a renewal looked like drift");
    assert_eq!(
        deployment(&p, "a", "api").unwrap()["metadata"]["generation"],
        generation
    );

    // A hand that swaps the certificate in the Secret is drift, put back by a rollout.
    let mut edited = p.fake.get("v1", "Secret", "micro-a", "api-env").unwrap();
    edited["data"]["MICRO_TLS_CERT_PEM"] = json!("Zm9yZ2Vk");
    p.fake.apply_as("someone", &edited).unwrap();
    assert_eq!(secret().0, "forged");
    // Repaired by a new deployment, with its own certificate.
    until("repaired", || secret().0 == "cert 3 of a/api").await;
}

#[tokio::test]
async fn a_deleted_tenant_takes_its_namespace_along_and_nothing_else() {
    let p = platform(true).await;
    push(&p, THREE);
    commit(&p.repos, "b", THREE);
    p.controller.queue().trigger("b", Trigger::Push);
    settled(&p, "a", 3).await;
    settled(&p, "b", 3).await;
    // A namespace named like a tenant's but made by someone else.
    let foreign = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "micro-c"}});
    p.fake.apply_as("someone", &foreign).unwrap();

    let store = p.controller.store();
    assert!(matches!(
        store.delete_namespace("a").await.unwrap(),
        micro_store::Deletion::Deleted { .. }
    ));
    p.repos.remove("a").unwrap();
    p.controller.queue().trigger("a", Trigger::Deleted);
    p.controller.queue().trigger("c", Trigger::Deleted);
    until("tenant a's namespace to go", || {
        p.fake.get("v1", "Namespace", "", "micro-a").is_none()
    })
    .await;
    assert!(deployment(&p, "a", "api").is_none());
    // Its going is not drift to repair: a resync brings nothing back.
    p.controller.queue().trigger("a", Trigger::Resync);
    p.controller.queue().trigger("b", Trigger::Resync);
    settled(&p, "b", 3).await;
    assert!(p.fake.get("v1", "Namespace", "", "micro-a").is_none());
    assert!(p.runtime.observe("a").await.unwrap().is_empty());
    assert!(p.fake.get("v1", "Namespace", "", "micro-b").is_some());
    assert!(p.fake.get("v1", "Namespace", "", "micro-c").is_some());
}

#[tokio::test]
async fn a_deletion_cut_short_is_finished_on_the_cluster_too() {
    let p = platform(true).await;
    push(&p, THREE);
    settled(&p, "a", 3).await;
    // The store's deletion happened; the server stopped before the repo and the
    // cluster's objects went. On start, the deletion on record is resumed.
    let store = p.controller.store();
    store.delete_namespace("a").await.unwrap();
    assert!(p.repos.path("a").exists());
    p.controller.resume_deletions().await.unwrap();
    until("tenant a's namespace to go", || {
        p.fake.get("v1", "Namespace", "", "micro-a").is_none()
    })
    .await;
    // The record goes last, once the teardown is done.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store.pending_deletions().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the deletion stayed on record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!p.repos.path("a").exists());
    assert!(deployment(&p, "a", "api").is_none());
}
