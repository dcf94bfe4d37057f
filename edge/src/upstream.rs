//! How the platform reaches a replica's port: hyper's pooled client over a connector that
//! asks the runtime first ([`Runtime::connect_direct`]: on the local sandbox, a socket
//! made inside the replica's own network, so no relay carries the traffic) and otherwise
//! connects to the endpoint's address. The edge and `micro call` both use it.

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use micro_runtime::Runtime;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// Longest a replica may take to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection to a replica is kept for the next request.
const IDLE: Duration = Duration::from_secs(30);

/// Connects to a replica's endpoint, directly where the runtime can.
#[derive(Clone)]
pub struct Dial {
    runtime: Arc<dyn Runtime>,
}

impl Dial {
    pub fn new(runtime: Arc<dyn Runtime>) -> Self {
        Dial { runtime }
    }
}

impl tower_service::Service<hyper::Uri> for Dial {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = futures_util::future::BoxFuture<'static, std::io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let address = uri.authority().map(|a| a.as_str().to_owned());
        let direct = address
            .as_deref()
            .and_then(|a| self.runtime.connect_direct(a));
        Box::pin(async move {
            let connecting = async {
                let stream = match direct {
                    Some(direct) => TcpStream::from_std(direct.await?)?,
                    None => {
                        let address = address.ok_or_else(|| {
                            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address")
                        })?;
                        TcpStream::connect(address).await?
                    }
                };
                // Small answers must not wait for a delayed ACK.
                stream.set_nodelay(true)?;
                Ok(TokioIo::new(stream))
            };
            tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
        })
    }
}

/// A pooled client to replicas over plain HTTP/1.1. It follows no redirect (hyper's
/// client never does).
pub type Upstream = Client<Dial, Body>;

/// The client the platform calls replicas with.
pub fn client(runtime: Arc<dyn Runtime>) -> Upstream {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(Dial::new(runtime))
}

/// A pooled client to replicas that serve TLS, presenting what `tls` holds.
pub type TlsUpstream = Client<hyper_rustls::HttpsConnector<Dial>, Body>;

/// The client for a replica that serves TLS: `tls` decides whom it takes.
pub fn tls_client(runtime: Arc<dyn Runtime>, tls: rustls::ClientConfig) -> TlsUpstream {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(Dial::new(runtime));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .build(connector)
}
