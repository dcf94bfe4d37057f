//! Who is on the other end of a request, for the limits that are per client: a person's
//! address (behind a proxy the operator trusts, the address it forwarded for), or the
//! services of one namespace, which reach the platform through a door of their own
//! ([`super::Doors`]) and so never share an address with people or with other tenants.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The key every per-client limit counts by (login throttling, sign-up rates, open
/// connections). A request extension set by the accept loop.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// A person's client, by its address.
    Address(IpAddr),
    /// Any service of this namespace.
    Services(Arc<str>),
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Client::Address(ip) => write!(f, "{ip}"),
            Client::Services(ns) => write!(f, "services of {ns}"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = crate::ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Client>()
            .cloned()
            .ok_or_else(|| crate::ApiError::Internal("the request has no client".into()))
    }
}

/// The proxies (`--trusted-proxy`) whose `X-Forwarded-For` names the client.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that came from `peer`: `peer` itself unless it is a
    /// trusted proxy, else the last address in `X-Forwarded-For` that is not one (each
    /// proxy appends the address it heard from; only the trusted ones' entries are true).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        hops.reverse();
        for hop in hops {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => continue,
                Ok(ip) => return canonical(ip),
                // Something a client made up: trust nothing further left.
                Err(_) => return peer,
            }
        }
        peer
    }
}

/// `::ffff:1.2.3.4` is `1.2.3.4`: one client, one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `10.0.0.0/8`, `10.0.0.1` (one address) or `::1`, as `--trusted-proxy` takes them.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?}: not an address or CIDR range (10.0.0.0/8, 10.0.0.1)"))
}

/// Open connections per client, each at most `max`. Entries go with their last
/// connection, so the map holds only clients connected now.
#[derive(Debug)]
pub struct Open {
    max: usize,
    counts: Mutex<HashMap<Client, usize>>,
}

/// One counted connection; dropping it gives the slot back.
pub struct Ticket {
    open: Arc<Open>,
    client: Client,
}

impl Open {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Open {
            max: max.max(1),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A ticket for one more connection of `client`, unless it has `max` open already.
    pub fn enter(self: &Arc<Self>, client: Client) -> Option<Ticket> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(client.clone()).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Ticket {
            open: self.clone(),
            client,
        })
    }

    /// Clients with a connection open now.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self
            .open
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_a_trusted_proxy() {
        let proxies = TrustedProxies::new(vec![parse_net("10.0.0.0/8").unwrap()]);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        // A stranger's own header is ignored: it is its own client.
        assert_eq!(proxies.client(stranger, &xff("198.51.100.1")), stranger);
        // Through the proxy: the address the proxy heard from, not what the client wrote
        // further left.
        assert_eq!(
            proxies.client(proxy, &xff("1.1.1.1, 198.51.100.7")),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // Two trusted hops: skipped.
        assert_eq!(
            proxies.client(proxy, &xff("198.51.100.7, 10.9.9.9")),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // Garbage or nothing: the proxy itself.
        assert_eq!(proxies.client(proxy, &xff("not-an-ip")), proxy);
        assert_eq!(proxies.client(proxy, &HeaderMap::new()), proxy);
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(proxies.contains(mapped));
        assert_eq!(parse_net("192.0.2.1").unwrap().prefix_len(), 32);
        assert!(parse_net("nope").unwrap_err().contains("CIDR"));
    }

    #[test]
    fn each_client_has_its_own_cap_and_leaves_nothing_behind() {
        let open = Open::new(2);
        let a = Client::Address("127.0.0.2".parse().unwrap());
        let ns = Client::Services("evil".into());
        let t1 = open.enter(a.clone()).unwrap();
        let _t2 = open.enter(a.clone()).unwrap();
        assert!(open.enter(a.clone()).is_none(), "a third from one address");
        let _services = open.enter(ns).expect("another client is not held up");
        drop(t1);
        assert!(open.enter(a.clone()).is_some());
        drop(_t2);
        assert_eq!(open.clients(), 1, "only the client still connected is kept");
    }
}
