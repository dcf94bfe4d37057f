//! [`KubeRuntime`]: the reconciler's [`Runtime`] on a cluster. Applies what `render`
//! makes with server-side apply (field manager `micro`, forcing only our own fields),
//! skips what the caches show already as rendered (a no-change resync writes nothing),
//! reads state and drift from the caches, and never deletes anything without our labels.

use crate::cache::{Cache, Change};
use crate::compare::contains;
use crate::labels;
use crate::render::{self, ServiceInput};
use crate::settings::Settings;
use crate::status;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use micro_reconciler::desired::{DesiredService, ObservedService, ServiceModel};
use micro_reconciler::quota::Quota;
use micro_reconciler::runtime::{
    Artifact, CallRequest, CallResponse, ConfigEnv, DEPLOYMENT_VAR, LogQuery, LogStream, Runtime,
    RuntimeError, RuntimeEvent, ServiceDetail, ServiceEvent, ServiceReport,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How long `observe` waits for the caches' first listing before saying it cannot tell.
const CACHE_WAIT: Duration = Duration::from_secs(10);
/// Events kept per service for `micro describe`.
const EVENTS_KEPT: usize = 20;

type Key = (String, String);

#[derive(Default)]
struct State {
    /// Per tenant: bumped by every change to an object of ours.
    generations: HashMap<String, u64>,
    /// Digest of the Secret data last applied per service (values never kept).
    secrets: HashMap<Key, String>,
    /// A deployment (its token) waiting for its rollout to end, with the Deployment's
    /// generation that carries it.
    pending: HashMap<Key, (String, i64)>,
    /// Services being applied right now: their half-applied objects are not drift.
    applying: HashSet<Key>,
    /// Rollouts asked for by `micro restart`.
    restarts: HashSet<Key>,
    /// Per tenant: the quota its namespace-wide objects were last applied for.
    quotas: HashMap<String, Quota>,
    log: HashMap<Key, VecDeque<ServiceEvent>>,
}

struct Shared {
    client: kube::Client,
    settings: Settings,
    cache: Cache,
    state: Mutex<State>,
    events: UnboundedSender<RuntimeEvent>,
}

pub struct KubeRuntime {
    shared: Arc<Shared>,
    /// Calls go through the API server's service proxy (the server runs outside the
    /// cluster), not straight to the Service.
    proxy_calls: bool,
    dispatch: tokio::task::JoinHandle<()>,
}

impl Drop for KubeRuntime {
    fn drop(&mut self) {
        self.dispatch.abort();
    }
}

fn cluster(what: String, e: kube::Error) -> RuntimeError {
    RuntimeError::Backend(format!("{what}: {e}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl KubeRuntime {
    /// Starts watching what the platform owns on the cluster behind `client`.
    pub fn start(
        client: kube::Client,
        settings: Settings,
        events: UnboundedSender<RuntimeEvent>,
    ) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cache = Cache::start(&client, tx);
        let shared = Arc::new(Shared {
            client,
            settings,
            cache,
            state: Mutex::new(State::default()),
            events,
        });
        let dispatch = tokio::spawn(dispatch(shared.clone(), rx));
        KubeRuntime {
            shared,
            dispatch,
            // Every pod gets this variable; a server without it is outside the cluster.
            proxy_calls: std::env::var_os("KUBERNETES_SERVICE_HOST").is_none(),
        }
    }
}

/// Turns changes under us into status, rollouts ended and drift.
async fn dispatch(shared: Arc<Shared>, mut changes: UnboundedReceiver<Change>) {
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
    async fn ready(&self) -> Result<(), RuntimeError> {
        if self.cache.ready(CACHE_WAIT).await {
            Ok(())
        } else {
            Err(RuntimeError::Backend(
                "the cluster's API server has not answered: cannot tell what runs".into(),
            ))
        }
    }

    /// A service's Kubernetes namespace and port, if its Service is there.
    fn service_port(&self, tenant: &str, name: &str) -> Option<(String, u64)> {
        let ns = self.settings.namespace_of(tenant);
        let service = self.cache.get("Service", &ns, name)?;
        let port = service["spec"]["ports"][0]["port"].as_u64().unwrap_or(80);
        Some((ns, port))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self, tenant: &str) {
        *self
            .state()
            .generations
            .entry(tenant.to_owned())
            .or_default() += 1;
    }

    fn event(&self, tenant: &str, service: &str, what: String) {
        let mut state = self.state();
        let log = state
            .log
            .entry((tenant.to_owned(), service.to_owned()))
            .or_default();
        if log.len() >= EVENTS_KEPT {
            log.pop_front();
        }
        log.push_back(ServiceEvent {
            at_ms: now_ms(),
            what,
        });
    }

    fn drift(&self, tenant: &str, service: &str, what: String) {
        self.event(tenant, service, format!("drift: {what}; putting it back"));
        let _ = self.events.send(RuntimeEvent::Drift {
            namespace: tenant.to_owned(),
            name: service.to_owned(),
            what,
        });
    }

    /// Status from a service's Deployment and pods, and the end of a rollout when it came.
    fn report(&self, tenant: &str, service: &str) {
        let ns = self.settings.namespace_of(tenant);
        let Some(d) = self
            .cache
            .get("Deployment", &ns, service)
            .and_then(|o| serde_json::from_value::<Deployment>(o).ok())
        else {
            return;
        };
        let d = &d;
        let s = status::of(d, &self.cache.pods_of(&ns, service));
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

    /// Why a service's objects on the cluster are not what we applied, if they are not.
    fn service_drift(&self, tenant: &str, service: &str) -> Option<String> {
        let ns = self.settings.namespace_of(tenant);
        let Some(live) = self.cache.get("Deployment", &ns, service) else {
            return Some(format!("its Deployment {service} was deleted"));
        };
        let Some((model, revision)) = applied_model(&live) else {
            return Some("its Deployment lost the platform's annotations".into());
        };
        let deployment = live["spec"]["template"]["metadata"]["annotations"][labels::DEPLOYMENT]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut secret: BTreeMap<String, String> = render::secret_keys_of(&model)
            .into_iter()
            .map(|k| (k, String::new()))
            .collect();
        secret.insert(DEPLOYMENT_VAR.to_owned(), deployment);
        let input = ServiceInput {
            tenant,
            name: service,
            model: &model,
            revision: &revision,
            secret: &secret,
        };
        let key = (tenant.to_owned(), service.to_owned());
        for want in render::service_objects(&self.settings, &input) {
            let (kind, name) = kind_and_name(&want);
            let Some(have) = self.cache.get(kind, &ns, name) else {
                return Some(format!("its {kind} {name} was deleted"));
            };
            let same = if kind == "Secret" {
                let applied = self.state().secrets.get(&key).cloned();
                secret_keys_match(&have, &secret)
                    && applied.is_none_or(|digest| digest == live_secret_digest(&have))
            } else {
                contains(Some(&have), &want)
            };
            if !same {
                return Some(format!("its {kind} {name} was changed by hand"));
            }
        }
        None
    }

    /// Whether the tenant's namespace-wide objects are as rendered (for its last quota).
    fn namespace_in_place(&self, tenant: &str, ns: &str) -> bool {
        let Some(quota) = self.state().quotas.get(tenant).copied() else {
            // Not applied by this server yet: its first reconcile will.
            return true;
        };
        render::namespace_objects(&self.settings, tenant, &quota)
            .iter()
            .all(|want| {
                let (kind, name) = kind_and_name(want);
                let ns = if kind == "Namespace" { "" } else { ns };
                contains(self.cache.get(kind, ns, name).as_ref(), want)
            })
    }

    /// Server-side applies `object` unless the cache shows it already as rendered;
    /// returns the object as the API server now has it, if it was applied.
    async fn apply_object(
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

    fn api(&self, object: &Value, ns: &str) -> Api<DynamicObject> {
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

fn kind_and_name(object: &Value) -> (&str, &str) {
    (
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

/// The model and revision a Deployment was applied from (its annotations).
fn applied_model(deployment: &Value) -> Option<(ServiceModel, String)> {
    let annotations = &deployment["metadata"]["annotations"];
    let model = serde_json::from_str(annotations[labels::MODEL].as_str()?).ok()?;
    Some((model, annotations[labels::REVISION].as_str()?.to_owned()))
}

fn secret_digest(data: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The digest of a live Secret's data, decoded as `secret_digest` hashes what we apply.
fn live_secret_digest(secret: &Value) -> String {
    use base64::Engine;
    let data: BTreeMap<String, String> = secret["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            (k.clone(), String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect();
    secret_digest(&data)
}

fn secret_keys_match(secret: &Value, want: &BTreeMap<String, String>) -> bool {
    let have: Vec<&String> = secret["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    have.len() == want.len() && want.keys().all(|k| have.contains(&k))
}

#[async_trait::async_trait]
impl Runtime for KubeRuntime {
    fn reports_rollouts(&self) -> bool {
        true
    }

    async fn observe(&self, namespace: &str) -> Result<Vec<ObservedService>, RuntimeError> {
        let s = &self.shared;
        s.ready().await?;
        let ns = s.settings.namespace_of(namespace);
        let mut out = Vec::new();
        for name in s.cache.names_in("Deployment", &ns) {
            let Some(live) = s.cache.get("Deployment", &ns, &name) else {
                continue;
            };
            let (model, revision) = applied_model(&live).unwrap_or_default();
            let key = (namespace.to_owned(), name.clone());
            let drift = if s.state().restarts.contains(&key) {
                Some("a restart was asked for".into())
            } else {
                s.service_drift(namespace, &name)
            };
            out.push(ObservedService {
                name,
                model,
                revision,
                drift,
            });
        }
        Ok(out)
    }

    fn generation(&self, namespace: &str) -> u64 {
        self.shared
            .state()
            .generations
            .get(namespace)
            .copied()
            .unwrap_or(0)
    }

    async fn apply(
        &self,
        namespace: &str,
        _artifact: &Artifact,
        service: &DesiredService,
        config: &ConfigEnv,
    ) -> Result<(), RuntimeError> {
        // What runs is what `render` derives from the model (the artifact the controller
        // names comes from the same model): the tenant repo's folder at the revision, a
        // source at its commit, or the image.
        let s = &self.shared;
        s.ready().await?;
        let key = (namespace.to_owned(), service.name.clone());
        // Pods reach the platform at its in-cluster URL, whatever the controller's own.
        let secret: BTreeMap<String, String> = config
            .iter()
            .filter(|(k, _)| k.as_str() != "MICRO_API")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let digest = secret_digest(&secret);
        let deployment = secret.get(DEPLOYMENT_VAR).cloned().unwrap_or_default();
        s.state().applying.insert(key.clone());
        let result = async {
            for object in
                render::service_objects(&s.settings, &ServiceInput::of(namespace, service, &secret))
            {
                let (kind, _) = kind_and_name(&object);
                let same_secret = kind == "Secret" && s.state().secrets.get(&key) == Some(&digest);
                let applied = s
                    .apply_object(&object, kind != "Secret" || same_secret)
                    .await?;
                if kind == "Secret" {
                    s.state().secrets.insert(key.clone(), digest.clone());
                }
                if kind == "Deployment"
                    && let Some(applied) = applied
                {
                    let generation = applied.metadata.generation.unwrap_or(1);
                    s.state()
                        .pending
                        .insert(key.clone(), (deployment.clone(), generation));
                }
            }
            Ok::<(), RuntimeError>(())
        }
        .await;
        {
            let mut state = s.state();
            state.applying.remove(&key);
            state.restarts.remove(&key);
        }
        result?;
        s.event(
            namespace,
            &service.name,
            format!(
                "rollout of {} started",
                service.revision.get(..7).unwrap_or(&service.revision)
            ),
        );
        s.bump(namespace);
        Ok(())
    }

    async fn apply_namespace(&self, namespace: &str, quota: &Quota) -> Result<(), RuntimeError> {
        self.shared.ready().await?;
        for object in render::namespace_objects(&self.shared.settings, namespace, quota) {
            self.shared.apply_object(&object, true).await?;
        }
        self.shared
            .state()
            .quotas
            .insert(namespace.to_owned(), *quota);
        Ok(())
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
        let s = &self.shared;
        s.ready().await?;
        let ns = s.settings.namespace_of(namespace);
        // Only what our labelled caches hold: nothing of anyone else's is touched.
        for (kind, object) in [
            ("Deployment", name.to_owned()),
            ("Service", name.to_owned()),
            ("Secret", render::secret_name(name)),
            ("ServiceAccount", name.to_owned()),
        ] {
            let Some(live) = s.cache.get(kind, &ns, &object) else {
                continue;
            };
            if live["metadata"]["labels"][labels::MANAGED_BY] != labels::MANAGER {
                continue;
            }
            match s
                .api(&live, &ns)
                .delete(&object, &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(cluster(format!("deleting {kind} {ns}/{object}"), e)),
            }
        }
        let key = (namespace.to_owned(), name.to_owned());
        {
            let mut state = s.state();
            state.secrets.remove(&key);
            state.pending.remove(&key);
            state.log.remove(&key);
        }
        s.bump(namespace);
        let _ = s.events.send(RuntimeEvent::Removed {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        });
        Ok(())
    }

    fn restart(&self, namespace: &str, name: &str) -> bool {
        let s = &self.shared;
        let exists = s
            .cache
            .get("Deployment", &s.settings.namespace_of(namespace), name)
            .is_some();
        if exists {
            s.state()
                .restarts
                .insert((namespace.to_owned(), name.to_owned()));
            s.bump(namespace);
        }
        exists
    }

    fn describe(&self, namespace: &str, name: &str) -> Option<ServiceDetail> {
        let s = &self.shared;
        let live = s
            .cache
            .get("Deployment", &s.settings.namespace_of(namespace), name)?;
        let (model, _) = applied_model(&live)?;
        Some(ServiceDetail {
            replicas: status::replicas(&s.cache.pods_of(&s.settings.namespace_of(namespace), name)),
            serving: None,
            config: model.config,
            events: s
                .state()
                .log
                .get(&(namespace.to_owned(), name.to_owned()))
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default(),
        })
    }

    fn forwards_calls(&self) -> bool {
        self.proxy_calls
    }

    async fn call(
        &self,
        namespace: &str,
        name: &str,
        request: CallRequest,
    ) -> Result<CallResponse, RuntimeError> {
        let s = &self.shared;
        let (ns, port) = s
            .service_port(namespace, name)
            .ok_or_else(|| RuntimeError::NotFound(name.to_owned()))?;
        crate::proxy::call(&s.client, &ns, name, port, request).await
    }

    fn endpoints(&self, namespace: &str, name: &str) -> Vec<String> {
        // In the cluster, straight to the Service (from outside it, see `call`).
        match self.shared.service_port(namespace, name) {
            Some((ns, port)) => vec![format!("http://{name}.{ns}.svc.cluster.local:{port}")],
            None => Vec::new(),
        }
    }

    async fn logs(
        &self,
        namespace: &str,
        name: &str,
        query: LogQuery,
    ) -> Result<LogStream, RuntimeError> {
        let s = &self.shared;
        let ns = s.settings.namespace_of(namespace);
        if s.cache.get("Deployment", &ns, name).is_none() {
            return Err(RuntimeError::NotFound(name.to_owned()));
        }
        let pods: Vec<String> = s
            .cache
            .pods_of(&ns, name)
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        crate::logs::of_pods(&s.client, &ns, &pods, query).await
    }

    async fn shutdown(&self) {
        // Workloads outlive the server: a restarted server re-observes and converges.
    }
}
