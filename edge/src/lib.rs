//! The public edge: requests from anyone, routed by host name (`<service>-<namespace>.<apps
//! domain>`) to a ready replica of a service its spec marks `public`, with the headers a
//! proxy owes its upstream set by the edge alone.
//!
//! Routes come from the reconciler's exposure table and replicas from the runtime's
//! contract; the edge serves through whatever listener the server hands its router. It
//! must not use the store, the API or a particular runtime itself: API keys are checked
//! through a function the server hands in ([`KeyOwner`]).

mod balance;
mod domains;
mod headers;
mod limit;
mod pages;
mod router_log;
mod traffic;
pub mod upstream;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use micro_reconciler::exposure::Exposure;
use micro_runtime::Runtime;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use domains::{ChallengeAnswer, CustomHosts};
pub use headers::REQUEST_ID;
pub use router_log::RouterLog;
pub use traffic::{Recent, Traffic};

/// Where ACME HTTP-01 challenges are asked for.
const CHALLENGES: &str = "/.well-known/acme-challenge/";

/// Longest a replica may take to answer with its headers, and between parts of its body.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// What the edge routes with, built once.
#[derive(Clone)]
pub struct Edge {
    /// `apps.example.com`: a service's host is one label under it.
    domain: Arc<str>,
    /// `https` or `http`: what the edge's listener speaks, for `X-Forwarded-Proto`.
    scheme: &'static str,
    exposure: Arc<Exposure>,
    runtime: Arc<dyn Runtime>,
    http: upstream::Upstream,
    balancer: Arc<balance::Balancer>,
    /// Requests per second per client address, when limited.
    limit: Option<Arc<limit::PerClient>>,
    /// One line per request answered for a service.
    log: Arc<RouterLog>,
    /// Counts and latencies per service, for `/metrics` and `micro describe`.
    traffic: Arc<Traffic>,
    /// Checks the keys of services with `auth: key` (none: every such call is refused).
    keys: Option<KeyOwner>,
    /// Custom domains proven to their namespaces.
    hosts: Arc<CustomHosts>,
    /// Answers ACME HTTP-01 challenges on the plain-HTTP listener.
    challenges: Option<ChallengeAnswer>,
}

/// Whose an API key is: its namespace, if it is one. Asked on every request to a
/// service with `auth: key`, so a revoked key is refused from the next request on.
pub type KeyOwner =
    Arc<dyn Fn(String) -> futures_util::future::BoxFuture<'static, Option<String>> + Send + Sync>;

/// What went wrong building the edge.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EdgeError(String);

impl Edge {
    /// The edge for services under `domain`, served over `scheme`.
    pub fn new(
        domain: &str,
        scheme: &'static str,
        exposure: Arc<Exposure>,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Self, EdgeError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() || domain.split('.').any(|l| l.is_empty() || l.len() > 63) {
            return Err(EdgeError(format!(
                "--apps-domain {domain:?}: a DNS name like apps.example.com"
            )));
        }
        // A replica's answer goes back as it is: a redirect is the client's to follow.
        let http = upstream::client(runtime.clone());
        Ok(Edge {
            domain: domain.into(),
            scheme,
            exposure,
            runtime,
            http,
            balancer: Arc::default(),
            limit: None,
            log: Arc::default(),
            traffic: Arc::default(),
            keys: None,
            hosts: Arc::default(),
            challenges: None,
        })
    }

    /// Checks API keys with `owner`.
    pub fn checking_keys(mut self, owner: KeyOwner) -> Self {
        self.keys = Some(owner);
        self
    }

    /// Counts its requests in `traffic`.
    pub fn counting_in(mut self, traffic: Arc<Traffic>) -> Self {
        self.traffic = traffic;
        self
    }

    /// Serves the custom domains `hosts` holds (the server keeps it current).
    pub fn serving_domains(mut self, hosts: Arc<CustomHosts>) -> Self {
        self.hosts = hosts;
        self
    }

    /// Answers ACME HTTP-01 challenges with `answer` on the plain-HTTP listener.
    pub fn answering_challenges(mut self, answer: ChallengeAnswer) -> Self {
        self.challenges = Some(answer);
        self
    }

    /// Writes its router lines to `log` (which `micro logs --router` reads).
    pub fn logging_to(mut self, log: Arc<RouterLog>) -> Self {
        self.log = log;
        self
    }

    /// At most `per_second` requests a second from one client address (bursts of twice
    /// that); more get 429. Zero: no limit.
    pub fn rate_limited(mut self, per_second: u32) -> Self {
        self.limit = limit::PerClient::new(per_second).map(Arc::new);
        self
    }

    /// The router that serves every request the edge's listener accepts.
    pub fn router(self) -> Router {
        Router::new().fallback(proxy).with_state(self)
    }

