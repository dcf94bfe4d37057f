//! The local runtime, the node: each replica a supervised process on this machine, in
//! its own process group, sandbox (bubblewrap, seccomp, a network with two holes) and
//! cgroup, started in a checkout of its service folder at its revision; rollouts,
//! health, logs and identity files; what serves outlives the server and is adopted by
//! the next.
//!
//! It implements `micro-runtime`'s contract and knows nothing of the store, the
//! reconciler or the API: the server hands it what it needs (doors to the API and the
//! platform's client certificate among them).

mod adopt;
mod blocking;
mod cgroup;
mod egress;
mod holes;
mod identity;
mod in_use;
mod instance;
mod interpreters;
mod logs;
mod netns;
mod pids;
mod process;
mod reuse;
mod sandbox;
mod seccomp;
mod supervisor;
mod volume;

pub use cgroup::{Cgroups, Limits};
pub use egress::{BuildEgress, BuildNetwork};
pub use sandbox::{Sandbox, SandboxError, SandboxOptions};

use instance::Instance;
use micro_runtime::{Artifact, Deployment, LogStream, Runtime, RuntimeError, RuntimeEvent};
use micro_tenant::desired::{DesiredService, ObservedService};
use micro_tenant::sources::{SourceCache, SourcePolicy};
use std::collections::HashMap;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Where the local runtime keeps its files, under the platform's data dir.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// `runtime/<ns>/<service>/<fingerprint>/code`: the checked-out service folders.
    pub work: PathBuf,
    /// `logs/<ns>/<service>.log`.
    pub logs: PathBuf,
    /// One file per live process group, so a restarted server can reap orphans.
    pub pids: PathBuf,
    /// Cache repos of services' `source` repos, one per URL.
    pub sources: PathBuf,
}

impl Dirs {
    pub fn under(data_dir: &Path) -> Self {
        Dirs {
            work: data_dir.join("runtime"),
            logs: data_dir.join("logs"),
            pids: data_dir.join("runtime").join(".pids"),
            sources: data_dir.join("sources"),
        }
    }

    fn service_work(&self, ns: &str, name: &str) -> PathBuf {
        self.work.join(ns).join(name)
    }

    fn log_file(&self, ns: &str, name: &str) -> PathBuf {
        self.logs.join(ns).join(format!("{name}.log"))
    }
}

/// How the runtime keeps tenants apart. Without a sandbox it is single-tenant: the
/// server must host one namespace only.
#[derive(Clone, Debug, Default)]
pub struct Isolation {
    pub sandbox: Option<Sandbox>,
    pub cgroups: Option<Cgroups>,
    /// What the platform may fetch for tenants (`source.git`).
    pub sources: SourcePolicy,
    /// The CA bundle services trust (the system's roots and the platform CA, so they
    /// reach the API over TLS): `SSL_CERT_FILE` and `MICRO_TLS_CA` inside the sandbox.
    pub trust: Option<std::path::PathBuf>,
    /// The platform CA alone, which a service serving TLS checks its callers against:
    /// `MICRO_PLATFORM_CA`.
    pub platform_ca: Option<std::path::PathBuf>,
    /// The platform's client certificate, which health checks of services that serve TLS
    /// present (such a service takes only the platform's callers).
    pub platform_client: Option<Arc<micro_pki::PlatformClient>>,
    /// Each namespace's checkouts on a filesystem of their own (with the sandbox).
    volumes: Option<volume::Volumes>,
    /// Variables every build gets from the operator (`--build-env`: a package mirror),
    /// under the service's own `env`.
    pub build_env: Vec<(String, String)>,
}

