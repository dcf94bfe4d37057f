//! A load generator that takes as little of the machine as it can, as `wrk` would: one
//! keep-alive HTTP/1.1 connection per request in flight, opened before the clock starts;
//! no pool, no retries, no JSON decoding. On two shared cores whatever the client spends
//! is taken from the server, so the API's figure is measured with this; micro's own client
//! library (reqwest) is measured beside it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

/// What one request is: its method, path and query, and body (empty for a read).
pub type Make = fn(usize) -> (Method, String, Option<String>);

async fn connect(addr: &str) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// Sends `make(i)` for every i in `keys`, `in_flight` at a time over as many connections,
/// all on one thread of its own (as `wrk -t1`: no wake-ups across threads on the client's
/// side); every answer must be a success and is read to its end. Returns how long it took.
pub fn timed(
    addr: &str,
    token: &str,
    in_flight: usize,
    keys: std::ops::Range<usize>,
    make: Make,
) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conns = Vec::with_capacity(in_flight);
        for _ in 0..in_flight {
            conns.push(connect(addr).await);
        }
        let auth = format!("Bearer {token}");
        let t = Instant::now();
        let workers: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(w, mut send)| {
                let (keys, auth, host) = (keys.clone(), auth.clone(), addr.to_owned());
                tokio::spawn(async move {
                    let mut i = keys.start + w;
                    while i < keys.end {
                        let (method, path, body) = make(i);
                        let mut req = Request::builder()
                            .method(method)
                            .uri(path)
                            .header("host", &host)
                            .header("authorization", &auth);
                        if body.is_some() {
                            req = req.header("content-type", "application/json");
                        }
                        let req = req
                            .body(Full::new(Bytes::from(body.unwrap_or_default())))
                            .unwrap();
                        let response = send.send_request(req).await.unwrap();
                        let status = response.status();
                        let body = response.into_body().collect().await.unwrap().to_bytes();
                        assert!(status.is_success(), "{status}: {body:?}");
                        i += in_flight;
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        t.elapsed()
    })
}
