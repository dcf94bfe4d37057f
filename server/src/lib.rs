//! The server's composition root: it wires the platform's crates together, in phases,
//! each a short function: the data dir and the listener → the store → the repos and the
//! marks beside them → the runtime → the controller (told where the API is and how to
//! issue identities before any reconcile can run) → background tasks under one tracker
//! → the routers (API, git, forge and billing hooks) under one request trace.
//!
//! It implements no capability itself; the crates do the work. The `micro` binary turns
//! its flags into [`ServerArgs`] and calls [`run`]; nothing here writes the CLI's files.

/// Returns a [`ServerError`] with this message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::ServerError::new(format!($($arg)*)))
    };
}

mod args;
pub mod backup;
pub mod billing;
pub mod cluster;
mod database;
mod domains;
pub mod edge;
mod error;
mod files;
mod tasks;
pub mod tls;

pub use args::{RuntimeKind, SandboxMode, ServerArgs};
pub use error::ServerError;

use error::{Context, Result};
use micro_billing::Suspensions;
use micro_reconciler::Controller;
use micro_reconciler::controller::PlatformAccess;
use micro_runtime::{Runtime, RuntimeEvent};
use micro_runtime_local::{Dirs, Isolation, LocalRuntime, SandboxOptions};
use micro_store::Trigger;
use micro_store::{Role, Store};
use micro_tenant::Repos;
use micro_tenant::sources::SourcePolicy;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tasks::Tasks;
use tokio::sync::mpsc::UnboundedReceiver;

const DEFAULT_NAMESPACE: &str = "default";
const ADMIN_EMAIL: &str = "admin@localhost";

/// What the CLI on this machine needs to reach the server that just started, like a
/// single-node Kubernetes writing its kubeconfig: its URL, the CA it pins, and an admin
/// login.
pub struct Ready {
    pub url: String,
    /// The platform CA (none with the operator's certificate or plain HTTP).
    pub ca_pem: Option<String>,
    pub email: String,
    pub namespace: String,
    /// The admin's token: the one the CLI held if it is still the admin's, else new.
    pub token: String,
}

