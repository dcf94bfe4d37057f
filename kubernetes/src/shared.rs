//! What the Kubernetes runtime keeps between calls and how it talks to the cluster: its
//! state (generations, applied secret digests, pending rollouts, events), the dispatcher
//! turning cache changes into status, rollouts ended and drift, and server-side apply.

use crate::cache::{Cache, Change};
use crate::compare::contains;
use crate::labels;
use crate::settings::Settings;
use crate::status;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use micro_runtime::{RuntimeError, RuntimeEvent, ServiceEvent, ServiceReport};
use micro_tenant::desired::ServiceModel;
use micro_tenant::quota::Quota;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How long `observe` (and every write) waits for the caches' first listing before saying it cannot tell.
const CACHE_WAIT: Duration = Duration::from_secs(10);
/// How long an apply waits for the caches to show what it applied.
const CACHE_CATCH_UP: Duration = Duration::from_secs(2);
/// Events kept per service for `micro describe`.
const EVENTS_KEPT: usize = 20;

pub(crate) type Key = (String, String);

#[derive(Default)]
pub(crate) struct State {
    /// Per tenant: bumped by every change to an object of ours.
    pub(crate) generations: HashMap<String, u64>,
    /// Digest of the Secret data last applied per service (values never kept).
    pub(crate) secrets: HashMap<Key, String>,
    /// A deployment (its token) waiting for its rollout to end, with the Deployment's
    /// generation that carries it.
    pub(crate) pending: HashMap<Key, (String, i64)>,
    /// Services being applied right now: their half-applied objects are not drift.
    pub(crate) applying: HashSet<Key>,
    /// Rollouts asked for by `micro restart`.
    pub(crate) restarts: HashSet<Key>,
    /// Per tenant: the quota its namespace-wide objects were last applied for.
    pub(crate) quotas: HashMap<String, Quota>,
    pub(crate) log: HashMap<Key, VecDeque<ServiceEvent>>,
}

pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) settings: Settings,
    pub(crate) cache: Cache,
    pub(crate) state: Mutex<State>,
    pub(crate) events: UnboundedSender<RuntimeEvent>,
}

pub(crate) fn cluster(what: String, e: kube::Error) -> RuntimeError {
    RuntimeError::Backend(format!("{what}: {e}"))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) async fn dispatch(shared: Arc<Shared>, mut changes: UnboundedReceiver<Change>) {
    while let Some(change) = changes.recv().await {
        let Some(tenant) = shared
            .settings
            .tenant_of(&change.namespace)
            .map(str::to_owned)
        else {
            if change.kind != "Namespace" {
                continue;
            }
            // A Namespace object names itself.
            if let Some(tenant) = shared.settings.tenant_of(&change.name).map(str::to_owned) {
                shared.bump(&tenant);
                if change.object.is_none() {
                    shared.drift(&tenant, "(namespace)", "its Namespace was deleted".into());
                }
            }
            continue;
        };
        shared.bump(&tenant);
        match &change.service {
            Some(service) => {
                if change.kind == "Deployment" || change.kind == "Pod" {
                    shared.report(&tenant, service);
                }
                if change.kind == "Pod" {
                    continue; // pods are not ours to put back
                }
                let key = (tenant.clone(), service.clone());
                if shared.state().applying.contains(&key) {
                    continue;
                }
                if let Some(what) = shared.service_drift(&tenant, service) {
                    shared.drift(&tenant, service, what);
                }
            }
            None => {
                let ns = shared.settings.namespace_of(&tenant);
                let gone = change.object.is_none();
                if gone || !shared.namespace_in_place(&tenant, &ns) {
                    let what = format!(
                        "its {} {} was {}",
                        change.kind,
                        change.name,
                        if gone { "deleted" } else { "changed by hand" }
                    );
                    shared.drift(&tenant, "(namespace)", what);
                }
            }
        }
    }
}

impl Shared {
    /// Nothing is compared, applied or deleted before the caches have listed what runs.
    pub(crate) async fn ready(&self) -> Result<(), RuntimeError> {
        if self.cache.ready(CACHE_WAIT).await {
            Ok(())
        } else {
            Err(RuntimeError::Backend(
                "the cluster's API server has not answered: cannot tell what runs".into(),
            ))
        }
    }

