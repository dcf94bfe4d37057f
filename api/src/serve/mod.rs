//! The accept loops: axum's router behind hyper with the limits `axum::serve` lacks, so
//! that no client, with an account or without, can hold the server's connections:
//! - a cap on open connections below the descriptor limit, one pool for people and one
//!   for services, so tenants' services can never take the slots people (and `/healthz`)
//!   need;
//! - a cap per client: per address for people (behind a `--trusted-proxy`, the proxy is
//!   exempt), per namespace for services;
//! - a timeout on reading request headers (which also ends connections idling between
//!   requests), and a minimum rate for request bodies ([`body`]).
//!
//! Services reach the API through a door of their own namespace ([`Doors`]): a loopback
//! port the sandbox's network maps the API address to. Their connections are told apart
//! from people's and from other tenants' by the door they came through, never by an
//! address they share (every sandboxed service would be 127.0.0.1).

mod body;
mod client;
mod doors;
mod park;

pub use body::BodyRate;
pub use client::{Client, TrustedProxies, parse_net};
pub use doors::Doors;

use axum::Router;
use axum::extract::ConnectInfo;
use client::{Open, Ticket};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::Instrument;

pub use micro_pki::ClientCert;

/// What one server accepts at most.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at once from people, and again from services; past it, new ones
    /// wait in the kernel's backlog.
    pub max_connections: usize,
    /// Open connections from one client address, and from one namespace's services;
    /// past it, a new one is closed at once.
    pub max_per_client: usize,
    /// Time to send a request's headers, and most a connection may idle between requests.
    pub header_timeout: Duration,
    /// How fast a request body must arrive.
    pub body_rate: BodyRate,
    /// Proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: TrustedProxies,
    /// How long stopping waits for requests in flight.
    pub drain: Duration,
    /// Whether a connection may be upgraded (WebSockets through the edge). A stop lets
    /// the request under way finish; a tunnel already switched ends with the server.
    pub upgrades: bool,
    /// Whether a TLS client may choose HTTP/2 by ALPN (the edge; its configuration must
    /// offer `h2`).
    pub http2: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_per_client: 64,
            header_timeout: Duration::from_secs(10),
            body_rate: BodyRate::default(),
            trusted_proxies: TrustedProxies::default(),
            drain: Duration::from_secs(10),
            upgrades: false,
            http2: false,
        }
    }
}

/// Requests one HTTP/2 connection may have under way at once.
const H2_STREAMS: u32 = 100;

/// Serving one accepted connection: the same for the public listener and every door.
#[derive(Clone)]
struct Connections {
    app: Router,
    http: hyper::server::conn::http1::Builder,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: Arc<Limits>,
    /// Connections that have not had their first request dispatched yet.
    unanswered: Arc<Unanswered>,
}

/// A count of accepted connections still waiting for their first request to reach the
/// app. A stopping server drains connections by letting each finish the request it is
/// in; one whose first request is still on its way would be closed with no answer. So a
/// stop waits for this count to fall to zero (within the drain time) before draining.
#[derive(Default)]
struct Unanswered {
    count: std::sync::atomic::AtomicUsize,
    zero: tokio::sync::Notify,
}

/// Held by a connection until its first request reaches the app (or it ends): counted
/// once, released once (one atomic swap per request after that).
struct Waiting {
    of: Arc<Unanswered>,
    released: std::sync::atomic::AtomicBool,
}

impl Waiting {
    fn release(&self) {
        if !self
            .released
            .swap(true, std::sync::atomic::Ordering::SeqCst)
            && self
                .of
                .count
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
                == 1
        {
            self.of.zero.notify_waiters();
        }
    }
}