/// Runs the platform until SIGINT or SIGTERM. `data` is the data dir; `cli_token` the
/// token the CLI's built-in environment holds now (kept if still the admin's); `ready`
/// hears where the server is once it listens and before it serves.
pub async fn run(
    args: ServerArgs,
    data: &Path,
    cli_token: Option<String>,
    ready: impl FnOnce(Ready) -> std::result::Result<(), String>,
) -> Result<()> {
    // Flags are checked before anything is written.
    let mut cluster = args.cluster.settings()?;
    cluster.apps_domain.clone_from(&args.edge.apps_domain);
    cluster.build_env = args
        .build_env
        .iter()
        .flat_map(|env| env.0.iter().cloned())
        .collect();
    let ground = prepare(&args, data).await?;
    let store = open_store(&args, &ground.data).await?;
    let repos = open_repos(&store, &ground.data, &ground.exe).await?;
    let sources = source_policy(&args, &ground.data)?;
    // The certificate names every address clients are told: the public one, and the one
    // pods reach the platform at.
    let hosts: Vec<String> = [
        args.public_url.as_deref(),
        Some(cluster.platform_url.as_str()),
    ]
    .into_iter()
    .flatten()
    .filter_map(micro_tenant::sources::url_host)
    .collect();
    let tls = args.tls.server(&ground.data, ground.local, &hosts)?;
    cluster.platform_ca = tls.ca_pem.clone();
    let public_url = public_url(&args, &tls, ground.local)?;
    let mailer = args.billing.mailer(&public_url)?;
    let paid = args.billing.paid()?;
    let (runtime, events, single_tenant) =
        start_runtime(&args, &ground, &store, &tls, &sources, &cluster).await?;
    micro_tenant::marks::record_support(repos.root(), runtime.support())
        .context("cannot write beside the repos")?;
    let controller = start_controller(&args, &repos, &store, runtime.clone(), &tls, ground.local);
    let tasks = Tasks::default();
    spawn_reconciling(&tasks, &controller, events, &args)?;
    let follower = follow_links(
        &tasks,
        &args,
        &controller,
        &ground.data,
        &sources,
        &public_url,
    )
    .await?;
    // The edge writes one line per request here; `micro logs --router` reads it. On a
    // cluster, public services are the ingress controller's (`--ingress-class`).
    let on_cluster = matches!(args.runtime, RuntimeKind::Kubernetes);
    if on_cluster && args.edge.apps_domain.is_some() {
        tracing::info!(
            "public services are served by the cluster's ingress controller, not this server's edge"
        );
    }
    let router_log = (args.edge.apps_domain.is_some() && !on_cluster)
        .then(|| Arc::new(micro_edge::RouterLog::default()));
    let domains_changed = Arc::new(tokio::sync::Notify::new());
    // What `/metrics` serves: the reconciler's figures, and the edge's per public service.
    let traffic = Arc::new(micro_edge::Traffic::default());
    let mut registry = prometheus_client::registry::Registry::default();
    controller.metrics().register(&mut registry);
    traffic.register(&mut registry);
    let api_state = api_state(ApiParts {
        args: &args,
        store: &store,
        repos: &repos,
        controller: &controller,
        tls: &tls,
        cluster,
        public_url,
        sources,
        single_tenant,
        follower: &follower,
        exe: ground.exe.clone(),
        mailer,
        paid: paid.as_ref().map(|p| p.plan.clone()),
        router_log: router_log.clone(),
        domains_changed: domains_changed.clone(),
        metrics: Arc::new(registry),
        traffic: router_log.is_some().then(|| traffic.clone()),
    })?;
    publish_marks(&api_state, &store).await?;
    tasks.spawn(
        tracing::info_span!("kv_sweeper"),
        micro_api::sweep::sweep_kv(store.clone(), micro_api::sweep::KV_SWEEP_EVERY),
    );
    if let Some(previews) = api_state.previews.clone() {
        tasks.spawn(
            tracing::info_span!("preview_environments"),
            follower.clone().watch_environments(),
        );
        tasks.spawn(
            tracing::info_span!("preview_sweeper"),
            sweep_previews(previews, follower.clone(), store.clone()),
        );
    }
    let app = routers(&args, &api_state, &follower, paid, &tasks);
    if let Some(log) = router_log {
        edge::start(
            &args.edge,
            &tls,
            &controller,
            serve_limits(&args),
            edge::Parts {
                log,
                traffic,
                store: &store,
                data: &ground.data,
                domains_changed: &domains_changed,
            },
            &tasks,
        )
        .await?;
    }
    controller.resume_deletions().await?;
    controller.trigger_all(Trigger::Startup).await?;
    let url = format!("{}://{}", tls.scheme(), loopback(ground.local));
    let token = admin_token(&store, cli_token).await?;
    ready(Ready {
        url,
        ca_pem: tls.ca_pem.clone(),
        email: ADMIN_EMAIL.to_owned(),
        namespace: DEFAULT_NAMESPACE.to_owned(),
        token,
    })
    .map_err(ServerError::new)?;
    tracing::info!(address = %ground.local, data = %ground.data.display(), store = store.backend(), "micro server ready");
    micro_api::serve::serve(
        ground.listener,
        app,
        ground.limits,
        tls.config.clone(),
        Some(ground.doors),
        shutdown_signal(),
    )
    .await;
    tracing::info!("stopping");
    tasks.stop().await;
    // The local runtime leaves its services running for the next server to adopt.
    runtime.shutdown().await;
    tracing::info!("stopped");
    drop(ground.lock);
    Ok(())
}

/// `micro server --stop-services`: stops every service a previous server left running
/// on `data` (and their cgroups, volumes and records); how many services it stopped.
pub async fn stop_services(args: &ServerArgs, data: &Path) -> Result<usize> {
    if args.runtime != RuntimeKind::Local {
        bail!("--stop-services: only the local runtime leaves services running on this machine");
    }
    let data = data
        .canonicalize()
        .with_context(|| format!("no data dir at {}", data.display()))?;
    // A running server holds the lock: it must be stopped first.
    let lock = files::lock_data_dir(&data)?;
    let doors = micro_api::serve::Doors::new(&serve_limits(args));
    let isolation = isolation(args, args.address, &data, &doors)?;
    let (events, _ignored) = tokio::sync::mpsc::unbounded_channel();
    let dirs = Dirs::under(&data);
    let local =
        tokio::task::spawn_blocking(move || LocalRuntime::new(dirs, isolation, events)).await??;
    let stopped = local.running();
    local.stop_services().await;
    drop(lock);
    Ok(stopped)
}