    /// A service's Kubernetes namespace and port, if its Service is there.
    pub(crate) fn service_port(&self, tenant: &str, name: &str) -> Option<(String, u64)> {
        let ns = self.settings.namespace_of(tenant);
        let service = self.cache.get("Service", &ns, name)?;
        let port = service["spec"]["ports"][0]["port"].as_u64().unwrap_or(80);
        Some((ns, port))
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a tenant's checkouts may hold on a node: its quota's `checkout-size` (the
    /// default until its namespace is applied, which comes first).
    pub(crate) fn storage_of(&self, tenant: &str) -> u64 {
        self.state()
            .quotas
            .get(tenant)
            .map_or(Quota::default().checkout_bytes, |q| q.checkout_bytes)
    }

    pub(crate) fn bump(&self, tenant: &str) {
        *self
            .state()
            .generations
            .entry(tenant.to_owned())
            .or_default() += 1;
    }

    pub(crate) fn event(&self, tenant: &str, service: &str, what: String) {
        let mut state = self.state();
        let log = state
            .log
            .entry((tenant.to_owned(), service.to_owned()))
            .or_default();
        if log.len() >= EVENTS_KEPT {
            log.pop_front();
        }
        log.push_back(ServiceEvent::now(what));
    }

    /// Tells the reconciler that a service's objects are not what was applied (`what`),
    /// so it applies them again.
    pub(crate) fn drift(&self, tenant: &str, service: &str, what: String) {
        self.event(tenant, service, format!("drift: {what}; putting it back"));
        let _ = self.events.send(RuntimeEvent::Drift {
            namespace: tenant.to_owned(),
            name: service.to_owned(),
            what,
        });
    }

    /// Status from a service's Deployment and pods, and the end of a rollout when it came.
    pub(crate) fn report(&self, tenant: &str, service: &str) {
        let ns = self.settings.namespace_of(tenant);
        let Some(d) = self
            .cache
            .get("Deployment", &ns, service)
            .and_then(|o| serde_json::from_value::<Deployment>(o).ok())
        else {
            return;
        };
        let s = status::of(&d, &self.cache.pods_of(&ns, service));
        let annotations = d.metadata.annotations.clone().unwrap_or_default();
        let model: Option<ServiceModel> = annotations
            .get(labels::MODEL)
            .and_then(|m| serde_json::from_str(m).ok());
        let source = model
            .and_then(|m| m.source.map(|s| s.git))
            .unwrap_or_else(|| "repo".into());
        let _ = self.events.send(RuntimeEvent::Status(ServiceReport {
            namespace: tenant.to_owned(),
            name: service.to_owned(),
            revision: annotations
                .get(labels::REVISION)
                .cloned()
                .unwrap_or_default(),
            source,
            state: s.state,
            ready: s.ready,
            desired: s.desired,
            message: s.message,
        }));
        if !s.rolled_out {
            return;
        }
        let observed = d
            .status
            .as_ref()
            .and_then(|st| st.observed_generation)
            .unwrap_or(0);
        let key = (tenant.to_owned(), service.to_owned());
        let done = {
            let mut state = self.state();
            match state.pending.get(&key) {
                Some((_, generation)) if *generation <= observed => state.pending.remove(&key),
                _ => None,
            }
        };
        if let Some((deployment, _)) = done {
            self.event(tenant, service, "rolled out".into());
            let _ = self.events.send(RuntimeEvent::RolledOut {
                namespace: tenant.to_owned(),
                name: service.to_owned(),
                deployment,
            });
        }
    }

    /// Server-side applies `object` unless the cache shows it already as rendered;
    /// returns the object as the API server now has it, if it was applied.
    pub(crate) async fn apply_object(
        &self,
        object: &Value,
        skip_if_same: bool,
    ) -> Result<Option<DynamicObject>, RuntimeError> {
        let (kind, name) = kind_and_name(object);
        let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
        if skip_if_same && contains(self.cache.get(kind, ns, name).as_ref(), object) {
            return Ok(None);
        }
        let api = self.api(object, ns);
        api.patch(
            name,
            &PatchParams::apply(labels::MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map(Some)
        .map_err(|e| cluster(format!("applying {kind} {ns}/{name}"), e))
    }

    /// The version of an object the cache holds (`None`: it holds none), to tell later
    /// whether the cache has seen a write made after this.
    pub(crate) fn cached_version(&self, object: &Value) -> Option<String> {
        let (kind, name) = kind_and_name(object);
        let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
        self.cache.version(kind, ns, name)
    }

    /// Waits until the cache holds each of `written` at the version the write answered,
    /// or at least at another than the one it held before (watches deliver an object's
    /// versions in order), for at most [`CACHE_CATCH_UP`]: a service's objects arrive by
    /// separate watches, and until all have, one without the others looks like drift.
    pub(crate) async fn until_cached(&self, written: &[Written<'_>]) {
        let deadline = tokio::time::Instant::now() + CACHE_CATCH_UP;
        let seen = |w: &Written<'_>| {
            let now = self.cached_version(w.object);
            now.is_some() && (now != w.before || now == w.after)
        };
        loop {
            // Made before looking, so an event stored meanwhile is not missed.
            let stored = self.cache.stored();
            if written.iter().all(seen) || tokio::time::timeout_at(deadline, stored).await.is_err()
            {
                return;
            }
        }
    }

    pub(crate) fn api(&self, object: &Value, ns: &str) -> Api<DynamicObject> {
        let api_version = object["apiVersion"].as_str().unwrap_or("v1");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind_and_name(object).0);
        let resource = ApiResource::from_gvk(&gvk);
        if ns.is_empty() {
            Api::all_with(self.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.client.clone(), ns, &resource)
        }
    }
}

/// An object written: the version the cache held before, the one the write answered.
pub(crate) struct Written<'a> {
    pub object: &'a Value,
    pub before: Option<String>,
    pub after: Option<String>,
}

pub(crate) fn kind_and_name(object: &Value) -> (&str, &str) {
    (
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}
