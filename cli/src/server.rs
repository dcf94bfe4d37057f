//! `micro server`: the composition root. It wires store, repos, runtime, reconciler, the
//! git endpoint and the API together; the crates do the work.

use crate::home::{BUILTIN_ENV, Env, Home};
use anyhow::{Context, Result, bail};
use micro_reconciler::{Controller, Trigger};
use micro_runtime::Runtime;
use micro_runtime_local::{Dirs, Isolation, LocalRuntime, SandboxOptions};
use micro_store::{Role, Store};
use micro_tenant::Repos;
use micro_tenant::sources::SourcePolicy;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_NAMESPACE: &str = "default";
const ADMIN_EMAIL: &str = "admin@localhost";

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where the platform keeps its data [default: $MICRO_HOME/server]
    #[arg(long, env = "MICRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on
    #[arg(long, env = "MICRO_ADDRESS", default_value = "127.0.0.1:8081")]
    pub address: SocketAddr,
    /// The store: `sqlite` (a file in the data dir), `memory`, or a `postgres://` URL
    /// (PostgreSQL or CockroachDB)
    #[arg(long, env = "MICRO_STORE", default_value = "sqlite")]
    pub store: String,
    /// Reconciles running at once across namespaces
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seconds between full resyncs (the safety net for missed changes)
    #[arg(long, default_value_t = 180)]
    pub resync: u64,
    /// Where services run: `local` processes, `kubernetes` (a cluster: see --kubeconfig),
    /// or `none` (plan-only: desired state, history and diffs are tracked, nothing is
    /// started)
    #[arg(long, env = "MICRO_RUNTIME", value_enum, default_value_t = RuntimeKind::Local)]
    pub runtime: RuntimeKind,
    /// Base URL that short source names resolve against: `micro run greeter` runs
    /// `<base>/greeter`
    #[arg(long, env = "MICRO_SOURCE_BASE")]
    pub source_base: Option<String>,
    /// Isolation of tenant services (local runtime): `auto` sandboxes them where this
    /// machine can (root, bubblewrap, pasta, cgroup v1) and otherwise runs single-tenant;
    /// `on` refuses to start without the sandbox; `off` runs single-tenant
    #[arg(long, env = "MICRO_SANDBOX", value_enum, default_value_t = SandboxMode::Auto)]
    pub sandbox: SandboxMode,
    /// Let sandboxed services open connections beyond this machine (the internet)
    #[arg(long, env = "MICRO_SERVICE_EGRESS")]
    pub service_egress: bool,
    /// Let services' `source.git` be file:// or a loopback/private address (single-team
    /// installs, tests); the platform's own data dir is never a source
    #[arg(long, env = "MICRO_ALLOW_LOCAL_SOURCES")]
    pub allow_local_sources: bool,
    /// Most open client connections (kept below half the descriptor limit)
    #[arg(long, env = "MICRO_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// Most open connections from one client address, and from one namespace's services
    /// (a trusted proxy's are not capped)
    #[arg(long, env = "MICRO_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64)]
    pub max_connections_per_client: usize,
    /// Seconds a client has to send request headers, and may idle between requests; also
    /// the time a request body may take before --min-body-rate counts
    #[arg(long, env = "MICRO_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Bytes per second a request body must average (after --header-timeout seconds), or
    /// its connection is closed: a body trickling in cannot hold a connection for ever
    #[arg(long, env = "MICRO_MIN_BODY_RATE", default_value_t = 1024)]
    pub min_body_rate: u64,
    /// A proxy (an address or CIDR range, repeatable or comma-separated) whose
    /// X-Forwarded-For names the client, for per-client limits; from anyone else the
    /// header is ignored
    #[arg(long, env = "MICRO_TRUSTED_PROXY", value_delimiter = ',', value_parser = micro_api::serve::parse_net)]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// Every namespace's quota unless an admin sets another, as `key=value,...` over the
    /// built-in defaults: services, replicas, cpu, memory, repo-size, checkout-files,
    /// checkout-size, pushes-per-minute, store-size, build-time (e.g. `services=20,memory=8Gi`)
    #[arg(long, env = "MICRO_DEFAULT_QUOTA", default_value = "")]
    pub default_quota: String,
    /// The file holding the key config values are sealed with in the store (64 hex
    /// digits; created if missing) [default: <data dir>/config.key]. Keep it (or
    /// MICRO_CONFIG_KEY) apart from the database's backups
    #[arg(long, env = "MICRO_CONFIG_KEY_FILE")]
    pub config_key_file: Option<PathBuf>,
    /// The URL users and forges reach this server at; webhook URLs are built from it
    /// [default: http://<address>]
    #[arg(long, env = "MICRO_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub billing: crate::billing::BillingArgs,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
    /// Seconds between fetches of every linked repo (±20%), the safety net for lost
    /// webhook deliveries
    #[arg(long, env = "MICRO_POLL", default_value_t = 300)]
    pub poll: u64,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxMode {
    Auto,
    On,
    Off,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    Local,
    Kubernetes,
    None,
}

