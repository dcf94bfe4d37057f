//! Name resolution that is also the address check: the addresses it returns are the only
//! ones a client can connect to, and each passed the policy, for reqwest
//! ([`reqwest::dns::Resolve`]).

use micro_tenant::sources::SourcePolicy;
use std::net::SocketAddr;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves names, and refuses any that resolves to an address the policy does not allow.
#[derive(Clone, Debug)]
pub struct CheckedResolver {
    policy: SourcePolicy,
}

impl CheckedResolver {
    pub fn new(policy: SourcePolicy) -> Self {
        CheckedResolver { policy }
    }

    /// The addresses of `host`, every one allowed, or why not (saying nothing of what the
    /// name resolved to).
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        if addrs.is_empty() {
            return Err(format!("{host} does not resolve").into());
        }
        if addrs.iter().any(|a| !self.policy.allows(a.ip())) {
            return Err(
                format!("{host}: local, private and link-local addresses are not allowed").into(),
            );
        }
        Ok(addrs)
    }

    /// Whether `host` (an address written in a URL, which no resolver sees) is allowed.
    pub fn allows_literal(&self, host: &url::Host<&str>) -> bool {
        match host {
            url::Host::Ipv4(ip) => self.policy.allows((*ip).into()),
            url::Host::Ipv6(ip) => self.policy.allows((*ip).into()),
            url::Host::Domain(_) => true,
        }
    }
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_of_a_local_address_is_refused_before_any_connection() {
        let strict = CheckedResolver::new(SourcePolicy::default());
        let err = strict.lookup("localhost").await.unwrap_err().to_string();
        assert!(err.contains("not allowed"), "{err}");
        assert!(
            !err.contains("127.0.0.1"),
            "says what it resolved to: {err}"
        );
        let local = CheckedResolver::new(SourcePolicy {
            allow_local: true,
            forbidden: Vec::new(),
        });
        assert!(local.lookup("localhost").await.is_ok());
        assert!(!strict.allows_literal(&url::Host::Ipv4([169, 254, 169, 254].into())));
        assert!(strict.allows_literal(&url::Host::Ipv4([8, 8, 8, 8].into())));
    }
}
