//! The domain keeper: proves the custom domains namespaces claim and keeps them
//! certified. Every few seconds, and whenever a claim changes, it reads the claims,
//! looks up the TXT record `_micro-challenge.<host>` of each unproven one (holding the
//! claim's token proves it), asks the ACME CA for a certificate where one is missing or
//! two thirds through its life (which proves the host by HTTP-01, or TLS-ALPN-01 when the
//! edge has no plain-HTTP listener: its DNS points here),
//! records where each stands for `micro domains list`, and hands the edge the proven
//! hosts and their certificates. A failed order is tried again later, backing off per
//! host.

use micro_acme::{Acme, Certificate};
use micro_pki::HostCerts;
use micro_store::{Domain, DomainState, Store};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often claims are looked at when nothing wakes the keeper.
const ROUND: Duration = Duration::from_secs(10);
/// The first wait after a failed order; doubled each time, up to [`MOST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(10);
const MOST_WAIT: Duration = Duration::from_secs(3600);

/// Where certificates come from.
pub(crate) struct AcmeSettings {
    pub directory: String,
    pub email: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// `<data dir>/acme`.
    pub dir: PathBuf,
    /// Prove hosts by TLS-ALPN-01 on the edge's TLS port (it has no plain-HTTP listener
    /// for HTTP-01).
    pub tls_alpn: bool,
}

/// TLS-ALPN-01 answers, served by the edge's TLS from the hosts' certificate table.
struct AlpnAnswers(Arc<HostCerts>);

impl micro_acme::TlsAlpnResponder for AlpnAnswers {
    fn put(&self, host: &str, cert_pem: &str, key_pem: &str) {
        if let Err(e) = self.0.set_challenge(host, cert_pem, key_pem) {
            tracing::warn!(host = %host, error = %e, "TLS-ALPN-01 answer not served");
        }
    }

    fn remove(&self, host: &str) {
        self.0.remove_challenge(host);
    }
}

/// What the keeper works with, built once.
pub(crate) struct Keeper {
    pub store: Store,
    pub acme: Option<AcmeSettings>,
    pub challenges: Arc<micro_acme::Challenges>,
    pub certs: Arc<HostCerts>,
    pub hosts: Arc<micro_edge::CustomHosts>,
    pub changed: Arc<tokio::sync::Notify>,
    /// TXT proofs (none if no resolver could be made).
    pub txt: Option<Txt>,
    /// The apps domain's own hosts, certified one by one when the operator gave no
    /// wildcard (`--apps-cert`).
    pub apps: Option<AppsHosts>,
}

/// The hosts of the services public now under the apps domain.
pub(crate) struct AppsHosts {
    pub domain: String,
    pub exposure: Arc<micro_reconciler::exposure::Exposure>,
}

impl AppsHosts {
    fn hosts(&self) -> HashSet<String> {
        self.exposure
            .labels()
            .into_iter()
            .map(|label| format!("{label}.{}", self.domain))
            .collect()
    }
}

/// TXT lookups for proofs: uncached, so a record just added counts at the next round.
pub(crate) struct Txt(hickory_resolver::TokioResolver);

/// Longest one TXT lookup may take.
const TXT_TIMEOUT: Duration = Duration::from_secs(10);

impl Txt {
    /// Lookups at `server`, or at the system's resolvers.
    pub fn new(server: Option<std::net::SocketAddr>) -> Option<Self> {
        use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
        use hickory_resolver::name_server::TokioConnectionProvider;
        let mut builder = match server {
            Some(at) => hickory_resolver::Resolver::builder_with_config(
                ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    NameServerConfigGroup::from_ips_clear(&[at.ip()], at.port(), true),
                ),
                TokioConnectionProvider::default(),
            ),
            None => match hickory_resolver::Resolver::builder_tokio() {
                Ok(builder) => builder,
                Err(e) => {
                    tracing::warn!(error = %e, "no DNS resolver: custom domains are proved by HTTP-01 only");
                    return None;
                }
            },
        };
        builder.options_mut().cache_size = 0;
        builder.options_mut().timeout = TXT_TIMEOUT;
        Some(Txt(builder.build()))
    }

    /// Whether `_micro-challenge.<host>` holds `token`.
    async fn holds(&self, host: &str, token: &str) -> bool {
        let name = format!("_micro-challenge.{host}.");
        let Ok(Ok(found)) = tokio::time::timeout(TXT_TIMEOUT, self.0.txt_lookup(name)).await else {
            return false;
        };
        found.iter().any(|txt| {
            let text: Vec<u8> = txt
                .txt_data()
                .iter()
                .flat_map(|part| part.iter().copied())
                .collect();
            text == token.as_bytes()
        })
    }
}

/// Failed orders one namespace's domains may cause within an hour; past it they wait.
/// The CA limits the platform's account as a whole (Let's Encrypt: 300 new orders per
/// three hours, 5 failed validations per host an hour), so one tenant's hosts that do
/// not point here must not spend what every tenant's certificates need.
const NAMESPACE_FAILURES_PER_HOUR: usize = 5;
const HOUR: Duration = Duration::from_secs(3600);