/// What the server stands on: its data dir (locked), its listener, its limits.
struct Ground {
    data: PathBuf,
    lock: std::fs::File,
    listener: tokio::net::TcpListener,
    local: SocketAddr,
    limits: micro_api::serve::Limits,
    /// Each namespace's services reach the API through a door of their own.
    doors: micro_api::serve::Doors,
    /// The `micro` binary the repos' hooks run.
    exe: PathBuf,
}

/// The data dir, private and locked, and the listener, bound before the store or any
/// service is touched (a taken address fails first).
async fn prepare(args: &ServerArgs, data: &Path) -> Result<Ground> {
    // Everything the server writes is its own: the store, repos, logs, tokens.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data dir {}", data.display()))?;
    files::restrict(data, 0o700)?;
    let data = data.canonicalize()?;
    let lock = files::lock_data_dir(&data)?;
    let listener = match handed_over()? {
        Some(listener) => listener,
        None => tokio::net::TcpListener::bind(args.address)
            .await
            .with_context(|| format!("cannot listen on {}", args.address))?,
    };
    let local = listener.local_addr()?;
    let limits = serve_limits(args);
    let doors = micro_api::serve::Doors::new(&limits);
    let exe = std::env::current_exe().context("cannot find the micro binary")?;
    Ok(Ground {
        data,
        lock,
        listener,
        local,
        limits,
        doors,
        exe,
    })
}

/// The listening socket a service manager handed over, if one did (systemd's socket
/// activation, `LISTEN_FDS`): it outlives this process, so while the server restarts or
/// is upgraded, connections wait in the kernel's queue instead of being refused. Then
/// `--address` is not bound; the socket's own address is the server's.
fn handed_over() -> Result<Option<tokio::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let Some(listener) = fds
        .take_tcp_listener(0)
        .context("the socket handed over (LISTEN_FDS) is not a listening TCP socket")?
    else {
        return Ok(None);
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tracing::info!(address = %listener.local_addr()?, "listening on the socket the service manager handed over");
    Ok(Some(listener))
}

/// The store, its config values sealed with the data dir's key.
async fn open_store(args: &ServerArgs, data: &Path) -> Result<Store> {
    let (store_url, unverified) = database::store_url(&args.store);
    if let Some(warning) = unverified {
        tracing::warn!("{warning}");
    }
    let store = Store::open(&store_url, data)
        .await
        .context("cannot open the store")?
        .with_sealer(files::config_key(args, data)?);
    for file in ["store.db", "store.db-wal", "store.db-shm"] {
        let path = data.join(file);
        if path.exists() {
            files::restrict(&path, 0o600)?;
        }
    }
    Ok(store)
}

/// The tenant repos, each with this binary's hook, and the links marked beside them (a
/// linked repo refuses pushes; the hook reads the mark).
async fn open_repos(store: &Store, data: &Path, exe: &Path) -> Result<Repos> {
    let repos = Repos::new(data.join("repos"));
    std::fs::create_dir_all(repos.root())?;
    repos.remove_deleted_leftovers();
    for ns in store.list_namespaces().await? {
        repos.install_hook(&ns, exe)?;
    }
    for link in store.links().await? {
        let followed = micro_tenant::marks::Followed {
            url: link.url.clone(),
            branch: link.branch.clone(),
        };
        micro_tenant::marks::follow(&repos.path(&link.namespace), Some(&followed))?;
    }
    Ok(repos)
}

