//! Bench 8: 100 namespaces × 10 services applied by the real controller and the
//! Kubernetes runtime into the in-process fake API server; then a no-change resync.
//! Prints wall times and API calls (`cargo bench -p micro-kubernetes`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use micro_kubernetes::{KubeRuntime, Settings};
use micro_reconciler::queue::Reasons;
use micro_reconciler::testing::fixture_with;
use micro_runtime::Runtime;
use micro_store::Trigger;
use micro_testkit::commit_to_namespace as commit;
use micro_testkit::kubernetes::FakeApiServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAMESPACES: usize = 100;
const SERVICES: usize = 10;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

async fn bench() {
    let fake = FakeApiServer::default();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = Arc::new(KubeRuntime::start(fake.client(), Settings::default(), tx));
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("ns{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_dir, repos, controller) = fixture_with(&refs, runtime.clone()).await;
    let files: Vec<(String, String)> = (0..SERVICES)
        .flat_map(|i| {
            [
                (
                    format!("services/s{i}/service.yaml"),
                    "run: python3 main.py\nresources: { cpu: 100m, memory: 64Mi }\n".to_owned(),
                ),
                (format!("services/s{i}/main.py"), format!("print({i})\n")),
            ]
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    for ns in &names {
        commit(&repos, ns, &files);
    }
    let why = |t: Trigger| -> Reasons { [t].into_iter().collect() };

    let before = fake.calls();
    let t = Instant::now();
    run_all(&controller, &names, why(Trigger::Push)).await;
    let applied = t.elapsed();
    let after = fake.calls();
    println!(
        "bench 8  apply {} services ({NAMESPACES} namespaces x {SERVICES}) into the fake API server: {:.2} s, {} writes, {} gets, {} lists, {} watches",
        NAMESPACES * SERVICES,
        applied.as_secs_f64(),
        after.write - before.write,
        after.get - before.get,
        after.list - before.list,
        after.watch - before.watch,
    );

    // Until the caches have seen every object (what a resync compares against).
    let deadline = Instant::now() + Duration::from_secs(60);
    for ns in &names {
        loop {
            let seen = runtime.observe(ns).await.unwrap();
            if seen.len() == SERVICES && seen.iter().all(|s| s.drift.is_none()) {
                break;
            }
            assert!(Instant::now() < deadline, "never settled: {ns}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    for (label, trigger) in [
        ("resync", Trigger::Resync),
        ("forced (drift check)", Trigger::Drift),
    ] {
        let before = fake.calls();
        let t = Instant::now();
        run_all(&controller, &names, why(trigger)).await;
        let took = t.elapsed();
        let after = fake.calls();
        println!(
            "bench 8  no-change {label} of the same: {:.1} ms, {} writes, {} API calls in all (target 0 writes)",
            took.as_secs_f64() * 1000.0,
            after.write - before.write,
            (after.write + after.get + after.list + after.watch)
                - (before.write + before.get + before.list + before.watch),
        );
    }
}

/// Every namespace reconciled, four at a time (the server's default concurrency).
async fn run_all(controller: &Arc<micro_reconciler::Controller>, names: &[String], why: Reasons) {
    let mut queue = names.to_vec();
    let mut running = tokio::task::JoinSet::new();
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < 4
            && let Some(ns) = queue.pop()
        {
            let (c, why) = (controller.clone(), why.clone());
            running.spawn(async move { c.reconcile(&ns, &why).await.unwrap() });
        }
        running.join_next().await.unwrap().unwrap();
    }
}
