//! What the platform owns on the cluster, kept by watch-fed caches (kube-runtime
//! reflectors, filtered by the ownership label): observing a namespace costs no API call,
//! and every change under us arrives as a [`Change`].
//!
//! Secrets are watched per tenant namespace, once the namespace's RoleBinding lets the
//! server read them there: the server may not list Secrets cluster-wide (a label selector
//! narrows a list, not what the list may see).

use crate::labels;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, Pod, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// An object of ours was added, changed or deleted.
#[derive(Clone, Debug)]
pub struct Change {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The service it belongs to (its `micro/service` label).
    pub service: Option<String>,
    /// The object as it is now; `None` once deleted.
    pub object: Option<Value>,
}

/// One kind's cache, whatever its type.
#[async_trait::async_trait]
trait Cached: Send + Sync {
    fn get(&self, namespace: &str, name: &str) -> Option<Value>;
    /// Its metadata alone (no copy of the rest, no serialising).
    fn meta(&self, namespace: &str, name: &str) -> Option<ObjectMeta>;
    /// Its `resourceVersion` (no copy of the object).
    fn version(&self, namespace: &str, name: &str) -> Option<String>;
    fn names_in(&self, namespace: &str) -> Vec<String>;
    async fn ready(&self) -> bool;
}

struct Typed<K: Resource<DynamicType = ()> + Clone + 'static>(Store<K>);

fn object_ref<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> ObjectRef<K> {
    let key = ObjectRef::<K>::new(name);
    if namespace.is_empty() {
        key
    } else {
        key.within(namespace)
    }
}

#[async_trait::async_trait]
impl<K> Cached for Typed<K>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + Send + Sync + 'static,
{
    fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        self.0
            .get(&object_ref::<K>(namespace, name))
            .and_then(|o| serde_json::to_value(&*o).ok())
    }

    fn meta(&self, namespace: &str, name: &str) -> Option<ObjectMeta> {
        self.0
            .get(&object_ref::<K>(namespace, name))
            .map(|o| o.meta().clone())
    }

    fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.0
            .get(&object_ref::<K>(namespace, name))
            .and_then(|o| o.meta().resource_version.clone())
    }

    fn names_in(&self, namespace: &str) -> Vec<String> {
        self.0
            .state()
            .iter()
            .filter(|o| o.namespace().as_deref() == Some(namespace))
            .map(|o| o.name_any())
            .collect()
    }

    async fn ready(&self) -> bool {
        self.0.wait_until_ready().await.is_ok()
    }
}

pub struct Cache {
    kinds: HashMap<&'static str, Box<dyn Cached>>,
    tasks: Vec<JoinHandle<()>>,
    client: kube::Client,
    changes: UnboundedSender<Change>,
    secrets: std::sync::Mutex<SecretStores>,
    /// Told whenever any cache has taken in an event: waiting for a write to show costs
    /// no polling.
    stored: Arc<Notify>,
}

/// Per tenant namespace: its Secrets' cache and the watch feeding it.
type SecretStores = HashMap<String, (Store<Secret>, JoinHandle<()>)>;

impl Drop for Cache {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for (_, (_, t)) in self.secret_stores().drain() {
            t.abort();
        }
    }
}

impl Cache {
    /// Starts a watch per kind; changes go to `changes`.
    pub fn start(client: &kube::Client, changes: UnboundedSender<Change>) -> Self {
        let mut cache = Cache {
            kinds: HashMap::new(),
            tasks: Vec::new(),
            client: client.clone(),
            changes: changes.clone(),
            secrets: std::sync::Mutex::new(HashMap::new()),
            stored: Arc::new(Notify::new()),
        };
        cache.watch::<Namespace>(client, "Namespace", &changes);
        cache.watch::<NetworkPolicy>(client, "NetworkPolicy", &changes);
        cache.watch::<ResourceQuota>(client, "ResourceQuota", &changes);
        cache.watch::<LimitRange>(client, "LimitRange", &changes);
        cache.watch::<RoleBinding>(client, "RoleBinding", &changes);
        cache.watch::<ServiceAccount>(client, "ServiceAccount", &changes);
        cache.watch::<Service>(client, "Service", &changes);
        cache.watch::<Deployment>(client, "Deployment", &changes);
        cache.watch::<Ingress>(client, "Ingress", &changes);
        cache.watch::<crate::gateway::HttpRoute>(client, crate::gateway::KIND, &changes);
        // Pods are not ours to apply, but their containers say why a service is down.
        cache.watch::<Pod>(client, "Pod", &changes);
        cache
    }