/// Where sources and linked repos may be fetched from, whatever the runtime; and the
/// checked transport every tenant fetch goes through (no redirects, only addresses the
/// policy allows, checked as they are resolved).
fn source_policy(args: &ServerArgs, data: &Path) -> Result<SourcePolicy> {
    if let Some(base) = &args.source_base
        && !micro_tenant::spec::is_source_url(base)
    {
        bail!("--source-base {base}: must be an https://, http:// or file:// URL");
    }
    micro_tenant::sources::set_network_timeouts(Duration::from_secs(10), Duration::from_secs(30));
    micro_gitnet::register().context("cannot register the checked git transport")?;
    Ok(SourcePolicy {
        allow_local: args.allow_local_sources,
        forbidden: vec![data.to_owned()],
    })
}

fn public_url(args: &ServerArgs, tls: &tls::ServerTls, local: SocketAddr) -> Result<String> {
    Ok(match &args.public_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            url.trim_end_matches('/').to_owned()
        }
        Some(url) => bail!("--public-url {url}: an https:// or http:// URL"),
        None => format!("{}://{}", tls.scheme(), loopback(local)),
    })
}

/// Where services run, its events, and whether it hosts one namespace only (no sandbox).
async fn start_runtime(
    args: &ServerArgs,
    ground: &Ground,
    store: &Store,
    tls: &tls::ServerTls,
    sources: &SourcePolicy,
    cluster: &micro_kubernetes::Settings,
) -> Result<(Arc<dyn Runtime>, UnboundedReceiver<RuntimeEvent>, bool)> {
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime: (Arc<dyn Runtime>, bool) = match args.runtime {
        RuntimeKind::Local => {
            // Whatever the last server ran died with it (or is reaped now).
            let mut isolation = isolation(args, ground.local, &ground.data, &ground.doors)?;
            isolation.sources = sources.clone();
            isolation.trust = tls::trust_bundle(&ground.data, tls.ca_pem.as_deref())?;
            isolation.platform_ca = tls::platform_ca_file(&ground.data, tls.ca_pem.as_deref())?;
            isolation.platform_client = tls.platform_client.clone();
            let single_tenant = !isolation.is_sandboxed();
            // Reaping what a killed server left can take seconds: not on an async thread.
            let dirs = Dirs::under(&ground.data);
            let local =
                tokio::task::spawn_blocking(move || LocalRuntime::new(dirs, isolation, events_tx))
                    .await??;
            store
                .reset_service_statuses("the platform restarted; starting it again")
                .await?;
            (Arc::new(local), single_tenant)
        }
        RuntimeKind::Kubernetes => {
            let client = micro_kubernetes::connect(
                args.cluster.kubeconfig.as_deref(),
                args.cluster.kube_context.as_deref(),
            )
            .await?;
            // Tenants are isolated by namespace and network policy, not by this machine.
            let kube = micro_kubernetes::KubeRuntime::start(client, cluster.clone(), events_tx);
            (Arc::new(kube), false)
        }
        RuntimeKind::None => {
            // Plan-only mode runs no tenant code, so it needs no sandbox.
            drop(events_tx);
            (
                Arc::new(micro_runtime::memory::MemoryRuntime::default()),
                false,
            )
        }
    };
    Ok((runtime.0, events_rx, runtime.1))
}

/// The controller, told before it exists where services reach the API and how their
/// certificates are issued: no reconcile can start a service without either.
fn start_controller(
    args: &ServerArgs,
    repos: &Repos,
    store: &Store,
    runtime: Arc<dyn Runtime>,
    tls: &tls::ServerTls,
    local: SocketAddr,
) -> Arc<Controller> {
    // Plan-only mode runs nothing that could present a certificate: none is issued.
    let runs_services = !matches!(args.runtime, RuntimeKind::None);
    let access = PlatformAccess {
        api_url: format!("{}://{}", tls.scheme(), loopback(local)),
        identity: tls.identity_issuer(&args.tls).filter(|_| runs_services),
    };
    Controller::new(repos.clone(), store.clone(), runtime, access)
}

