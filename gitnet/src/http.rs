//! The platform's clients of REST APIs elsewhere (the forges', Stripe's): reqwest, like
//! every other client of the workspace, never a redirect followed, every exchange bounded
//! in time and size. The forges' client resolves names through the address policy
//! ([`checked_client`]); Stripe's, an operator's choice, does not.

use bytes::{Bytes, BytesMut};
use micro_tenant::sources::SourcePolicy;
use std::sync::Arc;
use std::time::Duration;

/// Longest an API may take to answer (the whole exchange), and most it may send back.
const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_ANSWER: usize = 16 << 20;

/// Why an exchange got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExchangeError(String);

/// An answer: its status, headers and body.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

fn builder() -> reqwest::ClientBuilder {
    // The platform's one TLS provider (ring), as the binary installs it at start; here
    // too, for a library used without it (its tests, a bench).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(crate::CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .user_agent(concat!("micro-platform/", env!("CARGO_PKG_VERSION")))
}

fn built(b: reqwest::ClientBuilder) -> Result<reqwest::Client, ExchangeError> {
    b.build()
        .map_err(|e| ExchangeError(format!("cannot set up the client: {e}")))
}

/// A client of an API the operator named (Stripe's): the system's resolver; plain http
/// allowed for local stand-ins.
pub fn plain_client() -> Result<reqwest::Client, ExchangeError> {
    built(builder())
}

/// A client of an API a tenant named (a forge's): every name is resolved by the address
/// policy, and only addresses it allows are connected to (a DNS answer that changes
/// between a check and the connection reaches nothing local). A literal address in a
/// URL is no name: check the URL with the policy first.
pub fn checked_client(policy: &SourcePolicy) -> Result<reqwest::Client, ExchangeError> {
    built(builder().dns_resolver(Arc::new(crate::CheckedResolver::new(policy.clone()))))
}

/// Sends `req` and reads the answer within the client's timeout and [`MAX_ANSWER`]
/// bytes. A 3xx is an answer like any other.
pub async fn exchange(req: reqwest::RequestBuilder) -> Result<Answer, ExchangeError> {
    let mut res = req
        .send()
        .await
        .map_err(|e| ExchangeError(crate::describe(&e)))?;
    let status = res.status().as_u16();
    let headers = std::mem::take(res.headers_mut());
    let mut body = BytesMut::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| ExchangeError(crate::describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(ExchangeError(format!(
                "the answer is over {MAX_ANSWER} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: body.freeze(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-line HTTP server answering every request with `answer`; how many it had.
    async fn serve(answer: String) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let counted = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_never_followed_and_a_huge_answer_is_refused() {
        let (victim, victim_seen) =
            serve("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret".into()).await;
        let (api, _) = serve(format!(
            "HTTP/1.1 302 Found\r\nlocation: {victim}/\r\ncontent-length: 0\r\n\r\n"
        ))
        .await;
        let local = SourcePolicy {
            allow_local: true,
            forbidden: Vec::new(),
        };
        for client in [plain_client().unwrap(), checked_client(&local).unwrap()] {
            let answer = exchange(client.get(format!("{api}/statuses")))
                .await
                .unwrap();
            assert_eq!(answer.status, 302);
        }
        assert_eq!(
            victim_seen.load(Ordering::SeqCst),
            0,
            "a redirect was followed"
        );
        // A tenant's API cannot make the platform read without end.
        let huge = MAX_ANSWER + 1;
        let (big, _) = serve(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {huge}\r\n\r\n{}",
            "x".repeat(huge)
        ))
        .await;
        let err = exchange(plain_client().unwrap().get(big))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("bytes"), "{err}");
        // And a name of a local address is refused by the checked client.
        let strict = checked_client(&SourcePolicy::default()).unwrap();
        let port = api.rsplit(':').next().unwrap();
        let refused = exchange(strict.get(format!("http://localhost:{port}/"))).await;
        assert!(refused.is_err());
    }
}
