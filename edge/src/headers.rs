//! The headers that cross the edge. What a client says about where a request came from
//! (`X-Forwarded-*`, `Forwarded`) or who sent it (`X-Micro-Caller`) is dropped; the edge
//! sets the forwarded ones itself. Hop-by-hop headers stay on their hop.

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// Passed through when a client sends a sane one, else made here.
pub const REQUEST_ID: &str = "x-request-id";

/// Headers of one connection (RFC 9110 section 7.6.1), never forwarded either way.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The protocol a request asks to switch to (`Upgrade`, with `upgrade` among its
/// `Connection` tokens): a WebSocket, say. Its handshake crosses the edge; what follows
/// is the client's and the replica's own.
pub fn upgrade(from: &HeaderMap) -> Option<HeaderValue> {
    let asked = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asked.then(|| from.get(header::UPGRADE).cloned()).flatten()
}

/// Set by the edge alone: a client's own would let it pose as another address, scheme,
/// host or platform caller.
fn edge_owned(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "x-forwarded-port"
            | "x-real-ip"
            | "x-micro-caller"
            | REQUEST_ID
    )
}

/// The client's headers as the replica gets them (before [`set_forwarded`]); `Host`
/// goes too: the client reaches the replica's address. `Content-Length` stays, so the
/// body streams through framed as it came (many apps read no chunked body).
pub fn upstream(from: &HeaderMap) -> HeaderMap {
    let mut to = HeaderMap::with_capacity(from.len() + 5);
    // Names a `Connection` header lists are this hop's too.
    let listed: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in from {
        if hop_by_hop(name)
            || edge_owned(name)
            || name == header::HOST
            || listed.iter().any(|l| l == name.as_str())
        {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
    to
}

/// A replica's answer headers as the client gets them.
pub fn downstream(from: &HeaderMap) -> HeaderMap {
    let mut to = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if hop_by_hop(name) || name == "x-micro-caller" {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
    to
}

/// The client's `X-Request-Id` when it is short and printable, else a new random one.
pub fn request_id(from: &HeaderMap) -> String {
    from.get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(
            || hex::encode(rand::random::<[u8; 16]>()),
            ToOwned::to_owned,
        )
}

/// The edge's own account of the request: who connected, over what, to which host.
pub fn set_forwarded(
    to: &mut HeaderMap,
    client: Option<IpAddr>,
    scheme: &'static str,
    host: &str,
    id: &str,
) {
    let mut forwarded = String::new();
    if let Some(ip) = client {
        if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
            to.insert("x-forwarded-for", v);
        }
        forwarded = match ip {
            IpAddr::V4(ip) => format!("for={ip};"),
            IpAddr::V6(ip) => format!("for=\"[{ip}]\";"),
        };
    }
    to.insert("x-forwarded-proto", HeaderValue::from_static(scheme));
    if let Ok(v) = HeaderValue::from_str(host) {
        to.insert("x-forwarded-host", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{forwarded}proto={scheme};host={host}")) {
        to.insert("forwarded", v);
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        to.insert(REQUEST_ID, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_says_of_its_origin_is_replaced_by_what_the_edge_saw() {
        let mut from = HeaderMap::new();
        for (name, value) in [
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
            ("x-micro-caller", "spiffe://micro.local/ns/victim/svc/vault"),
            ("x-real-ip", "10.0.0.1"),
            ("connection", "close, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("authorization", "Bearer app-level"),
            ("host", "web-shop.apps.test"),
        ] {
            from.append(name, HeaderValue::from_static(value));
        }
        let mut to = upstream(&from);
        set_forwarded(
            &mut to,
            Some("192.0.2.7".parse().unwrap()),
            "https",
            "web-shop.apps.test",
            "abc",
        );
        assert_eq!(to["x-forwarded-for"], "192.0.2.7");
        assert_eq!(
            to["forwarded"],
            "for=192.0.2.7;proto=https;host=web-shop.apps.test"
        );
        assert_eq!(to["x-forwarded-proto"], "https");
        assert_eq!(to["x-forwarded-host"], "web-shop.apps.test");
        assert_eq!(to[REQUEST_ID], "abc");
        assert!(to.get("x-micro-caller").is_none());
        assert!(to.get("x-real-ip").is_none());
        assert!(to.get("x-secret-hop").is_none());
        assert!(to.get("connection").is_none());
        assert!(to.get("host").is_none());
        // The app's own authentication is the app's.
        assert_eq!(to["authorization"], "Bearer app-level");
        assert_eq!(to.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn a_request_id_is_kept_when_sane_and_made_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("req-42"));
        assert_eq!(request_id(&h), "req-42");
        h.insert(REQUEST_ID, HeaderValue::from_static("a b\"c"));
        let made = request_id(&h);
        assert_eq!(made.len(), 32);
        assert_ne!(made, request_id(&HeaderMap::new()));
    }
}