/// Holds the data dir for this server's lifetime. A second server on the same data dir
/// would reap the first one's services and fight it over every namespace, so it stops
/// here instead. The OS drops the lock when the process dies, even by SIGKILL.
fn lock_data_dir(data: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = data.join("server.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        bail!(
            "data dir {} is in use by another `micro server` (pid {}); stop it or pass another --data-dir",
            data.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

pub async fn run(args: ServerArgs) -> Result<()> {
    // Flags are checked before anything is written.
    let mut cluster = args.cluster.settings()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MICRO_LOG")
                .unwrap_or_else(|_| "info,notify=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let home = Home::locate()?;
    let data = args
        .data_dir
        .clone()
        .unwrap_or_else(|| home.dir().join("server"));
    // Everything the server writes is its own: the store, repos, logs, tokens.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create data dir {}", data.display()))?;
    restrict(&data, 0o700)?;
    let data = data.canonicalize()?;
    let _lock = lock_data_dir(&data)?;
    // Fail on a taken address before the store or any service is touched.
    let listener = tokio::net::TcpListener::bind(args.address)
        .await
        .with_context(|| format!("cannot listen on {}", args.address))?;
    let local = listener.local_addr()?;
    let limits = serve_limits(&args);
    // Each namespace's services reach the API through a door of their own.
    let doors = micro_api::serve::Doors::new(&limits);
    let exe = std::env::current_exe().context("cannot find the micro binary")?;

    let (store_url, unverified) = crate::database::store_url(&args.store);
    if let Some(warning) = unverified {
        tracing::warn!("{warning}");
    }
    let store = Store::open(&store_url, &data)
        .await
        .context("cannot open the store")?
        .with_sealer(config_key(&args, &data)?);
    for file in ["store.db", "store.db-wal", "store.db-shm"] {
        let path = data.join(file);
        if path.exists() {
            restrict(&path, 0o600)?;
        }
    }
    let repos = Repos::new(data.join("repos"));
    std::fs::create_dir_all(repos.root())?;
    repos.remove_deleted_leftovers();
    for ns in store.list_namespaces().await? {
        repos.install_hook(&ns, &exe)?;
    }

    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(base) = &args.source_base
        && !micro_tenant::spec::is_source_url(base)
    {
        anyhow::bail!("--source-base {base}: must be an https://, http:// or file:// URL");
    }
    // Sources and linked repos are fetched with the same bounds, whatever the runtime.
    let sources = SourcePolicy {
        allow_local: args.allow_local_sources,
        forbidden: vec![data.clone()],
    };
    micro_tenant::sources::set_network_timeouts(Duration::from_secs(10), Duration::from_secs(30));
    // Tenants' fetches: no redirects, only addresses the policy allows, checked as they
    // are resolved.
    micro_gitnet::register().context("cannot register the checked git transport")?;
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
    let tls = args.tls.server(&data, local, &hosts)?;
    cluster.platform_ca = tls.ca_pem.clone();
    let public_url = match &args.public_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            url.trim_end_matches('/').to_owned()
        }
        Some(url) => bail!("--public-url {url}: an https:// or http:// URL"),
        None => format!("{}://{}", tls.scheme(), loopback(local)),
    };
    let mailer = args.billing.mailer(&public_url)?;
    let paid = args.billing.paid()?;
    // Plan-only mode runs no tenant code, so it needs no sandbox.
    let mut single_tenant = false;
    let runtime: Arc<dyn Runtime> = match args.runtime {
        RuntimeKind::Local => {
            // Whatever the last server ran died with it (or was reaped just now).
            let mut isolation = isolation(&args, local, &data, &doors)?;
            isolation.sources = sources.clone();
            isolation.trust = crate::tls::trust_bundle(&data, tls.ca_pem.as_deref())?;
            isolation.platform_ca = crate::tls::platform_ca_file(&data, tls.ca_pem.as_deref())?;
            single_tenant = !isolation.is_sandboxed();
            // Reaping what a killed server left can wait seconds: not on an async thread.
            let dirs = Dirs::under(&data);
            let local =
                tokio::task::spawn_blocking(move || LocalRuntime::new(dirs, isolation, events_tx))
                    .await??;
            store
                .reset_service_statuses("the platform restarted; starting it again")
                .await?;
            Arc::new(local)
        }
        RuntimeKind::Kubernetes => {
            let client = micro_kubernetes::connect(
                args.cluster.kubeconfig.as_deref(),
                args.cluster.kube_context.as_deref(),
            )
            .await?;
            // Tenants are isolated by namespace and network policy, not by this machine.
            Arc::new(micro_kubernetes::KubeRuntime::start(
                client,
                cluster.clone(),
                events_tx,
            ))
        }
        RuntimeKind::None => {
            drop(events_tx);
            Arc::new(micro_runtime::memory::MemoryRuntime::default())
        }
    };
    micro_tenant::marks::record_support(repos.root(), runtime.support())
        .context("cannot write beside the repos")?;
    // Every deployment is told where the API is and gets its certificate from the first
    // reconcile on: both are known before the controller exists. Plan-only mode runs
    // nothing that could present a certificate: none is issued.
    let runs_services = !matches!(args.runtime, RuntimeKind::None);
    let access = micro_reconciler::controller::PlatformAccess {
        api_url: format!("{}://{}", tls.scheme(), loopback(local)),
        identity: tls.identity_issuer(&args.tls).filter(|_| runs_services),
    };
    let controller = Controller::new(repos.clone(), store.clone(), runtime.clone(), access);
    controller.spawn_identity_renewal();
    tokio::spawn(controller.clone().consume_events(events_rx));
    controller.spawn_workers(args.concurrency);
    let _watcher =
        micro_reconciler::watch::RefWatcher::start(repos.root(), controller.queue().clone())
            .context("cannot watch the repos")?;

    // Linked namespaces: their repos refuse pushes (the hook reads the mark), and the
    // follower fetches what their forges' branches hold.
    for link in store.links().await? {
        let followed = micro_tenant::marks::Followed {
            url: link.url.clone(),
            branch: link.branch.clone(),
        };
        micro_tenant::marks::follow(&repos.path(&link.namespace), Some(&followed))?;
    }
    let follower = micro_forge::Follower::new(
        controller.clone(),
        micro_tenant::linked::Mirrors::new(data.join("mirrors"), sources.clone()),
        micro_forge::rest::Rest::new(sources.clone())?,
        public_url.clone(),
    );
    follower.resume().await?;
    follower.spawn(2, Duration::from_secs(args.poll.max(1)));
    let mut default_quota = micro_tenant::quota::Quota::default();
    default_quota
        .set(&args.default_quota)
        .map_err(|e| anyhow::anyhow!("--default-quota: {e}"))?;
    let api_state = micro_api::ApiState::new(micro_api::Shared {
        store: store.clone(),
        repos: repos.clone(),
        controller: controller.clone(),
        hook_exe: exe,
        http: micro_api::forwarding_client()?,
        service_tls: tls
            .ca
            .as_deref()
            .map(|ca| micro_api::service_tls::ServiceTls::new(ca, &args.tls.trust_domain))
            .transpose()?
            .map(Arc::new),
        source_base: args
            .source_base
            .clone()
            .map(|b| b.trim_end_matches('/').to_owned()),
        single_tenant,
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
        manifests: Arc::new(move |desired, quota, only| {
            micro_kubernetes::render::manifests(&cluster, desired, quota, only)
        }),
        public_url,
        sources,
        signup: args.billing.mode(),
        trust_domain: args.tls.trust_domain.clone(),
        paid: paid.as_ref().map(|p| p.plan.clone()),
        mailer,
        fetch_link: Some({
            let follower = follower.clone();
            Arc::new(move |ns: &str| {
                follower.enqueue(ns, micro_forge::Target::Branch, None, Trigger::Push);
            })
        }),
    });
    micro_api::namespaces::ensure(&api_state, DEFAULT_NAMESPACE)
        .await
        .map_err(|e| anyhow::anyhow!("namespace {DEFAULT_NAMESPACE}: {e}"))?;
    micro_api::suspension::publish_all(&api_state)
        .await
        .map_err(|e| anyhow::anyhow!("suspensions: {e}"))?;
    for ns in store.list_namespaces().await? {
        micro_api::publish_quota(&api_state, &ns)
            .await
            .map_err(|e| anyhow::anyhow!("quota of {ns}: {e}"))?;
    }
    micro_api::sweep::spawn_kv_sweeper(store.clone(), micro_api::sweep::KV_SWEEP_EVERY);
    let billing = paid.map(|p| p.start(&api_state));
    let api = micro_api::router(api_state);
    let git = micro_githost::router(micro_githost::GitState {
        store: store.clone(),
        repos_root: repos.root().to_owned(),
        pushes: Default::default(),
        trust_domain: args.tls.trust_domain.clone(),
    });
    let hooks =
        micro_forge::intake::router(micro_forge::HookState::new(store.clone(), follower.clone()));
    let mut app = api.merge(git).merge(hooks);
    if let Some(billing) = billing {
        app = app.merge(billing);
    }
    controller.resume_deletions().await?;
    controller.trigger_all(Trigger::Startup).await?;
    spawn_resync(controller.clone(), Duration::from_secs(args.resync.max(1)));
    write_cli_env(&home, &store, local, &tls).await?;
    tracing::info!(address = %local, data = %data.display(), store = store.backend(), "micro server ready");
    micro_api::serve::serve(
        listener,
        app,
        limits,
        tls.config.clone(),
        Some(doors),
        shutdown_signal(),
    )
    .await;
    tracing::info!("stopping services");
    runtime.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The key config values are sealed with: MICRO_CONFIG_KEY, or the key file (made on
/// first start).
fn config_key(args: &ServerArgs, data: &Path) -> Result<micro_store::Sealer> {
    if let Ok(hex) = std::env::var("MICRO_CONFIG_KEY") {
        return micro_store::Sealer::from_hex(&hex).context("MICRO_CONFIG_KEY");
    }
    let file = args
        .config_key_file
        .clone()
        .unwrap_or_else(|| data.join("config.key"));
    if !file.exists() {
        std::fs::write(&file, micro_store::Sealer::generate_hex())
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    restrict(&file, 0o600)?;
    let hex = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    micro_store::Sealer::from_hex(&hex).with_context(|| file.display().to_string())
}

/// Refuses a secret file (a key, Stripe's secrets) that every user of this machine may
/// read or write: tenants' services run as users of this machine. Group bits are left
/// alone (Kubernetes shares Secret files through a group; no tenant is in it).
pub fn private_file(path: &Path, flag: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("{flag} {}: cannot read it", path.display()))?
        .permissions()
        .mode();
    if mode & 0o006 != 0 {
        bail!(
            "{flag} {}: every user of this machine may {} it (mode {:04o}), tenants' services included; make it the server's own: chmod 600 {}",
            path.display(),
            if mode & 0o002 != 0 { "change" } else { "read" },
            mode & 0o7777,
            path.display()
        );
    }
    Ok(())
}

/// Owner-only permissions on what an older server (or another umask) left readable.
fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict {}", path.display()))
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
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let fds = if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            hard
        } else {
            soft
        };
        // People's pool and services' pool together stay below half of them.
        let room = usize::try_from(fds / 4).unwrap_or(usize::MAX);
        limits.max_connections = limits.max_connections.min(room).max(16);
    }
    limits
}