/// The reconcile machinery: the runtime's events recorded, the workers, the ref watch,
/// the periodic resync and the renewal of services' certificates.
fn spawn_reconciling(
    tasks: &Tasks,
    controller: &Arc<Controller>,
    events: UnboundedReceiver<RuntimeEvent>,
    args: &ServerArgs,
) -> Result<()> {
    tasks.spawn(
        tracing::info_span!("runtime_events"),
        controller.clone().consume_events(events),
    );
    for worker in 0..args.concurrency.max(1) {
        tasks.spawn(
            tracing::info_span!("reconcile_worker", worker),
            controller.clone().work(),
        );
    }
    let watcher = micro_reconciler::watch::RefWatcher::start(
        controller.repos().root(),
        controller.queue().clone(),
    )
    .context("cannot watch the repos")?;
    // The watcher lives as long as the tasks do.
    tasks.spawn(tracing::info_span!("ref_watcher"), async move {
        let _watcher = watcher;
        std::future::pending::<()>().await;
    });
    tasks.spawn(
        tracing::info_span!("resync"),
        resync(controller.clone(), Duration::from_secs(args.resync.max(1))),
    );
    tasks.spawn(
        tracing::info_span!("identity_renewal"),
        controller.clone().keep_identities_renewed(),
    );
    Ok(())
}

/// The API's `micro admin backup --platform`: an archive written in the data dir (a
/// hidden file the route removes once it has it open).
fn make_backup(store_spec: String, data: PathBuf) -> micro_api::MakeBackup {
    Arc::new(move |passphrase: String| {
        let (store_spec, data) = (store_spec.clone(), data.clone());
        Box::pin(async move {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let out = data.join(format!(".backup-{nanos}.tar"));
            backup::backup(&store_spec, &data, &out, &passphrase)
                .await
                .map(|_| out)
                .map_err(|e| e.to_string())
        })
    })
}

