//! A minimum rate for request bodies. hyper's header timeout ends a client that is slow to
//! send its headers, but a body that trickles in (a byte every few seconds) would hold its
//! connection, and a slot of the server, for ever. Like Apache's `mod_reqtimeout`
//! (`body=…,MinRate=…`): after a grace period, the bytes received must keep up with a
//! minimum rate, or the body ends in an error and the connection with it.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How fast a request body must arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyRate {
    /// Time a body may take before the rate counts (a slow start, a big first write).
    pub grace: Duration,
    /// Bytes per second a body must average after the grace period.
    pub min_bytes_per_sec: u64,
}

impl Default for BodyRate {
    fn default() -> Self {
        BodyRate {
            grace: Duration::from_secs(10),
            min_bytes_per_sec: 1024,
        }
    }
}

/// The error a body ends with when it arrives too slowly.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than {0} bytes per second")]
pub struct TooSlow(u64);

/// A request body that fails once it falls behind its [`BodyRate`].
pub struct MinRate<B> {
    inner: B,
    rate: BodyRate,
    started: Instant,
    received: u64,
    /// Made the first time the body has to wait: a body that is already there (or a
    /// request without one) costs no timer.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> MinRate<B> {
    pub fn new(inner: B, rate: BodyRate) -> Self {
        MinRate {
            inner,
            rate,
            started: Instant::now(),
            received: 0,
            deadline: None,
        }
    }

    /// When the bytes received so far stop being enough.
    fn due(&self) -> Instant {
        let earned = Duration::from_secs_f64(
            self.received as f64 / self.rate.min_bytes_per_sec.max(1) as f64,
        );
        self.started + self.rate.grace + earned
    }
}

impl<B> Body for MinRate<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let due = this.due();
                    if let Some(deadline) = this.deadline.as_mut() {
                        deadline.as_mut().reset(due);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let due = this.due();
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(TooSlow(this.rate.min_bytes_per_sec).into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use http_body_util::{BodyExt, StreamBody};

    fn trickle(
        every: Duration,
        chunks: usize,
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>>> {
        let stream = futures_util::stream::unfold(0, move |n| async move {
            if n == chunks {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok(Frame::data(Bytes::from_static(b"x"))), n + 1))
        });
        StreamBody::new(Box::pin(stream))
    }

    const RATE: BodyRate = BodyRate {
        grace: Duration::from_secs(10),
        min_bytes_per_sec: 1024,
    };

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_is_cut_after_the_grace_period() {
        let body = MinRate::new(trickle(Duration::from_secs(5), 1000), RATE);
        let started = Instant::now();
        let Err(err) = body.collect().await else {
            panic!("a trickle must fail");
        };
        assert!(err.to_string().contains("slower than 1024 bytes"), "{err}");
        // A byte every 5 s buys 1 ms each: cut at the first wait past the grace period.
        assert!(
            started.elapsed() < Duration::from_secs(16),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_the_rate_arrives_whole() {
        // 64 KiB every 10 s: 6.5 KiB/s on average, above 1 KiB/s.
        let chunk = Bytes::from(vec![b'y'; 64 << 10]);
        let stream =
            futures_util::stream::iter((0..6).map(move |_| chunk.clone())).then(|c| async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok::<_, std::io::Error>(Frame::data(c))
            });
        let body = MinRate::new(StreamBody::new(Box::pin(stream)), RATE);
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 6 * (64 << 10));
    }
}
