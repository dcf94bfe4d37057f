//! HTTP/1.1 connections served in bursts. hyper keeps 16 KiB of buffers for as long as a
//! connection is open, idle or not; a keep-alive connection that has done nothing for a
//! second gives its HTTP state back and waits for its next byte holding only its stream
//! (and, over TLS, its session). Idle connections then cost what their TLS state costs.
//!
//! A request that asks to switch protocols (a WebSocket) turns its connection into one
//! hyper serves to the end, since only hyper can hand the upgraded stream over.

use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a connection must have done nothing before it is parked.
const QUIET: Duration = Duration::from_millis(100);

/// Turns a request as hyper read it into the app's (its client, its body's rate).
pub(super) type Prepare =
    Arc<dyn Fn(hyper::Request<Incoming>) -> axum::extract::Request + Send + Sync>;

/// A stopping server's word to its connections: finish the request under way, then close.
#[derive(Clone)]
pub(super) struct Stop(Option<watch::Receiver<bool>>);

impl Stop {
    /// A connection nobody drains (it ends with the server).
    pub(super) fn never() -> Self {
        Stop(None)
    }

    pub(super) fn on(receiver: watch::Receiver<bool>) -> Self {
        Stop(Some(receiver))
    }

    /// Completes once the server stops (or is gone).
    pub(super) async fn stopped(&mut self) {
        match &mut self.0 {
            Some(receiver) => {
                let _ = receiver.wait_for(|stopped| *stopped).await;
            }
            None => std::future::pending().await,
        }
    }
}

/// What one connection has been doing, as its stream, its requests and its loop see it.
#[derive(Default)]
struct Activity {
    /// Reads and writes that completed, ever.
    ops: AtomicU64,
    /// Reads that brought bytes, ever.
    reads: AtomicU64,
    /// `reads` when the last response was sent: more since means a request has begun.
    reads_answered: AtomicU64,
    /// Requests whose response has not been sent (its body dropped) yet.
    in_flight: AtomicUsize,
    /// Bytes were written and not flushed since.
    unflushed: AtomicBool,
    /// A request asked to switch protocols.
    upgrade: AtomicBool,
    /// Times it was parked.
    parks: AtomicU64,
}

impl Activity {
    /// Between requests: nothing under way, nothing left to send, and not a byte of the
    /// next request read. (A request begun must finish within hyper's header timeout;
    /// parking it would start that timeout again, and a client sending a byte now and
    /// then could hold its connection for ever.)
    fn at_rest(&self) -> bool {
        self.in_flight.load(Relaxed) == 0
            && !self.unflushed.load(Relaxed)
            && self.reads.load(Relaxed) == self.reads_answered.load(Relaxed)
    }
}

