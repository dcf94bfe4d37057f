use micro_reconciler::Controller;
use micro_store::Store;
use micro_tenant::Repos;
use std::path::PathBuf;
use std::sync::Arc;

/// Asks for a namespace's linked branch to be fetched (the follower lives in a crate the
/// API does not depend on).
pub type FetchLink = Arc<dyn Fn(&str) + Send + Sync>;

/// Writes a backup archive of the whole platform, sealed with the passphrase given; the
/// file it wrote (the caller streams and removes it), or why not, in one line.
pub type MakeBackup = Arc<
    dyn Fn(String) -> futures_util::future::BoxFuture<'static, Result<std::path::PathBuf, String>>
        + Send
        + Sync,
>;

/// What the handlers share; passed explicitly to the router. Every request's extractors
/// take it, so a clone is one reference count, not a copy of the settings.
#[derive(Clone)]
pub struct ApiState(Arc<Shared>);

impl ApiState {
    pub fn new(shared: Shared) -> Self {
        ApiState(Arc::new(shared))
    }
}

impl std::ops::Deref for ApiState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What a namespace at one revision becomes on a cluster, secret values hidden, for
/// `micro manifests` (the renderer lives in a crate the API does not depend on): the
/// desired state, its quota, and optionally the one service to show.
pub type RenderManifests = Arc<
    dyn Fn(&micro_tenant::DesiredNamespace, &micro_tenant::quota::Quota, Option<&str>) -> Rendered
        + Send
        + Sync,
>;

/// A namespace's objects as the cluster would get them, and what a reviewer should know
/// about them (a language with no runner image of its own).
pub struct Rendered {
    pub items: Vec<serde_json::Value>,
    pub warnings: Vec<String>,
}

/// What [`ApiState`] holds.
pub struct Shared {
    pub store: Store,
    pub repos: Repos,
    pub controller: Arc<Controller>,
    /// The `micro` binary new repos' hooks run.
    pub hook_exe: PathBuf,
    /// Forwards `micro call` to services (directly into a sandboxed replica's network).
    pub http: micro_edge::upstream::Upstream,
    /// Forwards calls to services that serve TLS (none without a platform CA).
    pub service_tls: Option<Arc<crate::service_tls::ServiceTls>>,
    /// Failed logins per (account, client address).
    pub login_backoff: Arc<crate::limiter::Backoff>,
    /// Login attempts per client address.
    pub address_limiter: Arc<crate::limiter::AddressLimiter>,
    /// Polls while a payment is confirmed (the CLI's claim, the return page) per client
    /// address: more often than logins, still bounded.
    pub poll_limiter: Arc<crate::limiter::AddressLimiter>,
    /// Where short source names (`micro run greeter`) resolve: `<base>/<name>`.
    pub source_base: Option<String>,
    /// The runtime cannot sandbox tenants: the platform hosts one namespace only.
    pub single_tenant: bool,
    /// Every namespace's quota unless an admin changed it (`--default-quota`).
    pub default_quota: micro_tenant::quota::Quota,
    /// Where users and forges reach this server (webhook URLs are built from it).
    pub public_url: String,
    /// Where the platform may fetch linked repos and sources from.
    pub sources: micro_tenant::sources::SourcePolicy,
    /// Asks for a linked namespace's branch to be fetched now (set by the server).
    pub fetch_link: Option<FetchLink>,
    /// The SPIFFE trust domain of service certificates (`--trust-domain`).
    pub trust_domain: String,
    /// How people get accounts: admins only, open sign-up, or paid.
    pub signup: crate::types::SignupMode,
    /// Paid mode's Checkout and grace period (`None` unless `--signup paid`).
    pub paid: Option<micro_billing::PaidPlan>,
    /// Who is suspended, kept visible beside each repo.
    pub suspensions: micro_billing::Suspensions,
    /// Where sign-up codes and notices go: SMTP, or the outbox.
    pub mailer: crate::mail::Mailer,
    /// What tenants become on a cluster (`micro manifests`), as the Kubernetes runtime
    /// renders them with this server's cluster settings.
    pub manifests: RenderManifests,
    /// Where the edge serves public services (none without `--apps-domain`).
    pub apps: Option<crate::apps::Apps>,
    /// The edge's lines per request, per service (none without an edge).
    pub router_log: Option<Arc<micro_edge::RouterLog>>,
    /// Told when a namespace claims or gives up a custom domain (the domain keeper
    /// waits on it).
    pub domains_changed: Arc<tokio::sync::Notify>,
    /// What `/metrics` serves (the reconciler's figures, the edge's per service).
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// The edge's recent figures per service, for `micro describe` (none without an edge).
    pub traffic: Option<Arc<micro_edge::Traffic>>,
    /// The platform CA, when the server's certificate is its own (`/api/v1/ca.pem`, and
    /// its fingerprint in what tells people how to start).
    pub ca_pem: Option<String>,
    /// `micro admin backup --platform`: the server's own backup (set by the server).
    pub backup: Option<MakeBackup>,
    /// Preview environments (pull requests' and branches' heads running).
    pub previews: Option<Arc<micro_previews::Previews>>,
    /// Calls between services already recorded (namespace, caller, callee): one write
    /// per pair per run of the server.
    pub calls_seen: Arc<std::sync::Mutex<std::collections::HashSet<(String, String, String)>>>,
}

impl Shared {
    /// What a new user types to talk to this platform as `name`: the CA's fingerprint
    /// pinned when the platform has its own.
    pub fn env_add_command(&self, name: &str) -> String {
        match self
            .ca_pem
            .as_deref()
            .and_then(|pem| micro_pki::fingerprint(pem).ok())
        {
            Some(fp) => format!(
                "micro env add {name} {} --ca-fingerprint {fp}",
                self.public_url
            ),
            None => format!("micro env add {name} {}", self.public_url),
        }
    }

    /// The URL the edge serves `service` of `namespace` at, if it does.
    pub fn url_of(&self, namespace: &str, service: &str) -> Option<String> {
        self.apps
            .as_ref()?
            .url(self.controller.exposure(), namespace, service)
    }
}
