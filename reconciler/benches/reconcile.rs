//! Benchmarks of the reconciler's hot paths. Prints figures; asserts nothing.
//!
//! 1. plan for one namespace with 10,000 services (target: median under 50 ms)
//! 2. no-change resync of 1,000 namespaces × 10 services through the real controller,
//!    real bare repos and a real SQLite store (target: the whole pass under 100 ms)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use git2::{Repository, Signature};
use micro_reconciler::queue::Reasons;
use micro_reconciler::{Controller, Outcome, plan};
use micro_runtime::memory::MemoryRuntime;
use micro_store::Store;
use micro_store::Trigger;
use micro_tenant::Repos;
use micro_tenant::desired::{DesiredNamespace, DesiredService, ObservedService, ServiceModel};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    bench_plan();
    rt.block_on(bench_resync());
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    (p(0.5), p(0.9), ms(*samples.last().unwrap()))
}

fn model(i: usize) -> ServiceModel {
    ServiceModel {
        code: format!("{i:020x}"),
        run: Some("python3 -u main.py".into()),
        replicas: 1,
        env: [("GREETING".to_owned(), "hello".to_owned())].into(),
        config: [("db.password".to_owned(), 3)].into(),
        ..ServiceModel::default()
    }
}

fn bench_plan() {
    const N: usize = 10_000;
    let services = (0..N)
        .map(|i| {
            let name = format!("svc-{i:05}");
            let s = DesiredService {
                name: name.clone(),
                model: model(i),
                tree: format!("{i:040x}"),
                revision: "r2".into(),
            };
            (name, s)
        })
        .collect();
    let desired = DesiredNamespace {
        namespace: "big".into(),
        revision: "r2".into(),
        services,
    };
    // What runs: the same, but 1% at another replica count and 1% gone.
    let observed: Vec<ObservedService> = (0..N)
        .filter(|i| i % 100 != 1)
        .map(|i| {
            let mut m = model(i);
            if i % 100 == 0 {
                m.replicas = 2;
            }
            ObservedService {
                name: format!("svc-{i:05}"),
                model: m,
                revision: "r1".into(),
                drift: None,
            }
        })
        .collect();
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..31 {
        let t = Instant::now();
        let p = plan::plan(&desired, &observed);
        samples.push(t.elapsed());
        last = Some(p.summary());
    }
    let (p50, p90, max) = stats(samples);
    println!(
        "bench 1  plan, 1 namespace x {N} services ({}): median {p50:.2} ms, p90 {p90:.2} ms, max {max:.2} ms (target median < 50 ms)",
        last.unwrap()
    );
}

fn commit_services(repo: &Repository, count: usize) {
    let head = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut services = repo.treebuilder(None).unwrap();
    for s in 0..count {
        let mut folder = repo.treebuilder(None).unwrap();
        // Small enough that ten fit the default namespace quota (8 CPUs, 8 GiB).
        let spec = format!(
            "run: python3 -u main.py\nenv:\n  GREETING: hello {s}\nresources: {{ cpu: 100m, memory: 64Mi }}\n"
        );
        folder
            .insert(
                "service.yaml",
                repo.blob(spec.as_bytes()).unwrap(),
                0o100644,
            )
            .unwrap();
        folder
            .insert("main.py", repo.blob(b"print('hi')\n").unwrap(), 0o100644)
            .unwrap();
        services
            .insert(format!("svc-{s}"), folder.write().unwrap(), 0o040000)
            .unwrap();
    }
    let mut root = repo.treebuilder(Some(&head.tree().unwrap())).unwrap();
    root.insert("services", services.write().unwrap(), 0o040000)
        .unwrap();
    let tree = repo.find_tree(root.write().unwrap()).unwrap();
    let sig = Signature::now("bench", "bench@localhost").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "services",
        &tree,
        &[&head],
    )
    .unwrap();
}

async fn bench_resync() {
    const NAMESPACES: usize = 1_000;
    const SERVICES: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("store.db"))
        .await
        .unwrap();
    let repos = Repos::new(dir.path().join("repos"));
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("ns-{i:04}")).collect();
    for ns in &names {
        repos.create(ns, Path::new("/bin/true")).unwrap();
        store.create_namespace(ns).await.unwrap();
        commit_services(&Repository::open_bare(repos.path(ns)).unwrap(), SERVICES);
    }
    let runtime = Arc::new(MemoryRuntime::default());
    let access = micro_reconciler::controller::PlatformAccess {
        api_url: "https://127.0.0.1:8081".into(),
        identity: None,
    };
    let controller = Controller::new(repos, store, runtime, access);
    let startup: Reasons = [Trigger::Startup].into();
    let resync: Reasons = [Trigger::Resync].into();
    let t = Instant::now();
    for ns in &names {
        let out = controller.reconcile(ns, &startup).await.unwrap();
        assert!(matches!(out, Outcome::Applied { .. }), "{out:?}");
    }
    let first = t.elapsed();
    let mut samples = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for ns in &names {
            let out = controller.reconcile(ns, &resync).await.unwrap();
            assert!(matches!(out, Outcome::Unchanged));
        }
        samples.push(t.elapsed());
    }
    let (p50, _, max) = stats(samples);
    println!(
        "bench 2  no-change resync, {NAMESPACES} namespaces x {SERVICES} services: median pass {p50:.1} ms, max {max:.1} ms (target < 100 ms); first (applying) pass {:.0} ms",
        first.as_secs_f64() * 1000.0
    );
}