/// Each namespace's failed orders within the last hour.
#[derive(Default)]
struct OrderBudget(HashMap<String, std::collections::VecDeque<Instant>>);

impl OrderBudget {
    /// Whether `namespace` may have another order now.
    fn allows(&mut self, namespace: &str, now: Instant) -> bool {
        let Some(failures) = self.0.get_mut(namespace) else {
            return true;
        };
        while failures
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= HOUR)
        {
            failures.pop_front();
        }
        if failures.is_empty() {
            self.0.remove(namespace);
            return true;
        }
        failures.len() < NAMESPACE_FAILURES_PER_HOUR
    }

    fn failed(&mut self, namespace: &str, now: Instant) {
        self.0
            .entry(namespace.to_owned())
            .or_default()
            .push_back(now);
    }
}

/// A host's failed orders: how many in a row, and when to try again.
struct Backoff {
    failures: u32,
    next: Instant,
}

impl Keeper {
    /// Runs until the server stops.
    pub async fn run(self) {
        let mut acme: Option<Acme> = None;
        let mut acme_backoff: Option<Backoff> = None;
        let mut backoff: HashMap<String, Backoff> = HashMap::new();
        let mut budget = OrderBudget::default();
        let mut known: HashSet<String> = HashSet::new();
        let mut known_apps: HashSet<String> = HashSet::new();
        loop {
            let apps_hosts = self.apps.as_ref().map(AppsHosts::hosts).unwrap_or_default();
            // A service no longer public: its host's certificate goes.
            for gone in known_apps.difference(&apps_hosts) {
                if let Some(acme) = &acme {
                    acme.forget(gone);
                }
                backoff.remove(gone);
            }
            known_apps.clone_from(&apps_hosts);
            match self.store.all_domains().await {
                Ok(domains) => {
                    let claimed: HashSet<String> = domains.iter().map(|d| d.host.clone()).collect();
                    // Hosts given up: their certificates go, and another claim starts over.
                    for gone in known.difference(&claimed) {
                        if let Some(acme) = &acme {
                            acme.forget(gone);
                        }
                        backoff.remove(gone);
                    }
                    known = claimed;
                    // The CA is asked for an account only once there is a host to certify.
                    if acme.is_none()
                        && (!domains.is_empty() || !apps_hosts.is_empty())
                        && let Some(settings) = &self.acme
                        && acme_backoff
                            .as_ref()
                            .is_none_or(|b| Instant::now() >= b.next)
                    {
                        match Acme::open(
                            &settings.directory,
                            settings.email.as_deref(),
                            settings.ca_file.as_deref(),
                            &settings.dir,
                            self.challenges.clone(),
                            if settings.tls_alpn {
                                micro_acme::Proof::TlsAlpn01(Arc::new(AlpnAnswers(
                                    self.certs.clone(),
                                )))
                            } else {
                                micro_acme::Proof::Http01
                            },
                        )
                        .await
                        {
                            Ok(opened) => acme = Some(opened),
                            Err(e) => {
                                tracing::warn!(error = %e, directory = %settings.directory, "no ACME account yet");
                                acme_backoff = Some(failed(acme_backoff.take()));
                            }
                        }
                    }
                    let served = self
                        .round(acme.as_ref(), &domains, &mut backoff, &mut budget)
                        .await;
                    if let Some(acme) = &acme {
                        self.certify_apps(acme, &apps_hosts, &mut backoff).await;
                    }
                    self.certs
                        .retain(|host| served.contains(host) || apps_hosts.contains(host));
                }
                Err(e) => tracing::warn!(error = %e, "custom domains not read"),
            }
            tokio::select! {
                () = self.changed.notified() => {}
                () = tokio::time::sleep(ROUND) => {}
            }
        }
    }

    /// The apps domain's hosts: a certificate each, issued where missing or due.
    async fn certify_apps(
        &self,
        acme: &Acme,
        hosts: &HashSet<String>,
        backoff: &mut HashMap<String, Backoff>,
    ) {
        let now = now_secs();
        for host in hosts {
            let stored = acme.stored(host);
            let due = stored.as_ref().is_none_or(|c| now >= c.renew_at());
            let waiting = backoff.get(host).is_some_and(|b| Instant::now() < b.next);
            if due && !waiting {
                match acme.issue(host).await {
                    Ok(issued) => {
                        tracing::info!(host = %host, "certificate issued");
                        backoff.remove(host);
                        load(&self.certs, host, &issued);
                    }
                    Err(e) => {
                        tracing::warn!(host = %host, error = %e, "certificate not issued; the apps domain's is served meanwhile");
                        let b = failed(backoff.remove(host));
                        backoff.insert(host.clone(), b);
                    }
                }
            } else if let Some(cert) = stored
                && !self.certs.has(host)
            {
                load(&self.certs, host, &cert);
            }
        }
    }

