//! The worker pool: bounded concurrency across namespaces, never two reconciles of one
//! namespace at once, and a failed reconcile retried with backoff until it succeeds.

use super::fixtures::{commit, fixture_with};
use super::*;
use micro_runtime::LogStream;
use micro_runtime::memory::MemoryRuntime;
use micro_tenant::desired::{DesiredService, ObservedService};
use std::collections::HashSet;

/// A runtime whose applies take a while and count who is inside at once; the first
/// apply in each namespace of `fail_once` fails.
#[derive(Default)]
struct Slow {
    inner: MemoryRuntime,
    inside: Mutex<(u32, HashMap<String, u32>)>,
    most: Mutex<(u32, u32)>,
    fail_once: Mutex<HashSet<String>>,
    /// Set once two applies overlapped; until then an apply waits for company, so a
    /// loaded machine cannot hide the concurrency the workers allow.
    paired: std::sync::atomic::AtomicBool,
}

impl Slow {
    fn enter(&self, ns: &str) {
        let mut inside = self.inside.lock().unwrap();
        inside.0 += 1;
        let here = inside.1.entry(ns.to_owned()).or_default();
        *here += 1;
        let here = *here;
        let mut most = self.most.lock().unwrap();
        *most = (most.0.max(inside.0), most.1.max(here));
    }

    fn leave(&self, ns: &str) {
        let mut inside = self.inside.lock().unwrap();
        inside.0 -= 1;
        *inside.1.get_mut(ns).unwrap() -= 1;
    }
}

#[async_trait::async_trait]
impl Runtime for Slow {
    async fn observe(&self, namespace: &str) -> Result<Vec<ObservedService>, RuntimeError> {
        self.inner.observe(namespace).await
    }
    fn generation(&self, namespace: &str) -> u64 {
        self.inner.generation(namespace)
    }
    async fn apply(
        &self,
        namespace: &str,
        artifact: &micro_runtime::Artifact,
        service: &DesiredService,
        deployment: &micro_runtime::Deployment,
    ) -> Result<(), RuntimeError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.enter(namespace);
        let lonely_until = Instant::now() + Duration::from_secs(5);
        while !self.paired.load(SeqCst) && Instant::now() < lonely_until {
            if self.inside.lock().unwrap().0 >= 2 {
                self.paired.store(true, SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.leave(namespace);
        if self.fail_once.lock().unwrap().remove(namespace) {
            return Err(std::io::Error::other("the node is unreachable").into());
        }
        self.inner
            .apply(namespace, artifact, service, deployment)
            .await
    }
    async fn delete(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
        self.inner.delete(namespace, name).await
    }
    fn endpoints(&self, namespace: &str, name: &str) -> Vec<String> {
        self.inner.endpoints(namespace, name)
    }
    async fn logs(
        &self,
        namespace: &str,
        name: &str,
        query: micro_runtime::LogQuery,
    ) -> Result<LogStream, RuntimeError> {
        self.inner.logs(namespace, name, query).await
    }
    async fn shutdown(&self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_bound_concurrency_serialise_each_namespace_and_retry_failures() {
    let names: Vec<String> = (0..6).map(|i| format!("ns{i}")).collect();
    let namespaces: Vec<&str> = names.iter().map(String::as_str).collect();
    let runtime = Arc::new(Slow::default());
    runtime.fail_once.lock().unwrap().insert("ns0".into());
    let (_dir, repos, c) = fixture_with(&namespaces, runtime.clone()).await;
    let workers = c.spawn_workers(2);

    // Three rounds of pushes to every namespace, arriving while earlier ones run.
    let mut heads = HashMap::new();
    for round in 1..=3 {
        for ns in &namespaces {
            let spec = format!("run: x\nreplicas: {round}\n");
            let head = commit(&repos, ns, &[("services/web/service.yaml", &spec)]);
            heads.insert(ns.to_string(), head.to_string());
            c.queue().trigger(*ns, Trigger::Push);
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }

    // Everything converges on its last push, the failed namespace included.
    let deadline = Instant::now() + Duration::from_secs(60);
    for ns in &namespaces {
        loop {
            let status = c.store.namespace_status(ns).await.unwrap();
            if status.and_then(|s| s.applied) == Some(heads[*ns].clone()) {
                break;
            }
            assert!(Instant::now() < deadline, "{ns} never converged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(runtime.observe(ns).await.unwrap()[0].model.replicas, 3);
    }
    let (most_at_once, most_in_one_namespace) = *runtime.most.lock().unwrap();
    assert_eq!(most_at_once, 2, "two workers, and both were used");
    assert_eq!(
        most_in_one_namespace, 1,
        "one reconcile per namespace at a time"
    );

    let history = c.store.history("ns0", 20).await.unwrap();
    let results: Vec<(&str, &[Trigger])> = history
        .iter()
        .map(|h| (h.result.as_str(), h.triggers.as_slice()))
        .collect();
    assert!(
        results.iter().any(|(result, _)| *result == "failed"),
        "{results:?}"
    );
    assert!(
        history[0].result == micro_store::ReconcileResult::Applied
            && history[0].revision == heads["ns0"],
        "{results:?}"
    );
    for w in workers {
        w.abort();
    }
}