/// Removes previews past their TTL (and those of branches gone while the server was
/// down) every half minute, telling their pull requests.
async fn sweep_previews(
    previews: Arc<micro_previews::Previews>,
    follower: Arc<micro_forge::Follower>,
    store: micro_store::Store,
) {
    // Branches pushed or deleted while the server was down.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for ns in store.list_namespaces().await.unwrap_or_default() {
        if micro_tenant::preview::parent_of(&ns).is_none()
            && let Err(e) = previews.sync_branches(&ns).await
        {
            tracing::warn!(namespace = %ns, error = %e, "branch previews not updated");
        }
    }
    loop {
        match previews.sweep().await {
            Ok(swept) => {
                for env in &swept.removed {
                    follower.environment_removed(env, "it expired").await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "previews not swept"),
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}

/// The follower of linked repos (what their forges' branches hold, fetched), its loops
/// under the server's tasks.
async fn follow_links(
    tasks: &Tasks,
    args: &ServerArgs,
    controller: &Arc<Controller>,
    data: &Path,
    sources: &SourcePolicy,
    public_url: &str,
) -> Result<Arc<micro_forge::Follower>> {
    let follower = micro_forge::Follower::new(
        controller.clone(),
        micro_tenant::linked::Mirrors::new(data.join("mirrors"), sources.clone()),
        micro_forge::rest::Rest::new(sources.clone())?,
        public_url.to_owned(),
    );
    follower.resume().await?;
    tasks.spawn(
        tracing::info_span!("forge_reporter"),
        follower.clone().report(),
    );
    for worker in 0..2 {
        tasks.spawn(
            tracing::info_span!("follower", worker),
            follower.clone().fetch(),
        );
    }
    tasks.spawn(
        tracing::info_span!("link_poll"),
        follower.clone().poll(Duration::from_secs(args.poll.max(1))),
    );
    tasks.spawn(
        tracing::info_span!("link_watch"),
        follower.clone().watch_links(),
    );
    Ok(follower)
}

/// What the API is built from.
struct ApiParts<'a> {
    args: &'a ServerArgs,
    store: &'a Store,
    repos: &'a Repos,
    controller: &'a Arc<Controller>,
    tls: &'a tls::ServerTls,
    cluster: micro_kubernetes::Settings,
    public_url: String,
    sources: SourcePolicy,
    single_tenant: bool,
    follower: &'a Arc<micro_forge::Follower>,
    exe: PathBuf,
    mailer: micro_api::mail::Mailer,
    paid: Option<micro_billing::PaidPlan>,
    router_log: Option<Arc<micro_edge::RouterLog>>,
    domains_changed: Arc<tokio::sync::Notify>,
    metrics: Arc<prometheus_client::registry::Registry>,
    traffic: Option<Arc<micro_edge::Traffic>>,
}

/// The API's state: what its handlers share.
fn api_state(p: ApiParts<'_>) -> Result<micro_api::ApiState> {
    let args = p.args;
    // On this machine, a namespace's CPU and memory fit it; on a cluster, the defaults.
    let mut default_quota = match args.runtime {
        crate::args::RuntimeKind::Local => micro_tenant::quota::Quota::fitted(
            std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            machine_memory().unwrap_or(16 << 30),
        ),
        _ => micro_tenant::quota::Quota::default(),
    };
    default_quota
        .set(&args.default_quota)
        .map_err(|e| ServerError::new(format!("--default-quota: {e}")))?;
    let cluster = p.cluster;
    let follower = p.follower.clone();
    let apps = args
        .edge
        .apps_domain
        .as_ref()
        .map(|domain| micro_api::apps::Apps {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            // On a cluster the ingress controller serves them, on HTTPS's own port.
            port: match args.runtime {
                RuntimeKind::Kubernetes => 443,
                _ => args.edge.edge_address.port(),
            },
        });
    let previews = micro_previews::Previews::new(
        p.controller.clone(),
        p.exe.clone(),
        default_quota,
        apps.clone(),
    );
    follower.run_previews(previews.clone());
    Ok(micro_api::ApiState::new(micro_api::Shared {
        store: p.store.clone(),
        repos: p.repos.clone(),
        controller: p.controller.clone(),
        hook_exe: p.exe,
        http: micro_edge::upstream::client(p.controller.runtime().clone()),
        service_tls: p.tls.platform_client.clone().map(|platform| {
            Arc::new(micro_api::service_tls::ServiceTls::new(
                platform,
                p.controller.runtime().clone(),
            ))
        }),
        source_base: args
            .source_base
            .clone()
            .map(|b| b.trim_end_matches('/').to_owned()),
        single_tenant: p.single_tenant,
        // Five free failures per account and address, then 5 s, 10 s, … up to 5 min;
        // 30 attempts a minute per client address.
        login_backoff: Arc::new(micro_api::limiter::Backoff::new(
            5,
            Duration::from_secs(5),
            Duration::from_secs(300),
        )),
        address_limiter: Arc::new(micro_api::limiter::address_limiter(30)),
        // A poll every 2 s from the CLI and a page refresh every 3 s fit with room.
        poll_limiter: Arc::new(micro_api::limiter::address_limiter(120)),
        default_quota,
        manifests: Arc::new(move |desired, quota, only| micro_api::Rendered {
            items: micro_kubernetes::render::manifests(&cluster, desired, quota, only),
            warnings: micro_kubernetes::render::warnings(&cluster, desired),
        }),
        mailer: p.mailer,
        router_log: p.router_log,
        domains_changed: p.domains_changed,
        metrics: p.metrics,
        traffic: p.traffic,
        ca_pem: p.tls.ca_pem.clone(),
        apps,
        previews: Some(previews),
        calls_seen: Arc::default(),
        backup: Some(make_backup(
            args.store.clone(),
            p.repos.root().parent().unwrap_or(p.repos.root()).to_owned(),
        )),
        public_url: p.public_url,
        sources: p.sources,
        signup: args.billing.mode(),
        trust_domain: args.tls.trust_domain.clone(),
        paid: p.paid,
        suspensions: suspensions(p.store, p.repos, p.controller),
        fetch_link: Some(Arc::new(move |ns: &str| {
            follower.enqueue(ns, micro_forge::Target::Branch, None, Trigger::Push);
        })),
    }))
}

/// Suspensions made visible beside each repo; a change has the reconciler take it up.
fn suspensions(store: &Store, repos: &Repos, controller: &Arc<Controller>) -> Suspensions {
    let controller = controller.clone();
    Suspensions::new(
        store.clone(),
        repos.clone(),
        Arc::new(move |ns: &str| controller.queue().trigger(ns, Trigger::Suspension)),
    )
}

/// The default namespace, and what the store says of every namespace written beside
/// its repo (suspensions, quotas) for the hook and the reconciles.
async fn publish_marks(api: &micro_api::ApiState, store: &Store) -> Result<()> {
    micro_api::namespaces::ensure(api, DEFAULT_NAMESPACE)
        .await
        .map_err(|e| ServerError::new(format!("namespace {DEFAULT_NAMESPACE}: {e}")))?;
    api.suspensions
        .publish_all()
        .await
        .map_err(|e| ServerError::new(format!("suspensions: {e}")))?;
    for ns in store.list_namespaces().await? {
        micro_api::publish_quota(api, &ns)
            .await
            .map_err(|e| ServerError::new(format!("quota of {ns}: {e}")))?;
    }
    Ok(())
}

/// Everything the server answers: the API, git, the forges' hooks and, in paid mode,
/// Stripe's; one request span each.
fn routers(
    args: &ServerArgs,
    api: &micro_api::ApiState,
    follower: &Arc<micro_forge::Follower>,
    paid: Option<billing::Paid>,
    tasks: &Tasks,
) -> axum::Router {
    let pushed: Option<micro_githost::Pushed> = api.previews.clone().map(|previews| {
        let pushed: micro_githost::Pushed = Arc::new(move |ns: &str| {
            let (previews, ns) = (previews.clone(), ns.to_owned());
            tokio::spawn(async move {
                if let Err(e) = previews.sync_branches(&ns).await {
                    tracing::warn!(namespace = %ns, error = %e, "branch previews not updated");
                }
            });
        });
        pushed
    });
    let git = micro_githost::router(micro_githost::GitState {
        store: api.store.clone(),
        repos_root: api.repos.root().to_owned(),
        pushes: Default::default(),
        trust_domain: args.tls.trust_domain.clone(),
        pushed,
    });
    let hooks = micro_forge::intake::router(micro_forge::HookState::new(
        api.store.clone(),
        follower.clone(),
    ));
    let mut app = micro_api::router(api.clone()).merge(git).merge(hooks);
    if let Some(paid) = paid {
        app = app.merge(paid.start(api, tasks));
    }
    app.route_layer(axum::middleware::from_fn(micro_api::trace::requests))
}

/// The admin's token for the CLI on this machine: the one it holds, if still the
/// admin's; else a new one (the admin account is made on first start).
/// `micro admin token create`: a new token for admin `email` (made an admin account if
/// there is none), straight from the store a server of `store_spec` and `data` uses (on
/// the server's machine or in its pod), for the first admin of a cluster. Refuses an
/// address that is someone's non-admin account.
pub async fn mint_admin_token(store_spec: &str, data: &Path, email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') {
        bail!("{email:?} is not an email address");
    }
    let (store_url, _) = database::store_url(store_spec);
    let store = Store::open(&store_url, data)
        .await
        .context("cannot open the store")?;
    let admin = match store.account_by_email(&email).await? {
        Some(a) if a.role == Role::Admin => a,
        Some(_) => bail!("{email} is an account already, and not an admin's: pick another address"),
        None => store.create_account(&email, Role::Admin, None).await?,
    };
    Ok(store.mint_token(&admin, "micro admin token create").await?)
}

