//! The public edge's listener: where it listens, the apps domain its services' hosts
//! are under, and its certificate (the operator's wildcard, read again when renewed, or
//! one the platform CA issues).

use crate::error::{Context, Result, ServerError};
use crate::tasks::Tasks;
use micro_pki::CertSource;
use micro_reconciler::Controller;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct EdgeArgs {
    /// Serve services whose spec says `public: true` at
    /// https://<service>-<namespace>.<DOMAIN> (point a wildcard DNS record for the domain
    /// at this machine); without it there is no edge
    #[arg(long, env = "MICRO_APPS_DOMAIN")]
    pub apps_domain: Option<String>,
    /// Where the edge listens
    #[arg(long, env = "MICRO_EDGE_ADDRESS", default_value = "0.0.0.0:443")]
    pub edge_address: SocketAddr,
    /// Where the edge takes plain HTTP, only to send it to HTTPS (`off`: nowhere)
    #[arg(long, env = "MICRO_EDGE_HTTP_ADDRESS", default_value = "0.0.0.0:80")]
    pub edge_http_address: HttpAddress,
    /// Requests per second the edge takes from one client address (bursts of twice
    /// that; more get 429 with Retry-After); 0: no limit
    #[arg(long, env = "MICRO_EDGE_RATE_LIMIT", default_value_t = 0)]
    pub edge_rate_limit: u32,
    /// Most open connections the edge holds at once (kept below a quarter of the
    /// descriptor limit); past it, new ones wait in the kernel's backlog
    #[arg(long, env = "MICRO_EDGE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub edge_max_connections: usize,
    /// Most open connections to the edge from one client address; past it, a new one is
    /// closed at once
    #[arg(
        long,
        env = "MICRO_EDGE_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 256
    )]
    pub edge_max_connections_per_client: usize,
    /// The edge's certificate (PEM, leaf first): a wildcard for the apps domain, read
    /// again whenever it changes. Without it the platform CA issues one, which only
    /// clients that trust that CA accept
    #[arg(long, env = "MICRO_APPS_CERT", requires = "apps_key")]
    pub apps_cert: Option<PathBuf>,
    /// The key of --apps-cert (PEM)
    #[arg(long, env = "MICRO_APPS_KEY", requires = "apps_cert")]
    pub apps_key: Option<PathBuf>,
    /// The ACME CA (RFC 8555) that certifies custom domains (`micro domains add`): its
    /// directory URL, or `off`
    #[arg(
        long,
        env = "MICRO_ACME_DIRECTORY",
        default_value = "https://acme-v02.api.letsencrypt.org/directory"
    )]
    pub acme_directory: String,
    /// The contact the ACME account is registered with
    #[arg(long, env = "MICRO_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// The ACME CA's own TLS root (PEM), when it is not publicly trusted (a private or
    /// test CA such as Pebble)
    #[arg(long, env = "MICRO_ACME_CA_FILE")]
    pub acme_ca_file: Option<PathBuf>,
    /// The DNS server custom domains' TXT proofs (`_micro-challenge.<host>`) are looked
    /// up at, as ADDRESS:PORT (default: the system's resolvers)
    #[arg(long, env = "MICRO_DNS_RESOLVER")]
    pub dns_resolver: Option<SocketAddr>,
}

/// `--edge-http-address`: an address, or `off`.
#[derive(Clone, Copy, Debug)]
pub struct HttpAddress(Option<SocketAddr>);

impl std::str::FromStr for HttpAddress {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        if text == "off" {
            return Ok(HttpAddress(None));
        }
        text.parse()
            .map(|a| HttpAddress(Some(a)))
            .map_err(|e| format!("{e}: an address like 0.0.0.0:80, or off"))
    }
}

/// What the edge is started with besides its flags: where its router lines and figures go, the
/// store (API keys, custom domains), the data dir (their certificates), and the signal
/// the API gives when a claim changes.
pub(crate) struct Parts<'a> {
    pub log: Arc<micro_edge::RouterLog>,
    pub traffic: Arc<micro_edge::Traffic>,
    pub store: &'a micro_store::Store,
    pub data: &'a std::path::Path,
    pub domains_changed: &'a Arc<tokio::sync::Notify>,
}

/// Days a certificate the platform CA issues the edge is valid.
const EDGE_CERT_DAYS: i64 = 90;