    fn secret_stores(&self) -> std::sync::MutexGuard<'_, SecretStores> {
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts watching the Secrets of `namespace` (a tenant's, which the server may now
    /// read), and waits up to `wait` for their first listing.
    pub async fn watch_secrets_in(&self, namespace: &str, wait: Duration) {
        let store = {
            let mut stores = self.secret_stores();
            if let Some((store, _)) = stores.get(namespace) {
                store.clone()
            } else {
                let api = Api::<Secret>::namespaced(self.client.clone(), namespace);
                let (store, task) = feed("Secret", api, &self.changes, &self.stored);
                stores.insert(namespace.to_owned(), (store.clone(), task));
                store
            }
        };
        let _ = tokio::time::timeout(wait, store.wait_until_ready()).await;
    }

    /// Stops watching the Secrets of a namespace that is gone.
    pub fn forget_secrets_in(&self, namespace: &str) {
        if let Some((_, task)) = self.secret_stores().remove(namespace) {
            task.abort();
        }
    }

    /// The cache of a tenant namespace's Secrets, once it is watched.
    fn secrets_in(&self, namespace: &str) -> Option<Typed<Secret>> {
        self.secret_stores()
            .get(namespace)
            .map(|(store, _)| Typed(store.clone()))
    }

    fn watch<K>(
        &mut self,
        client: &kube::Client,
        kind: &'static str,
        changes: &UnboundedSender<Change>,
    ) where
        K: Watched,
    {
        let (reader, task) = feed(kind, Api::<K>::all(client.clone()), changes, &self.stored);
        self.tasks.push(task);
        self.kinds.insert(kind, Box::new(Typed(reader)));
    }

    /// Ready once any cache has taken in an event after this call: create it before
    /// looking, then wait on it if what was looked for was not there yet.
    pub fn stored(&self) -> tokio::sync::futures::Notified<'_> {
        self.stored.notified()
    }

    /// An object of ours as the cache holds it.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        if kind == "Secret" {
            return self.secrets_in(namespace)?.get(namespace, name);
        }
        self.kinds.get(kind)?.get(namespace, name)
    }

    /// The metadata of an object of ours as the cache holds it: labels and annotations
    /// without serialising the object.
    pub fn meta(&self, kind: &str, namespace: &str, name: &str) -> Option<ObjectMeta> {
        if kind == "Secret" {
            return self.secrets_in(namespace)?.meta(namespace, name);
        }
        self.kinds.get(kind)?.meta(namespace, name)
    }

    /// The `resourceVersion` of an object of ours as the cache holds it.
    pub fn version(&self, kind: &str, namespace: &str, name: &str) -> Option<String> {
        if kind == "Secret" {
            return self.secrets_in(namespace)?.version(namespace, name);
        }
        self.kinds.get(kind)?.version(namespace, name)
    }

    /// A service's pods (those carrying its label), by name.
    pub fn pods_of(&self, namespace: &str, service: &str) -> Vec<Value> {
        let mut names = self.names_in("Pod", namespace);
        names.sort();
        names
            .iter()
            .filter_map(|n| self.get("Pod", namespace, n))
            .filter(|p| p["metadata"]["labels"][labels::SERVICE] == service)
            .collect()
    }

    /// The names of a kind's objects of ours in a namespace.
    pub fn names_in(&self, kind: &str, namespace: &str) -> Vec<String> {
        if kind == "Secret" {
            return self
                .secrets_in(namespace)
                .map(|s| s.names_in(namespace))
                .unwrap_or_default();
        }
        self.kinds
            .get(kind)
            .map(|c| c.names_in(namespace))
            .unwrap_or_default()
    }

    /// Whether every cache has had its first full listing within `wait`: until then the
    /// runtime cannot tell what runs (a cluster out of reach), and says so.
    pub async fn ready(&self, wait: Duration) -> bool {
        let all = futures_util::future::join_all(self.kinds.values().map(|c| c.ready()));
        matches!(tokio::time::timeout(wait, all).await, Ok(r) if r.iter().all(|ok| *ok))
    }
}

/// A kind a reflector can cache.
trait Watched:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize
        + Send
        + Sync
        + 'static
{
}

/// A reflector over `api` (ours only, by label) and the task feeding it, sending each
/// change to `changes` and telling `stored` once the store holds it.
fn feed<K>(
    kind: &'static str,
    api: Api<K>,
    changes: &UnboundedSender<Change>,
    stored: &Arc<Notify>,
) -> (Store<K>, JoinHandle<()>)
where
    K: Watched,
{
    let (reader, writer) = reflector::store::<K>();
    let config = watcher::Config::default().labels(&labels::owned_selector());
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    let (changes, stored) = (changes.clone(), stored.clone());
    let span = tracing::info_span!("kube_watch", kind);
    let task = tokio::spawn(
        async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                // The reflector wrote the store before handing the event on.
                stored.notify_waiters();
                let (object, gone) = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                    Ok(watcher::Event::Delete(o)) => (o, true),
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(kind, error = %e, "watch failed; retrying with backoff");
                        continue;
                    }
                };
                let change = Change {
                    kind,
                    namespace: object.namespace().unwrap_or_default(),
                    name: object.name_any(),
                    service: object.labels().get(labels::SERVICE).cloned(),
                    object: (!gone)
                        .then(|| serde_json::to_value(&object).ok())
                        .flatten(),
                };
                if changes.send(change).is_err() {
                    return;
                }
            }
        }
        .instrument(span),
    );
    (reader, task)
}