impl Unanswered {
    fn enter(self: &Arc<Self>) -> Waiting {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Waiting {
            of: self.clone(),
            released: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Until every connection accepted so far has had its first request dispatched.
    async fn settled(&self) {
        loop {
            let zero = self.zero.notified();
            if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            zero.await;
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.release();
    }
}

/// Where a connection came in.
#[derive(Clone)]
enum Door {
    /// The public listener: a person's client (or a proxy in front of them).
    Public,
    /// The door of one namespace's services.
    Services(Arc<str>),
}

impl Connections {
    fn new(app: Router, limits: Limits, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        Connections {
            app,
            http,
            acceptor: tls.map(tokio_rustls::TlsAcceptor::from),
            limits: Arc::new(limits),
            unanswered: Arc::default(),
        }
    }

    /// Serves `stream` until the client or the server ends it; `stop` lets a stopping
    /// server drain it.
    fn serve(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        door: Door,
        stop: park::Stop,
        accepted: Option<Waiting>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        // Opening (the handshake) is boxed apart from serving, and both are made here
        // rather than in an async fn: an idle connection's task then holds a pointer, not
        // room for every step it went through (idle connections are many).
        let opening = Box::pin(self.open(stream, peer, door, stop, accepted));
        async move {
            let serving = opening.await;
            if let Some(serving) = serving
                && let Err(e) = serving.await
            {
                tracing::debug!(error = %e, "connection");
            }
        }
    }

    /// Everything before the first request: TLS (when served), and the choice of
    /// HTTP/1.1 or HTTP/2. `None` when the client went away first.
    async fn open(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        door: Door,
        stop: park::Stop,
        accepted: Option<Waiting>,
    ) -> Option<Serving> {
        // Small final writes (the end of a chunked git response) must not wait for the
        // client's delayed ACK: Nagle's algorithm cost git pushes ~40 ms per request.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let Connections {
            app,
            http,
            acceptor,
            limits,
            unanswered,
        } = self;
        // Counted from when it was accepted (a drain that starts before this task runs
        // must wait for it too), or from now for a door's.
        let waiting = Arc::new(accepted.unwrap_or_else(|| unanswered.enter()));
        // Every request knows its client and, over mTLS, its certificate.
        let prepare = |cert: Option<ClientCert>| -> park::Prepare {
            let limits = limits.clone();
            let waiting = waiting.clone();
            Arc::new(move |req: hyper::Request<hyper::body::Incoming>| {
                // Its first request has arrived: a drain may now let it finish.
                waiting.release();
                let (mut parts, body) = req.into_parts();
                let client = match &door {
                    Door::Public => {
                        Client::Address(limits.trusted_proxies.client(peer.ip(), &parts.headers))
                    }
                    Door::Services(ns) => Client::Services(ns.clone()),
                };
                parts.extensions.insert(client);
                parts.extensions.insert(ConnectInfo::<SocketAddr>(peer));
                if let Some(cert) = &cert {
                    parts.extensions.insert(cert.clone());
                }
                let body = axum::body::Body::new(body::MinRate::new(body, limits.body_rate));
                hyper::Request::from_parts(parts, body)
            })
        };
        let (upgrades, idle) = (limits.upgrades, limits.header_timeout);
        let Some(acceptor) = acceptor else {
            return Some(park::serve(
                http,
                stream,
                app,
                prepare(None),
                upgrades,
                idle,
                stop,
            ));
        };
        let tls = tls_handshake(&acceptor, stream, peer, idle).await?;
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| ClientCert(Arc::from(leaf.as_ref())));
        Some(
            if limits.http2 && tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                Box::pin(serve_h2(app, prepare(cert), tls, idle, stop))
            } else {
                park::serve(http, tls, app, prepare(cert), upgrades, idle, stop)
            },
        )
    }
}

/// A connection being served, after its opening.
type Serving =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), hyper::Error>> + Send>>;

