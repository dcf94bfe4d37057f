//! An in-process fake Kubernetes API server, faithful for what the runtime uses (see
//! DESIGN.md §7, "How we test"): typed paths for its resources, get, list and watch with
//! resourceVersion and label selectors, server-side apply with managed fields and 409 on
//! conflict, delete, and defaults filled in. A pretend controller marks Deployments
//! rolled out at once (or never, or failed: [`FakeApiServer::rollouts`]).
//!
//! Hand it to `kube::Client::new` ([`FakeApiServer::client`]) or serve it on a port for
//! the real `kubectl` ([`FakeApiServer::serve`]).

mod apply;
mod controller;
mod defaults;
mod http;
pub mod resources;
mod store;

use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use store::{Rollouts, StoreError};

/// How many calls of each kind the fake answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub get: u64,
    pub list: u64,
    pub watch: u64,
    /// Applies and deletes.
    pub write: u64,
    /// Requests through the service proxy.
    pub proxy: u64,
}

#[derive(Clone, Copy)]
pub(crate) enum Calls {
    Get,
    List,
    Watch,
    Write,
    Proxy,
}

pub(crate) struct Shared {
    store: Mutex<store::Store>,
    changes: tokio::sync::watch::Sender<u64>,
    counts: [AtomicU64; 5],
    /// Every list and watch: (plural, namespace; empty for all namespaces).
    reads: Mutex<std::collections::BTreeSet<(String, String)>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, store::Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, c: Calls) {
        self.counts[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self, plural: &str, namespace: &str) {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((plural.to_owned(), namespace.to_owned()));
    }

    /// Wakes the watches.
    fn changed(&self) {
        let rv = self.lock().resource_version();
        self.changes.send_replace(rv);
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[derive(Clone)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
}

impl Default for FakeApiServer {
    fn default() -> Self {
        FakeApiServer {
            shared: Arc::new(Shared {
                store: Mutex::new(store::Store::default()),
                changes: tokio::sync::watch::channel(0).0,
                counts: Default::default(),
                reads: Mutex::default(),
            }),
        }
    }
}

fn resource(api_version: &str, kind: &str) -> Result<&'static resources::Resource, StoreError> {
    resources::of_kind(api_version, kind)
        .ok_or_else(|| StoreError::Invalid(format!("the fake does not serve {api_version} {kind}")))
}

impl FakeApiServer {
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(http::handle)
            .with_state(self.shared.clone())
    }

    /// A client talking to this fake in process.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// Serves the fake on a loopback port (for `kubectl`); returns its address.
    pub async fn serve(&self) -> std::io::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(addr)
    }

    /// A kubeconfig for the fake served at `addr` (any token is accepted).
    pub fn kubeconfig(addr: std::net::SocketAddr) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: 'http://{addr}'}}\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: me}}\ncurrent-context: fake\n\
             users:\n- name: me\n  user: {{token: x}}\n"
        )
    }

    pub fn calls(&self) -> CallCounts {
        let c = |i: Calls| self.shared.counts[i as usize].load(Ordering::Relaxed);
        CallCounts {
            get: c(Calls::Get),
            list: c(Calls::List),
            watch: c(Calls::Watch),
            write: c(Calls::Write),
            proxy: c(Calls::Proxy),
        }
    }

    /// The namespaces each kind (plural) was listed or watched in, `""` meaning all.
    pub fn reads(&self) -> Vec<(String, String)> {
        self.shared
            .reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// What happens to Deployments' new templates from now on.
    pub fn rollouts(&self, rollouts: Rollouts) {
        self.shared.lock().rollouts = rollouts;
    }

    /// The pods of a service, by name.
    pub fn pods(&self, namespace: &str, service: &str) -> Vec<String> {
        self.list("v1", "Pod", namespace)
            .iter()
            .filter(|p| p["metadata"]["labels"][micro_kubernetes::labels::SERVICE] == service)
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// A line the pod's `service` container writes (stamped `time` in RFC 3339).
    pub fn log(&self, namespace: &str, pod: &str, time: &str, line: &str) {
        self.shared
            .lock()
            .logs
            .entry((namespace.to_owned(), pod.to_owned()))
            .or_default()
            .push(format!("{time} {line}"));
        self.shared.changed();
    }

    /// Fails every write into `namespace` (and to the Namespace itself), or stops.
    pub fn refuse_writes(&self, namespace: &str, refuse: bool) {
        let mut store = self.shared.lock();
        if refuse {
            store.refused.insert(namespace.to_owned());
        } else {
            store.refused.remove(namespace);
        }
    }

    /// An object as the API server holds it.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let r = resources::of_kind(api_version, kind)?;
        self.shared.lock().get(r, namespace, name)
    }

    /// The objects of a kind (all namespaces: `""`).
    pub fn list(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<Value> {
        match resources::of_kind(api_version, kind) {
            Some(r) => {
                self.shared
                    .lock()
                    .list(r, (!namespace.is_empty()).then_some(namespace), None)
            }
            None => Vec::new(),
        }
    }

    /// Applies an object as another field manager (someone else's tool).
    pub fn apply_as(&self, manager: &str, object: &Value) -> Result<Value, StoreError> {
        let r = resource(
            object["apiVersion"].as_str().unwrap_or(""),
            object["kind"].as_str().unwrap_or(""),
        )?;
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let out = self
            .shared
            .lock()
            .apply(r, ns, name, manager, object, false);
        self.shared.changed();
        out
    }

    /// Changes an object by hand, as `kubectl edit` would.
    pub fn edit(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, StoreError> {
        let r = resource(api_version, kind)?;
        let out = self
            .shared
            .lock()
            .edit(r, namespace, name, "kubectl-edit", edit);
        self.shared.changed();
        out
    }

    /// Deletes an object by hand.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, StoreError> {
        let r = resource(api_version, kind)?;
        let out = self.shared.lock().delete(r, namespace, name);
        self.shared.changed();
        out
    }
}