    /// The router of the edge's plain-HTTP listener: every request for a host under the
    /// apps domain is sent to the same URL over HTTPS (`https_port`, the edge's), with
    /// 308 so a method and its body are kept; anything else is not found.
    pub fn redirect_router(self, https_port: u16) -> Router {
        Router::new()
            .fallback(
                move |State(edge): State<Edge>, request: Request| async move {
                    // An ACME CA checking a host proves it here, over plain HTTP.
                    if let Some(token) = request.uri().path().strip_prefix(CHALLENGES) {
                        return match edge.challenges.as_ref().and_then(|answer| answer(token)) {
                            Some(answer) => answer.into_response(),
                            None => pages::not_found(),
                        };
                    }
                    let Some(host) = host_of(&request)
                        .filter(|h| edge.label(h).is_some() || edge.hosts.get(h).is_some())
                    else {
                        return pages::not_found();
                    };
                    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    let location = match https_port {
                        443 => format!("https://{host}{path}"),
                        port => format!("https://{host}:{port}{path}"),
                    };
                    match HeaderValue::from_str(&location) {
                        Ok(location) => (
                            axum::http::StatusCode::PERMANENT_REDIRECT,
                            [(header::LOCATION, location)],
                        )
                            .into_response(),
                        Err(_) => pages::not_found(),
                    }
                },
            )
            .with_state(self)
    }

    /// The first label of `host` when it is a service's host under the apps domain.
    fn label<'h>(&self, host: &'h str) -> Option<&'h str> {
        let label = host.strip_suffix(&*self.domain)?.strip_suffix('.')?;
        (!label.is_empty() && !label.contains('.')).then_some(label)
    }
}

/// The host a request names: HTTP/1.1's `Host`, else the URI's authority; lower case,
/// without a port.
fn host_of(request: &Request) -> Option<String> {
    let host = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().ok()?.to_owned(),
        None => request.uri().authority()?.as_str().to_owned(),
    };
    let host = host.rsplit_once(':').map_or(host.as_str(), |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host.as_str()
        }
    });
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// What the router's line says of one request.
struct Seen {
    route: Option<micro_reconciler::exposure::Route>,
    method: String,
    path: String,
    host: String,
    client: Option<std::net::IpAddr>,
    id: String,
}

async fn proxy(State(edge): State<Edge>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let mut seen = Seen {
        route: None,
        method: request.method().to_string(),
        path: request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        host: String::new(),
        client: None,
        id: String::new(),
    };
    let response = answer(&edge, request, &mut seen).await;
    if let Some(route) = &seen.route {
        let status = response.status().as_u16();
        let bytes = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let line = format!(
            "{} at={} method={} path={:?} host={} request_id={} fwd=\"{}\" status={status} bytes={bytes} service={}ms",
            humantime::format_rfc3339_millis(std::time::SystemTime::now()),
            if status >= 500 { "error" } else { "info" },
            seen.method,
            seen.path,
            seen.host,
            seen.id,
            seen.client.map_or_else(String::new, |ip| ip.to_string()),
            started.elapsed().as_millis(),
        );
        edge.log.record(&route.namespace, &route.service, line);
        edge.traffic
            .record(&route.namespace, &route.service, status, started.elapsed());
    }
    response
}

