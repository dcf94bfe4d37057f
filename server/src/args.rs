//! `micro server`'s flags. Each group of flags that a part of the platform owns (TLS,
//! sign-up and billing, the cluster) is that part's, flattened in here.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where the platform keeps its data [default: $MICRO_HOME/server]
    #[arg(long, env = "MICRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Stop the services a stopped server left running (they outlive it, so restarts and
    /// upgrades do not interrupt them), remove their cgroups and volumes, and exit: for
    /// maintenance, or before uninstalling. Stop the server first.
    #[arg(long)]
    pub stop_services: bool,
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
    /// Variables every build gets, `KEY=VALUE`, comma-separated or repeated (a package
    /// mirror: `PIP_INDEX_URL=…`, `npm_config_registry=…`); a service's own `env` wins
    #[arg(long, env = "MICRO_BUILD_ENV", value_parser = parse_build_env, action = clap::ArgAction::Append)]
    pub build_env: Vec<BuildEnv>,
    /// Where sandboxed builds may connect: `public` addresses (package registries) and
    /// the resolver, never this machine, its networks or link-local addresses; or `none`
    #[arg(long, env = "MICRO_BUILD_EGRESS", value_enum, default_value_t = BuildEgressMode::Public)]
    pub build_egress: BuildEgressMode,
    /// An address builds may reach although it is private or this machine's, `HOST:PORT`,
    /// comma-separated or repeated (an operator's package mirror; one on this machine as
    /// 127.0.0.1:PORT)
    #[arg(long, env = "MICRO_BUILD_EGRESS_ALLOW", value_parser = parse_egress_allow, action = clap::ArgAction::Append)]
    pub build_egress_allow: Vec<EgressAllow>,
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
    #[command(flatten)]
    pub edge: crate::edge::EdgeArgs,
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

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildEgressMode {
    Public,
    None,
}

/// `--build-egress-allow`: addresses builds may reach beyond the public ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressAllow(pub Vec<std::net::SocketAddr>);

/// `HOST:PORT[,HOST:PORT…]`, each name resolved now (every address it has).
pub fn parse_egress_allow(text: &str) -> Result<EgressAllow, String> {
    use std::net::ToSocketAddrs;
    let mut all = Vec::new();
    for item in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let port = item
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .filter(|(host, port)| !host.is_empty() && *port != 0 && !host.ends_with(':'));
        if port.is_none() {
            return Err(format!(
                "{item:?} is not HOST:PORT (like 127.0.0.1:3141 or mirror.internal:443)"
            ));
        }
        let found: Vec<_> = item
            .to_socket_addrs()
            .map_err(|e| format!("{item}: cannot resolve it ({e}); give an address"))?
            .collect();
        if found.is_empty() {
            return Err(format!("{item}: the name has no address; give an address"));
        }
        all.extend(found);
    }
    Ok(EgressAllow(all))
}

/// `--build-env`: the variables every build gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildEnv(pub Vec<(String, String)>);

/// `KEY=VALUE[,KEY=VALUE…]`; keys are environment names, never the platform's own
/// (`MICRO_…`, `PATH`, `HOME`, which every build gets from the platform).
pub fn parse_build_env(text: &str) -> Result<BuildEnv, String> {
    let mut vars = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!(
                "{pair:?} is not KEY=VALUE (like PIP_INDEX_URL=https://mirror.example/simple)"
            ));
        };
        let valid = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid || value.contains('\0') {
            return Err(format!("{key:?} is not an environment variable name"));
        }
        if key.starts_with("MICRO_") || key == "PATH" || key == "HOME" {
            return Err(format!("{key} is the platform's to set, not a build's"));
        }
        vars.push((key.to_owned(), value.to_owned()));
    }
    Ok(BuildEnv(vars))
}

#[cfg(test)]
mod build_tests {
    use super::*;

    #[test]
    fn build_env_and_egress_allow_take_pairs_and_refuse_what_is_not_a_builds() {
        let env = parse_build_env(
            "PIP_INDEX_URL=https://mirror.test/simple, npm_config_registry=https://npm.test/",
        )
        .unwrap();
        assert_eq!(
            env.0,
            [
                (
                    "PIP_INDEX_URL".to_owned(),
                    "https://mirror.test/simple".to_owned()
                ),
                (
                    "npm_config_registry".to_owned(),
                    "https://npm.test/".to_owned()
                ),
            ]
        );
        assert_eq!(parse_build_env("").unwrap(), BuildEnv::default());
        let allow = parse_egress_allow("127.0.0.1:3141, [::1]:4873").unwrap();
        assert_eq!(
            allow.0,
            [
                "127.0.0.1:3141".parse().unwrap(),
                "[::1]:4873".parse().unwrap()
            ]
        );
        for bad in ["127.0.0.1", "127.0.0.1:0", "mirror:x", ":80"] {
            let err = parse_egress_allow(bad).unwrap_err();
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(bad), "{err}");
        }
        for bad in ["PIP_INDEX_URL", "1X=y", "MICRO_TOKEN=x", "PATH=/tmp"] {
            let err = parse_build_env(bad).unwrap_err();
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}
