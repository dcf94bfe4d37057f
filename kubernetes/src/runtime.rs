//! [`KubeRuntime`]: the reconciler's [`Runtime`] on a cluster. Applies what `render`
//! makes with server-side apply (field manager `micro`, forcing only our own fields),
//! skips what the caches show already as rendered (a no-change resync writes nothing),
//! reads state and drift from the caches, and never deletes anything without our labels.

use crate::cache::Cache;
use crate::drift::applied_model_of;
use crate::labels;
use crate::render::{self, ServiceInput};
use crate::settings::Settings;
use crate::shared::{Shared, State, Written, cluster, dispatch, kind_and_name};
use crate::status;
use kube::api::DeleteParams;
use micro_runtime::{
    Artifact, CallRequest, CallResponse, Deployment, LogQuery, LogStream, NamespaceSettings, Pem,
    Runtime, RuntimeError, RuntimeEvent, ServiceDetail,
};
use micro_tenant::desired::{DesiredService, ObservedService};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;

/// Longest a namespace apply waits for the first listing of its Secrets.
const SECRETS_LISTED: std::time::Duration = std::time::Duration::from_secs(10);

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
        let dispatch = tokio::spawn(
            dispatch(shared.clone(), rx).instrument(tracing::info_span!("kube_dispatch")),
        );
        KubeRuntime {
            shared,
            dispatch,
            // Every pod gets this variable; a server without it is outside the cluster.
            proxy_calls: std::env::var_os("KUBERNETES_SERVICE_HOST").is_none(),
        }
    }
}

/// Turns changes under us into status, rollouts ended and drift.
#[async_trait::async_trait]
impl Runtime for KubeRuntime {
    fn reports_rollouts(&self) -> bool {
        true
    }

    fn support(&self) -> micro_tenant::spec::Support {
        micro_tenant::spec::Support::CLUSTER.with_runtimes(self.shared.settings.runtimes())
    }