impl Isolation {
    /// Sandboxes and cgroups, or the reason this machine cannot have them.
    pub fn sandboxed(options: SandboxOptions, data_dir: &Path) -> Result<Self, SandboxError> {
        let sandbox = Sandbox::detect(options, data_dir)?;
        let tag = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
            hex::encode(&digest[..6])
        };
        let cgroups = Cgroups::new(&tag)
            .map_err(|e| SandboxError::Broken(format!("cgroup v1 controllers: {e}")))?;
        volume::Volumes::available().map_err(SandboxError::Missing)?;
        let dirs = Dirs::under(data_dir);
        Ok(Isolation {
            sandbox: Some(sandbox),
            cgroups: Some(cgroups),
            sources: SourcePolicy::default(),
            trust: None,
            platform_ca: None,
            platform_client: None,
            volumes: Some(volume::Volumes::new(data_dir.join("volumes"), dirs.work)),
            build_env: Vec::new(),
        })
    }

    pub fn is_sandboxed(&self) -> bool {
        self.sandbox.is_some()
    }
}

/// Source fetches: a few at once platform-wide and one at a time per namespace, so one
/// tenant's slow or hanging sources never hold up another tenant's.
pub(crate) struct FetchPool {
    all: Arc<tokio::sync::Semaphore>,
    per_namespace: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl FetchPool {
    const AT_ONCE: usize = 4;

    fn new() -> Self {
        Self::with(Self::AT_ONCE)
    }

    /// One at a time per namespace, `at_once` platform-wide.
    fn with(at_once: usize) -> Self {
        FetchPool {
            all: Arc::new(tokio::sync::Semaphore::new(at_once)),
            per_namespace: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the namespace's turn, then for a platform-wide slot (in that order, so
    /// a waiting namespace holds no slot another could use).
    pub(crate) async fn enter(&self, namespace: &str) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        let own = self
            .per_namespace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(namespace.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1)))
            .clone();
        // Never closed, so acquiring cannot fail.
        let mut held = Vec::with_capacity(2);
        if let Ok(p) = own.acquire_owned().await {
            held.push(p);
        }
        if let Ok(p) = self.all.clone().acquire_owned().await {
            held.push(p);
        }
        held
    }
}

pub(crate) struct Shared {
    dirs: Dirs,
    isolation: Isolation,
    sources: SourceCache,
    fetches: FetchPool,
    /// One build at a time per namespace: the quota counts one build's resources.
    builds: FetchPool,
    checkouts: in_use::InUse,
    /// Recent events per service, for `micro describe`.
    events_log: Mutex<HashMap<Key, std::collections::VecDeque<micro_runtime::ServiceEvent>>>,
    /// Per namespace: its quota and uid, as the last namespace apply set them.
    namespaces: Mutex<HashMap<String, micro_runtime::NamespaceSettings>>,
    /// Per namespace: the checkout quota (bytes, files) its volume was last made for.
    volumes_ensured: tokio::sync::Mutex<HashMap<String, (u64, u64)>>,
    /// Per full namespace: its fullest checkout folder (by files or by bytes), when it
    /// was last found, so its deployments' checks walk the volume once between them.
    fullest: Mutex<HashMap<String, Fullest>>,
    /// Per namespace: bumped by every change `observe` would show.
    generations: Mutex<HashMap<String, u64>>,
    events: UnboundedSender<RuntimeEvent>,
    /// SIGTERM, then SIGKILL after this long.
    grace: Duration,
    /// PATH handed to services (the rest of the server's environment is not).
    path_env: String,
    /// Makes sockets in sandboxes' network namespaces, for their holes when services
    /// have no egress and the platform's direct connections in ([`holes`]).
    network: Option<Arc<holes::Network>>,
    /// Orders the writes of services' records ([`adopt`]).
    record_seq: std::sync::atomic::AtomicU64,
    records_written: Arc<Mutex<HashMap<Key, u64>>>,
    /// The interpreters services may pin (`runtime:`).
    interpreters: interpreters::Interpreters,
}

type Key = (String, String);

/// When a namespace's fullest folder was found, whether by files, and which it was.
type Fullest = (std::time::Instant, bool, Option<(PathBuf, volume::Fill)>);

/// How long a found fullest folder stands: under the watchers' interval, so each round
/// of checks walks a full volume once.
const FULLEST_STANDS: Duration = Duration::from_secs(4);