/// The replica agreed to switch protocols: the client is told so, and from then on the
/// two connections are joined (the replica stays leased while they are).
fn switched(
    upstream: &mut hyper::Response<hyper::body::Incoming>,
    client_side: Option<hyper::upgrade::OnUpgrade>,
    lease: balance::Lease,
    id: &str,
) -> Response {
    // A switch nobody asked for is the replica's error.
    let Some(client_side) = client_side else {
        return pages::bad_gateway();
    };
    let replica_side = hyper::upgrade::on(&mut *upstream);
    let mut answer = headers::downstream(upstream.headers());
    answer.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(protocol) = upstream.headers().get(header::UPGRADE) {
        answer.insert(header::UPGRADE, protocol.clone());
    }
    if let Ok(id) = HeaderValue::from_str(id) {
        answer.insert(REQUEST_ID, id);
    }
    tokio::spawn(async move {
        let _lease = lease;
        if let (Ok(client), Ok(replica)) = tokio::join!(client_side, replica_side) {
            let (mut client, mut replica) = (
                hyper_util::rt::TokioIo::new(client),
                hyper_util::rt::TokioIo::new(replica),
            );
            let _ = tokio::io::copy_bidirectional(&mut client, &mut replica).await;
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = axum::http::StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = answer;
    response
}

/// Why a replica gave no answer.
#[derive(Debug, thiserror::Error)]
enum Upstream {
    /// Nothing was sent: no connection (a replica draining, say), or no valid address.
    #[error("no connection")]
    Refused,
    /// No answer within [`ANSWER_TIMEOUT`].
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Failed(String),
}

async fn answer(edge: &Edge, mut request: Request, seen: &mut Seen) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let (Some(limit), Some(ip)) = (&edge.limit, peer)
        && let Err(wait) = limit.check(ip)
    {
        return pages::too_many(wait);
    }
    let Some(host) = host_of(&request) else {
        return pages::not_found();
    };
    let route = match edge.label(&host) {
        Some(label) => edge.exposure.find(label),
        None => edge
            .hosts
            .get(&host)
            .and_then(|(namespace, service)| edge.exposure.find_service(&namespace, &service)),
    };
    let Some(route) = route else {
        return pages::not_found();
    };
    seen.route = Some(route.clone());
    seen.host = host.clone();
    seen.client = peer;
    seen.id = headers::request_id(request.headers());
    if route.suspended {
        return pages::suspended();
    }
    // Behind `auth: key`: one of the namespace's keys, or nothing goes through; the key
    // is the edge's business and never reaches the service.
    if route.auth_key {
        let key = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|k| k.trim().to_owned());
        let owner = match (key, &edge.keys) {
            (Some(key), Some(owner)) if !key.is_empty() => owner(key).await,
            _ => None,
        };
        // A preview is opened by its parent's keys.
        if owner.as_deref() != Some(route.key_namespace.as_str()) {
            return pages::unauthorized();
        }
    }
    let endpoints = edge.runtime.endpoints(&route.namespace, &route.service);
    let Some(mut lease) = edge.balancer.pick(&endpoints, None) else {
        return pages::unavailable();
    };
    // Services that serve TLS answer only the platform's certificate; not on the edge yet.
    if lease.target().starts_with("https://") {
        return pages::bad_gateway();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let limit = route.body_limit;
    if declared.is_some_and(|n| n > limit) {
        return pages::too_large(limit);
    }
    // Without a body, a request a replica refused (say, one draining) can go to another.
    let bodiless = declared.is_none_or(|n| n == 0)
        && !request.headers().contains_key(header::TRANSFER_ENCODING);
    // A protocol switch (a WebSocket) goes through: the client's side of it is taken now,
    // the replica's once it agrees.
    let switch = headers::upgrade(request.headers());
    let client_side = switch.as_ref().map(|_| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut forwarded = headers::upstream(&parts.headers);
    if route.auth_key {
        forwarded.remove(header::AUTHORIZATION);
    }
    if let Some(protocol) = &switch {
        forwarded.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        forwarded.insert(header::UPGRADE, protocol.clone());
    }
    let id = seen.id.clone();
    headers::set_forwarded(&mut forwarded, peer, edge.scheme, &host, &id);
    // The body streams through, counted: past the limit the upload is cut off.
    let mut seen: u64 = 0;
    let body = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(std::io::Error::other("request body over the limit"));
        }
        Ok(chunk)
    });
    let send = |target: &str, body: Body| {
        let request = format!("{target}{path}")
            .parse::<axum::http::Uri>()
            .map_err(|_| Upstream::Refused)
            .map(|uri| {
                let mut request = axum::http::Request::new(body);
                // Replicas speak HTTP/1.1, whatever the client spoke to the edge.
                *request.version_mut() = axum::http::Version::HTTP_11;
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = uri;
                *request.headers_mut() = forwarded.clone();
                request
            });
        let http = edge.http.clone();
        async move {
            match tokio::time::timeout(ANSWER_TIMEOUT, http.request(request?)).await {
                Err(_) => Err(Upstream::Timeout),
                Ok(Err(e)) if e.is_connect() => Err(Upstream::Refused),
                Ok(Err(e)) => Err(Upstream::Failed(e.to_string())),
                Ok(Ok(answer)) => Ok(answer),
            }
        }
    };
    let mut upstream = if bodiless {
        send(lease.target(), Body::empty()).await
    } else {
        send(lease.target(), Body::from_stream(body)).await
    };
    if bodiless
        && matches!(upstream, Err(Upstream::Refused))
        && let Some(other) = edge.balancer.pick(&endpoints, Some(lease.target()))
    {
        lease = other;
        upstream = send(lease.target(), Body::empty()).await;
    }
    let mut upstream = match upstream {
        Ok(upstream) => upstream,
        Err(Upstream::Timeout) => return pages::timeout(),
        Err(e) => {
            tracing::debug!(namespace = %route.namespace, service = %route.service, error = %e, "replica did not answer");
            return pages::bad_gateway();
        }
    };
    if upstream.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
        return switched(&mut upstream, client_side, lease, &id);
    }
    let (head, incoming) = upstream.into_parts();
    let status = head.status;
    let answer = headers::downstream(&head.headers);
    // The replica counts as busy until its answer has been sent on. Once the length it
    // announced has come, its connection and the lease go at once: the client's
    // connection may idle long after, and hyper need not ask this body for its end.
    let length = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = futures_util::stream::unfold(
        Some((Body::new(incoming).into_data_stream(), lease, length)),
        |state| async move {
            let (mut inner, lease, left) = state?;
            // A replica that stops sending mid-answer does not hold the client forever.
            let next = match tokio::time::timeout(ANSWER_TIMEOUT, inner.next()).await {
                Ok(next) => next?,
                Err(_) => {
                    return Some((
                        Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                        None,
                    ));
                }
            };
            match next {
                Ok(chunk) => {
                    let left = left.map(|n| n.saturating_sub(chunk.len() as u64));
                    if left == Some(0) {
                        drop((inner, lease));
                        return Some((Ok(chunk), None));
                    }
                    Some((Ok(chunk), Some((inner, lease, left))))
                }
                Err(e) => Some((Err(std::io::Error::other(e)), None)),
            }
        },
    );
    let mut response = Body::from_stream(body).into_response();
    *response.status_mut() = status;
    *response.headers_mut() = answer;
    if let Ok(id) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}