async fn admin_token(store: &Store, held: Option<String>) -> Result<String> {
    let admin = match store.account_by_email(ADMIN_EMAIL).await? {
        Some(a) => a,
        None => {
            store
                .create_account(ADMIN_EMAIL, Role::Admin, Some(DEFAULT_NAMESPACE))
                .await?
        }
    };
    if let Some(token) = held
        && store
            .authenticate(&token)
            .await?
            .is_some_and(|a| a.id == admin.id)
    {
        return Ok(token);
    }
    Ok(store.mint_token(&admin, "micro server").await?)
}

/// Connections below the descriptor limit (raised to its hard maximum first), leaving
/// room for repos, logs and the store.
fn serve_limits(args: &ServerArgs) -> micro_api::serve::Limits {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let header_timeout = Duration::from_secs(args.header_timeout.max(1));
    let mut limits = micro_api::serve::Limits {
        max_connections: args.max_connections,
        max_per_client: args.max_connections_per_client.max(1),
        header_timeout,
        body_rate: micro_api::serve::BodyRate {
            grace: header_timeout,
            min_bytes_per_sec: args.min_body_rate.max(1),
        },
        trusted_proxies: micro_api::serve::TrustedProxies::new(args.trusted_proxy.clone()),
        ..micro_api::serve::Limits::default()
    };
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    // People's pool and services' pool together stay below half of the descriptors.
    limits.max_connections = limits.max_connections.min(edge::descriptor_room()).max(16);
    limits
}