/// The connection's stream, with bytes read ahead of hyper put back in front.
struct Tracked<T> {
    io: T,
    rewound: Option<Bytes>,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() > 0
            && let Some(mut bytes) = this.rewound.take()
        {
            let n = bytes.len().min(buf.remaining());
            buf.put_slice(&bytes.split_to(n));
            if !bytes.is_empty() {
                this.rewound = Some(bytes);
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if read.is_ready() {
            this.activity.ops.fetch_add(1, Relaxed);
            if buf.filled().len() > before {
                this.activity.reads.fetch_add(1, Relaxed);
            }
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> Tracked<T> {
    fn wrote(&self, written: &Poll<std::io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = written
            && *n > 0
        {
            self.activity.ops.fetch_add(1, Relaxed);
            self.activity.unflushed.store(true, Relaxed);
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.activity.unflushed.store(false, Relaxed);
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The app as hyper calls it on one connection: each request is counted until its
/// response has been sent.
#[derive(Clone)]
struct Service {
    app: Router,
    prepare: Prepare,
    activity: Arc<Activity>,
    upgrades: bool,
}

type Answer = Result<axum::response::Response, std::convert::Infallible>;

impl hyper::service::Service<hyper::Request<Incoming>> for Service {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let counted = InFlight::enter(&self.activity);
        let upgrade = self.upgrades && request.headers().contains_key(hyper::header::UPGRADE);
        if upgrade {
            self.activity.upgrade.store(true, Relaxed);
        }
        let request = (self.prepare)(request);
        let app = self.app.clone();
        Box::pin(async move {
            if upgrade {
                // The loop must see the upgrade before hyper can send a 101 on a
                // connection it would then refuse to hand over.
                tokio::task::yield_now().await;
            }
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|body| {
                axum::body::Body::new(Counted {
                    body,
                    _in_flight: counted,
                })
            }))
        })
    }
}

/// One request under way, until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        // Bytes read while a request is under way are its body, or a pipelined request
        // that hyper already holds whole: either way not a request begun and waiting.
        activity
            .reads_answered
            .store(activity.reads.load(Relaxed), Relaxed);
        activity.in_flight.fetch_sub(1, Relaxed);
    }
}

/// A response body that keeps its request counted until hyper is done with it.
struct Counted {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// How a burst of requests on one connection ended.
enum Burst {
    /// hyper is done with the connection (the client closed it, or an error, or a stop).
    Ended(Result<(), hyper::Error>),
    /// Quiet long enough: hyper let go of it between requests.
    Parked,
    /// A request asked to switch protocols.
    Upgrade,
}

/// Serves HTTP/1.1 on `io` until the client leaves, the connection idles for `idle`
/// between requests, or `stop` (then the request under way is answered first).
pub(super) fn serve<T>(
    http: http1::Builder,
    io: T,
    app: Router,
    prepare: Prepare,
    upgrades: bool,
    idle: Duration,
    stop: Stop,
) -> Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = Service {
        app,
        prepare,
        activity: activity.clone(),
        upgrades,
    };
    // On the heap, so that handing it to hyper and back moves a pointer.
    let io = Box::new(Tracked {
        io,
        rewound: None,
        activity,
    });
    // Boxed, and made outside any async fn (which would keep a copy of `io` for nothing):
    // what a parked connection holds is this future's, so it is kept small.
    Box::pin(bursts(http, io, service, idle, stop))
}

/// [`serve`]'s loop: a burst of requests, a wait while parked, and again.
async fn bursts<T>(
    http: http1::Builder,
    mut io: Box<Tracked<T>>,
    service: Service,
    idle: Duration,
    mut stop: Stop,
) -> Result<(), hyper::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        // hyper starts only once there is something to read: a connection opened ahead
        // of its first request (a browser's preconnect) waits as a parked one does. And
        // hyper can only let go between requests, never before the first.
        if io.rewound.is_none() {
            let mut first = [0u8; 1];
            tokio::select! {
                read = io.read(&mut first) => match read {
                    Ok(1) => io.rewound = Some(Bytes::copy_from_slice(&first)),
                    _ => return Ok(()),
                },
                () = tokio::time::sleep(idle) => {
                    let _ = tokio::time::timeout(QUIET, io.shutdown()).await;
                    return Ok(());
                }
                () = stop.stopped() => {
                    let _ = tokio::time::timeout(QUIET, io.shutdown()).await;
                    return Ok(());
                }
            }
        }
        let conn = Box::new(http.serve_connection(TokioIo::new(io), service.clone()));
        let read_buf = match burst(conn, &service.activity, &mut stop).await {
            Ok((parked, read_buf)) => {
                io = parked;
                read_buf
            }
            Err(ended) => return ended.await,
        };
        if read_buf.is_empty() {
            let parks = io.activity.parks.fetch_add(1, Relaxed) + 1;
            tracing::trace!(parks, "idle connection parked");
        } else {
            // The start of a request hyper read ahead: begun, so not parked again before
            // it is answered (its header timeout runs from now).
            io.activity.reads.fetch_add(1, Relaxed);
            io.rewound = Some(read_buf);
        }
    }
}

/// What is left to do with a connection hyper has finished with.
type Ending = Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>;

/// One burst: the stream (and what hyper had read past the last request) once parked,
/// or the rest of the connection's life when it ends or is upgraded.
async fn burst<T>(
    mut conn: Box<Connection<T>>,
    activity: &Activity,
    stop: &mut Stop,
) -> Result<(Box<Tracked<T>>, Bytes), Ending>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match drive(&mut conn, activity, stop).await {
        Burst::Parked => {
            let http1::Parts { io, read_buf, .. } = conn.into_parts();
            Ok((io.into_inner(), read_buf))
        }
        Burst::Ended(served) => {
            // hyper left the stream open (so that a parked one could be kept).
            let mut io = conn.into_parts().io.into_inner();
            Err(Box::pin(async move {
                let _ = tokio::time::timeout(QUIET, io.shutdown()).await;
                served
            }))
        }
        Burst::Upgrade => {
            let mut upgradeable = Box::pin(conn.with_upgrades());
            let mut stop = stop.clone();
            Err(Box::pin(async move {
                tokio::select! {
                    served = &mut upgradeable => served,
                    () = stop.stopped() => {
                        upgradeable.as_mut().graceful_shutdown();
                        upgradeable.await
                    }
                }
            }))
        }
    }
}

type Connection<T> = http1::Connection<TokioIo<Box<Tracked<T>>>, Service>;

