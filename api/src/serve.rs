//! The accept loop: axum's router behind hyper with the limits `axum::serve` lacks. A
//! connection cap below the descriptor limit, and a timeout on reading request headers
//! (which also ends connections idling between requests), so idle sockets cannot take
//! the server's descriptors and keep `/healthz` from answering.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

pub use micro_pki::ClientCert;

/// What one server accepts at most.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at once; past it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time to send a request's headers, and most a connection may idle between requests.
    pub header_timeout: Duration,
    /// How long stopping waits for requests in flight.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains. With `tls`, every
/// connection must open with a TLS handshake; plain HTTP gets one line saying so.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
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
            () = &mut shutdown => break,
        };
        // Small final writes (the end of a chunked git response) must not wait for the
        // client's delayed ACK: Nagle's algorithm cost git pushes ~40 ms per request.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let (http, watcher, acceptor) = (http.clone(), graceful.watcher(), acceptor.clone());
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            // Every request knows its client's address and, over mTLS, its certificate.
            let with = |cert: Option<ClientCert>| {
                TowerToHyperService::new(app.map_request(
                    move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                        if let Some(cert) = &cert {
                            req.extensions_mut().insert(cert.clone());
                        }
                        req
                    },
                ))
            };
            let served = match acceptor {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), with(None));
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let Some(tls) = tls_handshake(&acceptor, stream, peer, handshake_timeout).await
                    else {
                        return;
                    };
                    let cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| ClientCert(Arc::from(leaf.as_ref())));
                    let conn = http.serve_connection(TokioIo::new(tls), with(cert));
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection");
            }
        });
    }
    if tokio::time::timeout(limits.drain, graceful.shutdown())
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
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    within: Duration,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
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
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake refused");
            None
        }
        Err(_) => None,
    }
}