/// HTTP/2 (offered by ALPN when `limits.http2`): one connection carries many requests,
/// so it is not parked; a stop lets the streams under way finish.
async fn serve_h2(
    app: Router,
    prepare: park::Prepare,
    tls: Box<tokio_rustls::server::TlsStream<TcpStream>>,
    ping: Duration,
    mut stop: park::Stop,
) -> Result<(), hyper::Error> {
    let mut h2 = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS)
        .keep_alive_interval(Some(ping));
    let service = TowerToHyperService::new(app.map_request(move |req| prepare(req)));
    let mut conn = std::pin::pin!(h2.serve_connection(TokioIo::new(tls), service));
    tokio::select! {
        served = &mut conn => served,
        () = stop.stopped() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Accepts from `listener` while `slots` has room, handing each connection to `serve`
/// unless its client has its fill already (then it is closed at once). Returns when
/// `stop` completes.
async fn accept_loop(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    open: &Arc<Open>,
    client_of: impl Fn(SocketAddr) -> Option<client::Client>,
    mut serve: impl FnMut(TcpStream, SocketAddr, Ticks),
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            () = &mut stop => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => return,
        };
        // A client past its cap is turned away here, before TLS or HTTP cost anything.
        let ticket = match client_of(peer) {
            None => None,
            Some(client) => match open.enter(client) {
                Some(ticket) => Some(ticket),
                None => {
                    tracing::debug!(%peer, "too many connections from one client; closed");
                    drop(stream);
                    continue;
                }
            },
        };
        serve(
            stream,
            peer,
            Ticks {
                _slot: slot,
                _ticket: ticket,
            },
        );
    }
}

/// What an accepted connection holds until it ends: its slot, and its client's ticket.
struct Ticks {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _ticket: Option<Ticket>,
}

/// Serves `app` on `listener` (people's connections) and on every namespace's door in
/// `doors` until `shutdown` completes, then drains. With `tls`, every connection must
/// open with a TLS handshake; plain HTTP gets one line saying so.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    doors: Option<Doors>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = Open::new(limits.max_per_client);
    let drain = limits.drain;
    let trusted = limits.trusted_proxies.clone();
    let connections = Connections::new(app, limits, tls);
    if let Some(doors) = &doors {
        doors.open_with(connections.clone());
    }
    // Every connection holds a receiver until it ends: the sender sees them all gone.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    // A trusted proxy carries many people: its connections are not capped per client.
    let client_of =
        |peer: SocketAddr| (!trusted.contains(peer.ip())).then(|| Client::Address(peer.ip()));
    accept_loop(
        &listener,
        &slots,
        &open,
        client_of,
        |stream, peer, ticks| {
            let connections = connections.clone();
            let accepted = connections.unanswered.enter();
            let stop = park::Stop::on(stop.clone());
            let serving = connections.serve(stream, peer, Door::Public, stop, Some(accepted));
            tokio::spawn(
                async move {
                    let _ticks = ticks;
                    serving.await;
                }
                .instrument(tracing::Span::current()),
            );
        },
        shutdown,
    )
    .await;
    if let Some(doors) = &doors {
        doors.close_all();
    }
    // No more accepts (with a socket handed over, new connections now wait in the kernel
    // for the next server); those accepted before get their first request in first.
    let settled = tokio::time::timeout(drain, connections.unanswered.settled()).await;
    if settled.is_err() {
        tracing::warn!("connections sent no request within the drain time; closing them");
    }
    drop(stop);
    stopping.send_replace(true);
    if tokio::time::timeout(drain, stopping.closed())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the drain time; stopping anyway");
    }
}

/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// What a client speaking plain HTTP to the TLS port is told, in one line.
const PLAIN_HTTP: &str = "this port speaks HTTPS only: use an https:// URL\n";

/// A TLS connection, or `None` (said in the log) when the client speaks plain HTTP,
/// takes too long, or fails the handshake.
async fn tls_handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    within: Duration,
) -> Option<Box<tokio_rustls::server::TlsStream<TcpStream>>> {
    use tokio::io::AsyncWriteExt;
    let mut first = [0u8; 1];
    match tokio::time::timeout(within, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
        Ok(Ok(1)) => {
            tracing::info!(%peer, "plain HTTP on the TLS port: refused");
            let mut stream = stream;
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\
                 content-length: {}\r\n\r\n{PLAIN_HTTP}",
                PLAIN_HTTP.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            return None;
        }
        _ => return None,
    }
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        // Boxed here: the connection's task then never holds a TLS session by value.
        Ok(Ok(tls)) => Some(Box::new(tls)),
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake refused");
            None
        }
        Err(_) => None,
    }
}
