//! The server's background tasks, under one tracker: each runs in a span naming it (so
//! what it logs says whose it is), and all stop together when the server does.

use std::future::Future;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

#[derive(Clone, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Tasks {
    /// Runs `task` in `span` until it ends or the server stops.
    pub fn spawn(&self, span: tracing::Span, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        self.tracker.spawn(
            async move {
                tokio::select! {
                    () = task => {}
                    () = stop.cancelled() => {}
                }
            }
            .instrument(span),
        );
    }

    /// Stops every task and waits until each has.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