/// Binds the edge and serves it under `tasks` until the server stops; where it listens.
/// Nothing without `--apps-domain`.
pub(crate) async fn start(
    args: &EdgeArgs,
    tls: &crate::tls::ServerTls,
    controller: &Controller,
    limits: micro_api::serve::Limits,
    parts: Parts<'_>,
    tasks: &Tasks,
) -> Result<Option<SocketAddr>> {
    let Parts {
        log,
        traffic,
        store,
        data,
        domains_changed,
    } = parts;
    let Some(domain) = &args.apps_domain else {
        return Ok(None);
    };
    // The API's timeouts, the edge's own connection caps: the public holds many more
    // connections than the platform's users do.
    let limits = micro_api::serve::Limits {
        max_connections: args.edge_max_connections.min(descriptor_room()).max(16),
        max_per_client: args.edge_max_connections_per_client.max(1),
        upgrades: true,
        http2: true,
        ..limits
    };
    let edge = micro_edge::Edge::new(
        domain,
        "https",
        controller.exposure().clone(),
        controller.runtime().clone(),
    )
    .map_err(|e| ServerError::new(e.to_string()))?
    .rate_limited(args.edge_rate_limit)
    .logging_to(log)
    .counting_in(traffic.clone())
    .checking_keys(key_owner(store.clone()));
    // A service that is no longer public leaves no figures behind.
    let exposure = controller.exposure().clone();
    tasks.spawn(tracing::info_span!("edge_traffic"), async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            traffic.prune(|namespace, service| exposure.find_service(namespace, service).is_some());
        }
    });
    // Custom domains: the keeper proves and certifies them; the edge serves the proven.
    let challenges = Arc::new(micro_acme::Challenges::default());
    let certs = Arc::new(micro_pki::HostCerts::default());
    let hosts = Arc::new(micro_edge::CustomHosts::default());
    let answers = challenges.clone();
    let edge = edge
        .serving_domains(hosts.clone())
        .answering_challenges(Arc::new(move |token: &str| answers.answer(token)));
    let acme = (args.acme_directory != "off").then(|| crate::domains::AcmeSettings {
        directory: args.acme_directory.clone(),
        email: args.acme_email.clone(),
        ca_file: args.acme_ca_file.clone(),
        dir: data.join("acme"),
        tls_alpn: args.edge_http_address.0.is_none(),
    });
    tasks.spawn(
        tracing::info_span!("domains"),
        crate::domains::Keeper {
            store: store.clone(),
            acme,
            challenges,
            certs: certs.clone(),
            hosts,
            changed: domains_changed.clone(),
            txt: crate::domains::Txt::new(args.dns_resolver),
            apps: args.apps_cert.is_none().then(|| crate::domains::AppsHosts {
                domain: domain.trim_end_matches('.').to_ascii_lowercase(),
                exposure: controller.exposure().clone(),
            }),
        }
        .run(),
    );
    let source = match (&args.apps_cert, &args.apps_key, &tls.ca) {
        (Some(cert), Some(key), _) => {
            crate::files::private_file(key, "--apps-key")?;
            CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }
        }
        (_, _, Some(ca)) => CertSource::Issued(
            ca.issue_server(&[format!("*.{domain}")], EDGE_CERT_DAYS)
                .context("the edge's certificate")?,
        ),
        _ => {
            return Err(ServerError::new(
                "--apps-domain: the edge serves HTTPS only; give it --apps-cert and --apps-key (this server has no CA of its own with --insecure-http)",
            ));
        }
    };
    let config = micro_pki::server_config_with_hosts(source, certs).context("the edge's TLS")?;
    let listener = tokio::net::TcpListener::bind(args.edge_address)
        .await
        .with_context(|| format!("--edge-address {}", args.edge_address))?;
    let local = listener
        .local_addr()
        .context("the edge's listening address")?;
    if let HttpAddress(Some(address)) = args.edge_http_address {
        let plain = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("--edge-http-address {address}"))?;
        tasks.spawn(
            tracing::info_span!("edge_http", %address),
            micro_api::serve::serve(
                plain,
                edge.clone().redirect_router(local.port()),
                limits.clone(),
                None,
                None,
                std::future::pending(),
            ),
        );
    }
    tasks.spawn(
        tracing::info_span!("edge", address = %local),
        micro_api::serve::serve(
            listener,
            edge.router(),
            limits,
            Some(Arc::clone(&config)),
            None,
            std::future::pending(),
        ),
    );
    tracing::info!(address = %local, domain = %domain, "edge serving public services");
    Ok(Some(local))
}

/// A quarter of the descriptor limit (which the server raises to its hard limit at
/// start): each pool's share (people's and services' at the API, the edge's).
pub(crate) fn descriptor_room() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .and_then(|(soft, _)| usize::try_from(soft / 4).ok())
        .unwrap_or(usize::MAX)
}

/// API keys as the store knows them; a store that cannot answer lets no key through.
fn key_owner(store: micro_store::Store) -> micro_edge::KeyOwner {
    Arc::new(move |key: String| {
        let store = store.clone();
        Box::pin(async move {
            store.api_key_namespace(&key).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "API key lookup failed; refused");
                None
            })
        })
    })
}