/// How services run: sandboxed or not ([`sandbox_or_not`]), builds with the operator's
/// `--build-env`.
fn isolation(
    args: &ServerArgs,
    api: SocketAddr,
    data: &Path,
    doors: &micro_api::serve::Doors,
) -> Result<Isolation> {
    let mut isolation = sandbox_or_not(args, api, data, doors)?;
    isolation.build_env = args
        .build_env
        .iter()
        .flat_map(|env| env.0.iter().cloned())
        .collect();
    Ok(isolation)
}

/// The sandbox, or single-tenant mode said out loud; never tenants unsandboxed in silence.
fn sandbox_or_not(
    args: &ServerArgs,
    api: SocketAddr,
    data: &Path,
    doors: &micro_api::serve::Doors,
) -> Result<Isolation> {
    if args.sandbox == SandboxMode::Off {
        tracing::warn!(
            "--sandbox off: services run unsandboxed; single-tenant mode (one namespace)"
        );
        return Ok(Isolation::default());
    }
    let options = SandboxOptions {
        api: loopback(api),
        doors: Some(Arc::new(doors.clone())),
        egress: args.service_egress,
        build: micro_runtime_local::BuildNetwork {
            egress: match args.build_egress {
                crate::args::BuildEgressMode::Public => micro_runtime_local::BuildEgress::Public,
                crate::args::BuildEgressMode::None => micro_runtime_local::BuildEgress::None,
            },
            allow: args
                .build_egress_allow
                .iter()
                .flat_map(|a| a.0.iter().copied())
                .collect(),
        },
    };
    let api_port = options.api.port();
    if let Some(clash) = options
        .build
        .allow
        .iter()
        .find(|a| a.ip().is_loopback() && a.port() == api_port)
    {
        bail!(
            "--build-egress-allow {clash}: that is the platform's own API port, which builds reach already"
        );
    }
    match Isolation::sandboxed(options, data) {
        Ok(isolation) => {
            tracing::info!(
                egress = args.service_egress,
                build_egress = ?args.build_egress,
                "services run sandboxed (bubblewrap, pasta, cgroups)"
            );
            if let Some(sandbox) = isolation.sandbox.as_ref().filter(|s| {
                args.build_egress == crate::args::BuildEgressMode::Public && !s.builds_connect()
            }) {
                tracing::warn!("{}", sandbox.build_network_said());
            }
            Ok(isolation)
        }
        Err(e) if args.sandbox == SandboxMode::On => bail!("--sandbox on: {e}"),
        Err(e) => {
            tracing::warn!(
                "no sandbox for services ({e}): single-tenant mode, this server hosts one namespace only"
            );
            Ok(Isolation::default())
        }
    }
}

/// The address to reach a listener on from this machine.
fn loopback(address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    }
}

/// The safety net for missed triggers. Jittered (±10%) so that servers started together
/// do not resync in step.
async fn resync(controller: Arc<Controller>, every: Duration) {
    loop {
        let jitter = 0.9 + 0.2 * micro_reconciler::controller::rand_fraction();
        tokio::time::sleep(every.mul_f64(jitter)).await;
        if let Err(e) = controller.trigger_all(Trigger::Resync).await {
            tracing::error!(error = %e, "resync");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
}

/// This machine's memory (`MemTotal` in `/proc/meminfo`), in bytes.
fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}