/// Drives `conn` until hyper is done with it, it has been quiet for [`QUIET`] (then hyper
/// is told to let go, which it does at once when no request is under way), or a request
/// asks for an upgrade.
async fn drive<T>(conn: &mut Connection<T>, activity: &Activity, stop: &mut Stop) -> Burst
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut quiet = pin!(tokio::time::sleep(QUIET));
    let mut stopped = pin!(stop.stopped());
    let mut seen = activity.ops.load(Relaxed);
    let (mut parking, mut stopping) = (false, false);
    poll_fn(|cx| {
        loop {
            if !stopping && stopped.as_mut().poll(cx).is_ready() {
                stopping = true;
                Pin::new(&mut *conn).graceful_shutdown();
            }
            if let Poll::Ready(served) = conn.poll_without_shutdown(cx) {
                return Poll::Ready(match served {
                    Ok(()) if parking && !stopping => Burst::Parked,
                    served => Burst::Ended(served),
                });
            }
            if activity.upgrade.load(Relaxed) {
                return Poll::Ready(Burst::Upgrade);
            }
            if parking || stopping || quiet.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let ops = activity.ops.load(Relaxed);
            if ops == seen && activity.at_rest() {
                // Between requests (hyper has not read a byte of the next one, or it
                // would have been counted): it closes at once, keeping the stream.
                parking = true;
                Pin::new(&mut *conn).graceful_shutdown();
            } else {
                seen = ops;
                quiet.as_mut().reset(tokio::time::Instant::now() + QUIET);
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Instant;

    /// One connection served by [`bursts`] on loopback; its activity, to watch it park.
    async fn one_connection(idle: Duration) -> (std::net::TcpStream, Arc<Activity>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut http = http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(idle);
        let app = Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let activity = Arc::new(Activity::default());
        let service = Service {
            app,
            prepare: Arc::new(|r: hyper::Request<Incoming>| r.map(axum::body::Body::new)),
            activity: activity.clone(),
            upgrades: false,
        };
        let io = Box::new(Tracked {
            io: stream,
            rewound: None,
            activity: activity.clone(),
        });
        tokio::spawn(bursts(http, io, service, idle, Stop::never()));
        client
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        (client, activity)
    }

    /// Reads one `hello` response (they are all the same length).
    fn answer(client: &mut std::net::TcpStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(b"hello") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    async fn parked(activity: &Activity, times: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while activity.parks.load(Relaxed) < times {
            assert!(Instant::now() < deadline, "never parked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_keep_alive_connection_is_parked_and_still_answers() {
        let (mut client, activity) = one_connection(Duration::from_secs(60)).await;
        let request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        client.write_all(request).unwrap();
        assert!(answer(&mut client).starts_with("HTTP/1.1 200"));
        parked(&activity, 1).await;
        // The same connection answers again, a request at a time and two at once.
        client.write_all(request).unwrap();
        assert!(answer(&mut client).starts_with("HTTP/1.1 200"));
        parked(&activity, 2).await;
        client
            .write_all(&[&request[..], &request[..]].concat())
            .unwrap();
        let both = answer(&mut client);
        let both = if both.matches("200 OK").count() == 2 {
            both
        } else {
            both + &answer(&mut client)
        };
        assert_eq!(both.matches("HTTP/1.1 200 OK").count(), 2, "{both}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_sent_slowly_after_a_pause_keeps_its_connection_alive() {
        let (mut client, activity) = one_connection(Duration::from_secs(60)).await;
        let request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        client.write_all(request).unwrap();
        answer(&mut client);
        parked(&activity, 1).await;
        // Half a request, then a pause long enough that a parked connection would be
        // parked again: it must not be (hyper would close it after this answer).
        client.write_all(&request[..16]).unwrap();
        std::thread::sleep(QUIET * 5);
        client.write_all(&request[16..]).unwrap();
        let answered = answer(&mut client);
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        assert!(!answered.contains("connection: close"), "{answered}");
        client.write_all(request).unwrap();
        assert!(answer(&mut client).starts_with("HTTP/1.1 200"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_trickled_in_gets_no_more_time_from_parking() {
        // The attack: a request's head, a byte at a time, each after the connection has
        // been quiet long enough to be parked. Its header timeout (1 s) must still end it.
        let (mut client, activity) = one_connection(Duration::from_secs(1)).await;
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        answer(&mut client);
        parked(&activity, 1).await;
        client.set_read_timeout(Some(QUIET * 2)).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let closed = loop {
            if client.write_all(b"x").is_err() {
                break true;
            }
            match client.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) if buf[..n].starts_with(b"HTTP/1.1 408") => break true,
                Ok(n) => panic!("{:?} to half a request", String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => {}
            }
            // Twenty times the timeout: what a client gets if parking restarted it.
            if started.elapsed() > Duration::from_secs(20) {
                break false;
            }
        };
        assert!(
            closed,
            "a trickled request head outlived its header timeout"
        );
    }
}