impl Shared {
    pub(crate) fn bump(&self, namespace: &str) {
        let mut g = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *g.entry(namespace.to_owned()).or_default() += 1;
    }

    /// A namespace's settings, once its namespace apply set them (always before its
    /// services are applied).
    pub(crate) fn settings(&self, namespace: &str) -> Option<micro_runtime::NamespaceSettings> {
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            .copied()
    }

    /// The fullest checkout folder of a full namespace (by files, or by bytes), as
    /// `walk` finds it, walked at most once every [`FULLEST_STANDS`] however many of its
    /// deployments ask (on the blocking pool).
    pub(crate) fn fullest_folder(
        &self,
        namespace: &str,
        files: bool,
        walk: impl FnOnce() -> Option<(PathBuf, volume::Fill)>,
    ) -> Option<(PathBuf, volume::Fill)> {
        let mut fullest = self.fullest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, by_files, found)) = fullest.get(namespace)
            && *by_files == files
            && at.elapsed() < FULLEST_STANDS
        {
            return found.clone();
        }
        let found = walk();
        fullest.insert(
            namespace.to_owned(),
            (std::time::Instant::now(), files, found.clone()),
        );
        found
    }

    /// The uid a sandboxed namespace's processes run as; `None` unsandboxed.
    pub(crate) fn sandbox_uid(&self, namespace: &str) -> std::io::Result<Option<u32>> {
        if self.isolation.sandbox.is_none() {
            return Ok(None);
        }
        self.settings(namespace)
            .map(|s| Some(s.uid))
            .ok_or_else(|| std::io::Error::other(format!("namespace {namespace} has no uid yet")))
    }

    /// Notes an event of a service (the last [`Self::EVENTS_KEPT`] are kept).
    pub(crate) fn event(&self, namespace: &str, name: &str, what: String) {
        let mut log = self
            .events_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let events = log
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default();
        if events.len() >= Self::EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(micro_runtime::ServiceEvent::now(what));
    }

    const EVENTS_KEPT: usize = 50;

    fn events_of(&self, namespace: &str, name: &str) -> Vec<micro_runtime::ServiceEvent> {
        self.events_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn forget_events(&self, namespace: &str, name: &str) {
        self.events_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    fn generation(&self, namespace: &str) -> u64 {
        let g = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.get(namespace).copied().unwrap_or(0)
    }
}

/// Runs services as local processes.
pub struct LocalRuntime {
    shared: Arc<Shared>,
    services: Mutex<HashMap<Key, Instance>>,
}

impl LocalRuntime {
    /// Starts the runtime: adopts the replicas a previous server left serving (routed to
    /// at once), and stops every other process it left behind.
    pub fn new(
        dirs: Dirs,
        isolation: Isolation,
        events: UnboundedSender<RuntimeEvent>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dirs.work)?;
        std::fs::create_dir_all(&dirs.logs)?;
        std::fs::create_dir_all(&dirs.pids)?;
        let found = Self::still_running(&dirs, &isolation);
        let mut kept = adopt::Kept::default();
        for f in &found {
            f.live.iter().flatten().for_each(|r| kept.keep(r));
        }
        let mut reaped = pids::reap_orphans(&dirs.pids, &dirs.work, &kept.groups);
        if let Some(cgroups) = &isolation.cgroups {
            reaped += cgroups.reap_all(&kept.cgroups);
        }
        adopt::remove_stale_pipes(&dirs.pids, &kept);
        let network = match &isolation.sandbox {
            Some(sandbox) if !sandbox.egress() => Some(Arc::new(holes::Network::start()?)),
            _ => None,
        };
        if reaped > 0 {
            tracing::info!(reaped, "stopped processes left by a previous server");
        }
        let runtime = LocalRuntime {
            shared: Arc::new(Shared {
                sources: SourceCache::for_platform(&dirs.sources, isolation.sources.clone()),
                fetches: FetchPool::new(),
                builds: FetchPool::with(tokio::sync::Semaphore::MAX_PERMITS),
                checkouts: in_use::InUse::default(),
                events_log: Mutex::new(HashMap::new()),
                dirs,
                isolation,
                events,
                grace: Duration::from_secs(5),
                generations: Mutex::new(HashMap::new()),
                namespaces: Mutex::new(HashMap::new()),
                volumes_ensured: tokio::sync::Mutex::new(HashMap::new()),
                fullest: Mutex::new(HashMap::new()),
                path_env: std::env::var("PATH")
                    .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
                network,
                record_seq: std::sync::atomic::AtomicU64::new(0),
                records_written: Arc::new(Mutex::new(HashMap::new())),
                interpreters: interpreters::Interpreters::discover(),
            }),
            services: Mutex::new(HashMap::new()),
        };
        let adopted = runtime.adopt(found);
        if adopted > 0 {
            tracing::info!(
                adopted,
                "adopted the services a previous server left running"
            );
        }
        Ok(runtime)
    }

    /// The services' records a previous server left, each with those of its serving
    /// replicas that still run as recorded (none where its namespace's door to the API
    /// cannot open again where their networks point).
    fn still_running(dirs: &Dirs, isolation: &Isolation) -> Vec<adopt::Found> {
        let doors = isolation.sandbox.as_ref().and_then(Sandbox::doors);
        adopt::load_all(&dirs.work)
            .into_iter()
            .map(|(ns, name, record)| {
                let Some(serving) = &record.serving else {
                    return adopt::Found {
                        namespace: ns,
                        name,
                        record,
                        live: Vec::new(),
                    };
                };
                let reopened = match (doors, serving.door) {
                    (Some(doors), Some(port)) => doors
                        .reopen(&ns, port)
                        .map_err(|e| tracing::warn!(namespace = %ns, port, error = %e, "cannot open a door again; its services start afresh"))
                        .is_ok(),
                    _ => true,
                };
                let live = if reopened {
                    adopt::live(serving, isolation.cgroups.as_ref())
                } else {
                    vec![None; serving.replicas.len()]
                };
                adopt::Found {
                    namespace: ns,
                    name,
                    record,
                    live,
                }
            })
            .collect()
    }

    /// Takes over what `found` says serves; how many services it adopted. A service none
    /// of whose replicas run is left to the reconciler to deploy afresh.
    fn adopt(&self, found: Vec<adopt::Found>) -> usize {
        let mut adopted = 0;
        for adopt::Found {
            namespace: ns,
            name,
            record,
            live,
        } in found
        {
            let had_serving = record.serving.is_some();
            let serving = record.serving.and_then(|serving| {
                let any = live.iter().any(Option::is_some) || serving.model.replicas == 0;
                any.then(|| Instance::adopt(self.shared.clone(), &ns, &name, serving, live))
            });
            let inst = match (record.failed, serving) {
                (Some(failed), serving) if serving.is_some() || !had_serving => {
                    Instance::adopt_failed(self.shared.clone(), &ns, &name, failed, serving)
                }
                (None, Some(serving)) => serving,
                _ => {
                    self.shared.save_record(&ns, &name, None);
                    continue;
                }
            };
            self.services().insert((ns.clone(), name), inst);
            self.shared.bump(&ns);
            adopted += 1;
        }
        adopted
    }

    /// How many services it runs.
    pub fn running(&self) -> usize {
        self.services().len()
    }

    /// Stops every service on purpose (`micro server --stop-services`: maintenance, or
    /// before uninstalling): processes, cgroups, volumes and records go.
    pub async fn stop_services(&self) {
        let all: Vec<Instance> = self.services().drain().map(|(_, i)| i).collect();
        futures_util::future::join_all(all.into_iter().map(Instance::stop)).await;
        if let Some(cgroups) = self.shared.isolation.cgroups.clone() {
            // Whatever group is left (a replica that was stopping, a build): none stays.
            let _ = blocking::blocking(move || {
                cgroups.reap_all(&std::collections::HashSet::new());
                cgroups.remove();
            })
            .await;
        }
        if let Some(volumes) = self.shared.isolation.volumes.clone() {
            let _ = blocking::blocking(move || volumes.unmount_all()).await;
        }
        let work = self.shared.dirs.work.clone();
        let _ = blocking::blocking(move || adopt::forget_all(&work)).await;
    }

    fn services(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Instance>> {
        self.services.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, ns: &str, name: &str) -> Option<Instance> {
        self.services().remove(&(ns.to_owned(), name.to_owned()))
    }

    /// Makes the namespace's volume match its quota, if the quota changed since it last
    /// did (first made when the namespace first runs something, at its quota then).
    async fn ensure_volume(&self, namespace: &str) -> Result<(), RuntimeError> {
        let (Some(volumes), Some(settings)) = (
            self.shared.isolation.volumes.clone(),
            self.shared.settings(namespace),
        ) else {
            return Ok(());
        };
        let quota = settings.quota;
        let wanted = (quota.checkout_bytes, quota.checkout_files);
        // Held throughout: two applies never resize one volume at once.
        let mut ensured = self.shared.volumes_ensured.lock().await;
        if ensured.get(namespace) == Some(&wanted) {
            return Ok(());
        }
        let idle = !self.services().keys().any(|(ns, _)| ns == namespace);
        let ns = namespace.to_owned();
        blocking::blocking(move || volumes.ensure(&ns, wanted.0, wanted.1, idle))
            .await
            .map_err(|e| RuntimeError::Io(std::io::Error::other(e.to_string())))??;
        ensured.insert(namespace.to_owned(), wanted);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Runtime for LocalRuntime {
    fn support(&self) -> micro_tenant::spec::Support {
        micro_tenant::spec::Support::PROCESSES.with_runtimes(self.shared.interpreters.runtimes())
    }

    fn reports_rollouts(&self) -> bool {
        true
    }

    async fn observe(&self, namespace: &str) -> Result<Vec<ObservedService>, RuntimeError> {
        Ok(self
            .services()
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((_, name), inst)| ObservedService {
                name: name.clone(),
                model: inst.model.clone(),
                revision: inst.revision.clone(),
                drift: inst.drift(),
            })
            .collect())
    }

    fn generation(&self, namespace: &str) -> u64 {
        self.shared.generation(namespace)
    }

    async fn apply(
        &self,
        namespace: &str,
        artifact: &Artifact,
        service: &DesiredService,
        deployment: &Deployment,
    ) -> Result<(), RuntimeError> {
        self.ensure_volume(namespace).await?;
        // What runs keeps serving until the new revision is ready (or for good, if it
        // never is); the map never lacks the service, so no call finds it gone.
        let discarded = {
            let mut services = self.services();
            let key = (namespace.to_owned(), service.name.clone());
            let (serving, discarded) = match services.remove(&key) {
                Some(old) => old.into_serving(),
                None => (None, None),
            };
            let inst = Instance::start(
                self.shared.clone(),
                namespace,
                artifact,
                service,
                deployment,
                serving,
            );
            services.insert(key, inst);
            discarded
        };
        if let Some(old) = discarded {
            old.stop().await;
        }
        self.shared.bump(namespace);
        Ok(())
    }

    async fn apply_namespace(
        &self,
        namespace: &str,
        settings: &micro_runtime::NamespaceSettings,
    ) -> Result<(), RuntimeError> {
        // Its `/etc` names its uid: written again only when that changes.
        let known_uid = self.shared.settings(namespace).map(|s| s.uid);
        if let Some(sandbox) = &self.shared.isolation.sandbox
            && known_uid != Some(settings.uid)
        {
            let (sandbox, ns, uid) = (sandbox.clone(), namespace.to_owned(), settings.uid);
            blocking::blocking(move || sandbox.prepare(&ns, uid))
                .await
                .map_err(|e| RuntimeError::Io(std::io::Error::other(e.to_string())))??;
        }
        self.shared
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(namespace.to_owned(), *settings);
        Ok(())
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
        let Some(inst) = self.take(namespace, name) else {
            return Ok(());
        };
        inst.stop().await;
        self.shared.save_record(namespace, name, None);
        self.shared.forget_events(namespace, name);
        self.shared.bump(namespace);
        let work = self.shared.dirs.service_work(namespace, name);
        let _ = tokio::fs::remove_dir_all(&work).await;
        let log = self.shared.dirs.log_file(namespace, name);
        let _ = tokio::fs::remove_file(&log).await;
        let _ = tokio::fs::remove_file(log.with_extension("log.1")).await;
        let _ = self.shared.events.send(RuntimeEvent::Removed {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        });
        Ok(())
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<(), RuntimeError> {
        for service in self.observe(namespace).await? {
            self.delete(namespace, &service.name).await?;
        }
        if let Some(sandbox) = &self.shared.isolation.sandbox {
            if let Some(doors) = sandbox.doors() {
                doors.close(namespace);
            }
            sandbox.forget(namespace);
        }
        if let Some(volumes) = self.shared.isolation.volumes.clone() {
            let ns = namespace.to_owned();
            let _ = blocking::blocking(move || volumes.remove(&ns)).await;
        }
        self.shared.volumes_ensured.lock().await.remove(namespace);
        self.shared
            .fullest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(namespace);
        self.shared
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(namespace);
        Ok(())
    }

    fn restart(&self, namespace: &str, name: &str) -> bool {
        match self
            .services()
            .get(&(namespace.to_owned(), name.to_owned()))
        {
            Some(inst) => {
                inst.request_replacement();
                true
            }
            None => false,
        }
    }

    async fn renew_identity(
        &self,
        namespace: &str,
        name: &str,
        deployment: &str,
        identity: &micro_runtime::Pem,
    ) -> Result<bool, RuntimeError> {
        let renewed = self
            .services()
            .get(&(namespace.to_owned(), name.to_owned()))
            .and_then(|inst| inst.renew_identity(deployment, identity));
        match renewed {
            Some(result) => result.map(|()| true).map_err(RuntimeError::Io),
            None => Ok(false),
        }
    }

    fn describe(&self, namespace: &str, name: &str) -> Option<micro_runtime::ServiceDetail> {
        let mut detail = self
            .services()
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(Instance::describe)?;
        detail.events = self.shared.events_of(namespace, name);
        Some(detail)
    }

    fn endpoints(&self, namespace: &str, name: &str) -> Vec<String> {
        let services = self.services();
        let Some(inst) = services.get(&(namespace.to_owned(), name.to_owned())) else {
            return Vec::new();
        };
        let scheme = if inst.model.tls { "https" } else { "http" };
        inst.endpoints()
            .into_iter()
            .map(|addr| format!("{scheme}://{addr}"))
            .collect()
    }

    fn connect_direct(
        &self,
        address: &str,
    ) -> Option<futures_util::future::BoxFuture<'static, std::io::Result<std::net::TcpStream>>>
    {
        self.shared.network.as_ref()?.connect_direct(address)
    }

    async fn logs(
        &self,
        namespace: &str,
        name: &str,
        query: micro_runtime::LogQuery,
    ) -> Result<LogStream, RuntimeError> {
        if !self
            .services()
            .contains_key(&(namespace.to_owned(), name.to_owned()))
        {
            return Err(RuntimeError::NotFound(name.to_owned()));
        }
        logs::read(self.shared.dirs.log_file(namespace, name), query).await
    }

    /// Leaves what serves running, with its cgroups, networks, volumes and log pipes, for
    /// the next server to adopt; a rollout or build under way stops.
    async fn shutdown(&self) {
        let all: Vec<Instance> = self.services().drain().map(|(_, i)| i).collect();
        futures_util::future::join_all(all.into_iter().map(Instance::detach)).await;
    }
}