    async fn observe(&self, namespace: &str) -> Result<Vec<ObservedService>, RuntimeError> {
        let s = &self.shared;
        s.ready().await?;
        let ns = s.settings.namespace_of(namespace);
        let mut out = Vec::new();
        for name in s.cache.names_in("Deployment", &ns) {
            // Its annotations alone: observing serialises nothing.
            let Some(live) = s.cache.meta("Deployment", &ns, &name) else {
                continue;
            };
            let (model, revision) = applied_model_of(&live).unwrap_or_default();
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
        artifact: &Artifact,
        service: &DesiredService,
        deployment: &Deployment,
    ) -> Result<(), RuntimeError> {
        let s = &self.shared;
        s.ready().await?;
        let key = (namespace.to_owned(), service.name.clone());
        // Pods reach the platform at its in-cluster URL (the render's), whatever the
        // controller's own.
        let secret = render::secret_of(deployment);
        let deployment = deployment.id.clone();
        // This rollout is the restart asked for before it; one asked for while it is
        // under way stays asked for.
        let restart = {
            let mut state = s.state();
            state.applying.insert(key.clone());
            state.restarts.remove(&key)
        };
        let objects = render::service_objects(
            &s.settings,
            &ServiceInput::of(
                namespace,
                service,
                artifact,
                &secret,
                s.storage_of(namespace),
            ),
        );
        let result = async {
            let mut written = Vec::new();
            for object in &objects {
                let (kind, _) = kind_and_name(object);
                let before = s.cached_version(object);
                // A Secret carries this apply's new token: it always differs.
                let applied = s.apply_object(object, kind != "Secret").await?;
                if kind == "Secret" {
                    s.note_applied_secret(&key, object);
                }
                if kind == "Deployment"
                    && let Some(applied) = &applied
                {
                    let generation = applied.metadata.generation.unwrap_or(1);
                    s.state()
                        .pending
                        .insert(key.clone(), (deployment.clone(), generation));
                }
                if let Some(applied) = applied {
                    written.push(Written {
                        object,
                        before,
                        after: applied.metadata.resource_version,
                    });
                }
            }
            s.until_cached(&written).await;
            Ok::<(), RuntimeError>(())
        }
        .await;
        {
            let mut state = s.state();
            state.applying.remove(&key);
            if restart && result.is_err() {
                state.restarts.insert(key.clone());
            }
        }
        result?;
        // A service no longer public (or a cluster without an ingress class) keeps no
        // route in from outside.
        for kind in ["Ingress", "HTTPRoute"] {
            if !objects.iter().any(|o| kind_and_name(o).0 == kind) {
                let ns = s.settings.namespace_of(namespace);
                delete_ours(s, kind, &ns, &service.name).await?;
            }
        }
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

    async fn apply_namespace(
        &self,
        namespace: &str,
        settings: &NamespaceSettings,
    ) -> Result<(), RuntimeError> {
        let quota = &settings.quota;
        self.shared.ready().await?;
        for object in render::namespace_objects(&self.shared.settings, namespace, quota) {
            self.shared.apply_object(&object, true).await?;
        }
        // Its RoleBinding lets the server read its Secrets now.
        self.shared
            .cache
            .watch_secrets_in(
                &self.shared.settings.namespace_of(namespace),
                SECRETS_LISTED,
            )
            .await;
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
            ("Ingress", name.to_owned()),
            ("HTTPRoute", name.to_owned()),
        ] {
            delete_ours(s, kind, &ns, &object).await?;
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

    async fn delete_namespace(&self, namespace: &str) -> Result<(), RuntimeError> {
        for service in self.observe(namespace).await? {
            self.delete(namespace, &service.name).await?;
        }
        let s = &self.shared;
        // Forgotten first: its objects going away is not drift to repair.
        s.state().quotas.remove(namespace);
        // The cluster deletes what the namespace holds with it (quota, policy, accounts).
        delete_ours(s, "Namespace", "", &s.settings.namespace_of(namespace)).await?;
        s.cache
            .forget_secrets_in(&s.settings.namespace_of(namespace));
        s.bump(namespace);
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

    async fn renew_identity(
        &self,
        namespace: &str,
        name: &str,
        deployment: &str,
        identity: &Pem,
    ) -> Result<bool, RuntimeError> {
        self.shared
            .renew_identity(namespace, name, deployment, identity)
            .await
    }

    fn describe(&self, namespace: &str, name: &str) -> Option<ServiceDetail> {
        let s = &self.shared;
        let live = s
            .cache
            .meta("Deployment", &s.settings.namespace_of(namespace), name)?;
        let (model, _) = applied_model_of(&live)?;
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
        let s = &self.shared;
        let Some((ns, port)) = s.service_port(namespace, name) else {
            return Vec::new();
        };
        let tls = s
            .cache
            .meta("Deployment", &ns, name)
            .and_then(|d| applied_model_of(&d))
            .is_some_and(|(model, _)| model.tls);
        let scheme = if tls { "https" } else { "http" };
        vec![format!("{scheme}://{name}.{ns}.svc.cluster.local:{port}")]
    }

    async fn logs(
        &self,
        namespace: &str,
        name: &str,
        query: LogQuery,
    ) -> Result<LogStream, RuntimeError> {
        let s = &self.shared;
        let ns = s.settings.namespace_of(namespace);
        if s.cache.version("Deployment", &ns, name).is_none() {
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

/// Deletes an object our caches hold and our label marks (`ns` empty for one that is
/// not namespaced); nothing of anyone else's is touched, and one already gone is fine.
async fn delete_ours(s: &Shared, kind: &str, ns: &str, name: &str) -> Result<(), RuntimeError> {
    let Some(live) = s.cache.get(kind, ns, name) else {
        return Ok(());
    };
    if live["metadata"]["labels"][labels::MANAGED_BY] != labels::MANAGER {
        return Ok(());
    }
    match s
        .api(&live, ns)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => {
            let path = if ns.is_empty() {
                name.to_owned()
            } else {
                format!("{ns}/{name}")
            };
            Err(cluster(format!("deleting {kind} {path}"), e))
        }
    }
}