    /// Proves and certifies the claimed domains; the hosts now served.
    async fn round(
        &self,
        acme: Option<&Acme>,
        domains: &[Domain],
        backoff: &mut HashMap<String, Backoff>,
        budget: &mut OrderBudget,
    ) -> HashSet<String> {
        let now = now_secs();
        let mut served = HashMap::new();
        for domain in domains {
            let mut state = DomainState {
                proven_by: domain.proven_by.clone(),
                cert_expires_at: domain.cert_expires_at,
                message: domain.message.clone(),
            };
            if state.proven_by.is_none()
                && let Some(txt) = &self.txt
                && txt.holds(&domain.host, &domain.token).await
            {
                tracing::info!(host = %domain.host, namespace = %domain.namespace, "domain proved by TXT");
                state.proven_by = Some("txt".into());
            }
            let stored = acme.and_then(|a| a.stored(&domain.host));
            // An unproven host orders even with a certificate kept (one a previous claim
            // left): the order is the proof.
            let due =
                domain.proven_by.is_none() || stored.as_ref().is_none_or(|c| now >= c.renew_at());
            let waiting = backoff
                .get(&domain.host)
                .is_some_and(|b| Instant::now() < b.next);
            let mut cert = stored;
            let mut fresh = false;
            let spent = due && !waiting && !budget.allows(&domain.namespace, Instant::now());
            if spent {
                state.message = format!(
                    "waiting: {NAMESPACE_FAILURES_PER_HOUR} certificate orders for this namespace's domains failed within the hour (point their DNS at this server, or remove them)"
                );
            }
            match acme {
                Some(acme) if due && !waiting && !spent => match acme.issue(&domain.host).await {
                    Ok(issued) => {
                        tracing::info!(host = %domain.host, namespace = %domain.namespace, "certificate issued");
                        backoff.remove(&domain.host);
                        // The CA reached this host here: its DNS points here.
                        state.proven_by.get_or_insert_with(|| acme.proof().into());
                        state.message.clear();
                        cert = Some(issued);
                        fresh = true;
                    }
                    Err(e) => {
                        budget.failed(&domain.namespace, Instant::now());
                        let b = failed(backoff.remove(&domain.host));
                        let wait = b.next.saturating_duration_since(Instant::now());
                        state.message = format!(
                            "certificate: {e} (trying again in {}s; point the host's DNS at this server)",
                            wait.as_secs()
                        );
                        tracing::warn!(host = %domain.host, error = %e, "certificate not issued");
                        backoff.insert(domain.host.clone(), b);
                    }
                },
                Some(_) => {}
                None if self.acme.is_none() => {
                    state.message =
                        "this platform issues no certificates (--acme-directory off)".into();
                }
                None => state.message = "waiting for an account with the ACME CA".into(),
            }
            state.cert_expires_at = cert.as_ref().map(|c| c.not_after * 1000);
            if let Some(cert) = &cert
                && state.proven_by.is_some()
                && (fresh || !self.certs.has(&domain.host))
            {
                load(&self.certs, &domain.host, cert);
            }
            if state.proven_by.is_some() {
                served.insert(
                    domain.host.clone(),
                    (domain.namespace.clone(), domain.service.clone()),
                );
            }
            let before = DomainState {
                proven_by: domain.proven_by.clone(),
                cert_expires_at: domain.cert_expires_at,
                message: domain.message.clone(),
            };
            if state != before
                && let Err(e) = self
                    .store
                    .set_domain_state(&domain.namespace, &domain.host, &state)
                    .await
            {
                tracing::warn!(host = %domain.host, error = %e, "domain state not recorded");
            }
        }
        let hosts = served.keys().cloned().collect();
        self.hosts.replace(served);
        hosts
    }
}

fn load(certs: &HostCerts, host: &str, cert: &Certificate) {
    if let Err(e) = certs.set(host, &cert.chain_pem, &cert.key_pem) {
        tracing::warn!(host = %host, error = %e, "certificate not served");
    }
}

fn failed(before: Option<Backoff>) -> Backoff {
    let failures = before.map_or(0, |b| b.failures) + 1;
    let wait = FIRST_WAIT
        .saturating_mul(1 << failures.min(12).saturating_sub(1))
        .min(MOST_WAIT);
    Backoff {
        failures,
        next: Instant::now() + wait,
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_namespaces_failed_orders_cannot_spend_everyones() {
        let mut budget = OrderBudget::default();
        let start = Instant::now();
        for i in 0..NAMESPACE_FAILURES_PER_HOUR {
            assert!(budget.allows("evil", start), "order {i}");
            budget.failed("evil", start);
        }
        assert!(!budget.allows("evil", start + Duration::from_secs(60)));
        // Another namespace is not held back by it.
        assert!(budget.allows("victim", start + Duration::from_secs(60)));
        // An hour after the failures, the namespace may order again.
        assert!(budget.allows("evil", start + HOUR));
    }
}
