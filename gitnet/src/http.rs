//! The platform's clients of REST APIs elsewhere (the forges', Stripe's): hyper with
//! rustls (ring) and the system's roots, HTTP/1.1, never a redirect followed, every
//! exchange bounded in time and size. The forges' client resolves names through the
//! address policy ([`CheckedClient`]); Stripe's, an operator's choice, does not.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use micro_tenant::sources::SourcePolicy;
use std::time::Duration;

/// Longest an API may take to answer, and most it may send back.
const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_ANSWER: usize = 16 << 20;

type Connector<R> = hyper_util::client::legacy::connect::HttpConnector<R>;
type Client<R> =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<Connector<R>>, Full<Bytes>>;
/// A client of an API the operator named (Stripe's): the system's resolver.
pub type PlainClient = Client<hyper_util::client::legacy::connect::dns::GaiResolver>;
/// A client of an API a tenant named (a forge's): every name is resolved by the address
/// policy, and only addresses it allows are connected to (a DNS answer that changes
/// between a check and the connection reaches nothing local).
pub type CheckedClient = Client<crate::CheckedResolver>;

/// Why an exchange got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExchangeError(String);

/// Plain http allowed for local stand-ins.
pub fn plain_client() -> Result<PlainClient, ExchangeError> {
    over(Connector::new())
}

/// A client that connects only where `policy` allows.
pub fn checked_client(policy: &SourcePolicy) -> Result<CheckedClient, ExchangeError> {
    let mut http = Connector::new_with_resolver(crate::CheckedResolver::new(policy.clone()));
    http.set_connect_timeout(Some(crate::CONNECT_TIMEOUT));
    over(http)
}

/// A client with TLS over `http`'s connections.
fn over<R>(mut http: Connector<R>) -> Result<Client<R>, ExchangeError>
where
    hyper_rustls::HttpsConnector<Connector<R>>:
        hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    http.enforce_http(false);
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| ExchangeError(format!("TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https),
    )
}

/// Sends `req` and reads the answer, each within [`TIMEOUT`] and the answer within
/// [`MAX_ANSWER`] bytes: (status, headers, body). hyper's client follows no redirect: a
/// 3xx is an answer like any other.
pub async fn exchange<C>(
    http: &hyper_util::client::legacy::Client<C, Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> Result<(u16, http::HeaderMap, Bytes), ExchangeError>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let timed_out = |_| ExchangeError("timed out".into());
    let res = tokio::time::timeout(TIMEOUT, http.request(req))
        .await
        .map_err(timed_out)?
        .map_err(|e| ExchangeError(e.to_string()))?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(
        TIMEOUT,
        http_body_util::Limited::new(res.into_body(), MAX_ANSWER).collect(),
    )
    .await
    .map_err(timed_out)?
    .map_err(|e| ExchangeError(e.to_string()))?
    .to_bytes();
    Ok((status, headers, body))
}