/// The sandbox, or single-tenant mode said out loud; never tenants unsandboxed in silence.
fn isolation(
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
    };
    match Isolation::sandboxed(options, data) {
        Ok(isolation) => {
            tracing::info!(
                egress = args.service_egress,
                "services run sandboxed (bubblewrap, pasta, cgroups)"
            );
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

/// Like a single-node Kubernetes writing its kubeconfig: the env `server` points at this
/// server with an admin token, so the CLI works from another terminal with no login.
async fn write_cli_env(
    home: &Home,
    store: &Store,
    address: SocketAddr,
    tls: &crate::tls::ServerTls,
) -> Result<()> {
    let admin = match store.account_by_email(ADMIN_EMAIL).await? {
        Some(a) => a,
        None => {
            store
                .create_account(ADMIN_EMAIL, Role::Admin, Some(DEFAULT_NAMESPACE))
                .await?
        }
    };
    let mut envs = home.load_envs()?;
    let url = format!("{}://{}", tls.scheme(), loopback(address));
    let existing = envs.envs.get(BUILTIN_ENV).cloned();
    let valid = match existing.as_ref().and_then(|e| e.token.as_deref()) {
        Some(t) => store
            .authenticate(t)
            .await?
            .is_some_and(|a| a.id == admin.id),
        None => false,
    };
    let token = match (valid, existing.and_then(|e| e.token)) {
        (true, Some(t)) => t,
        _ => store.mint_token(&admin, "micro server").await?,
    };
    envs.envs.insert(
        BUILTIN_ENV.to_owned(),
        Env {
            url,
            token: Some(token),
            namespace: Some(DEFAULT_NAMESPACE.to_owned()),
            email: Some(ADMIN_EMAIL.to_owned()),
            ca: tls.ca_pem.clone(),
        },
    );
    if envs.current.is_none() {
        envs.current = Some(BUILTIN_ENV.to_owned());
    }
    home.save_envs(&envs)
}

/// The safety net for missed triggers. Jittered (±10%) so that servers started together
/// do not resync in step.
/// The address to reach a listener on from this machine.
fn loopback(address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    }
}

fn spawn_resync(controller: Arc<Controller>, every: Duration) {
    tokio::spawn(async move {
        loop {
            let jitter = 0.9 + 0.2 * micro_reconciler::controller::rand_fraction();
            tokio::time::sleep(every.mul_f64(jitter)).await;
            if let Err(e) = controller.trigger_all(Trigger::Resync).await {
                tracing::error!(error = %e, "resync");
            }
        }
    });
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
