//! The work queue: one run per key at a time; triggers that arrive while a key is queued
//! or busy coalesce into one more run. A failed run is tried again after the one retry
//! policy's next delay for its key. The controller keys it by namespace; the forge
//! follower by namespace and branch or pull request.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

use micro_store::Trigger;

/// The reasons that coalesced into one run.
pub type Reasons = BTreeSet<Trigger>;

/// What a queue's key must be.
pub trait Key: Clone + Eq + Hash + Debug + Send + Sync + 'static {}
impl<K: Clone + Eq + Hash + Debug + Send + Sync + 'static> Key for K {}

/// The first wait after a failure; each failure in a row doubles it, up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// The platform's one retry policy: exponential from [`FIRST_RETRY`] to [`MAX_RETRY`],
/// with jitter (up to the delay again) so failures that began together spread out;
/// tried for ever unless `times` bounds it.
pub fn retry_policy(times: Option<usize>) -> ExponentialBuilder {
    let policy = ExponentialBuilder::new()
        .with_min_delay(FIRST_RETRY)
        .with_max_delay(MAX_RETRY)
        .with_jitter();
    match times {
        Some(n) => policy.with_max_times(n),
        None => policy.without_max_times(),
    }
}

struct Entry {
    queued: bool,
    running: bool,
    /// Triggered while running: run once more when done.
    dirty: bool,
    /// Why the next run happens.
    reasons: Reasons,
}

struct State<K> {
    ready: VecDeque<K>,
    entries: HashMap<K, Entry>,
    /// Keys whose last runs failed: where each is in the retry policy.
    failing: HashMap<K, ExponentialBackoff>,
}

/// A coalescing work queue; cheap to clone.
pub struct Queue<K = String> {
    state: Arc<Mutex<State<K>>>,
    wake: Arc<Notify>,
    policy: ExponentialBuilder,
    /// What a run is, as the log says it ("reconcile queued").
    work: &'static str,
}

impl<K> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Queue {
            state: self.state.clone(),
            wake: self.wake.clone(),
            policy: self.policy,
            work: self.work,
        }
    }
}

impl<K: Key> Queue<K> {
    /// A queue of `work` ("reconcile") whose failed runs are retried for ever.
    pub fn new(work: &'static str) -> Self {
        Self::with_retries(work, retry_policy(None))
    }

    /// A queue of `work` whose failed runs are retried as `policy` says.
    pub fn with_retries(work: &'static str, policy: ExponentialBuilder) -> Self {
        Queue {
            state: Arc::new(Mutex::new(State {
                ready: VecDeque::new(),
                entries: HashMap::new(),
                failing: HashMap::new(),
            })),
            wake: Arc::default(),
            policy,
            work,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a run of `key`.
    pub fn trigger<Q>(&self, key: &Q, why: Trigger)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Debug + ToOwned<Owned = K> + ?Sized,
    {
        tracing::debug!(?key, trigger = why.as_str(), "{} queued", self.work);
        let mut state = self.lock();
        let state = &mut *state;
        let entry = match state.entries.get_mut(key) {
            Some(entry) => entry,
            None => state.entries.entry(key.to_owned()).or_insert(Entry {
                queued: false,
                running: false,
                dirty: false,
                reasons: Reasons::new(),
            }),
        };
        entry.reasons.insert(why);
        if entry.running {
            entry.dirty = true;
        } else if !entry.queued {
            entry.queued = true;
            state.ready.push_back(key.to_owned());
            self.wake.notify_one();
        }
    }

    /// Waits for the next key to run; call [`Queue::done`] when finished.
    pub async fn next(&self) -> (K, Reasons) {
        loop {
            let notified = self.wake.notified();
            if let Some(next) = self.try_next() {
                return next;
            }
            notified.await;
        }
    }

    fn try_next(&self) -> Option<(K, Reasons)> {
        let mut state = self.lock();
        let key = state.ready.pop_front()?;
        let mut reasons = Reasons::new();
        if let Some(entry) = state.entries.get_mut(&key) {
            entry.queued = false;
            entry.running = true;
            reasons = std::mem::take(&mut entry.reasons);
        }
        let more = !state.ready.is_empty();
        drop(state);
        if more {
            // Let another worker pick up the rest.
            self.wake.notify_one();
        }
        Some((key, reasons))
    }

    /// Marks `key` finished; queues it again if it was triggered meanwhile.
    pub fn done(&self, key: &K) {
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(key) else {
            return;
        };
        entry.running = false;
        if std::mem::take(&mut entry.dirty) {
            entry.queued = true;
            state.ready.push_back(key.clone());
            drop(state);
            self.wake.notify_one();
        } else {
            state.entries.remove(key);
        }
    }

    /// `key`'s run succeeded: a next failure starts the policy from its first delay.
    pub fn succeeded(&self, key: &K) {
        self.lock().failing.remove(key);
    }

    /// `key`'s run failed: it is triggered again ([`Trigger::Retry`]) after the policy's
    /// next delay for it, which is returned; `None` once the policy gives up (then only a
    /// new trigger runs it, and the policy starts over).
    pub fn retry_later(&self, key: &K) -> Option<Duration> {
        let delay = {
            let mut state = self.lock();
            let policy = self.policy;
            let delay = state
                .failing
                .entry(key.clone())
                .or_insert_with(|| policy.build())
                .next();
            if delay.is_none() {
                state.failing.remove(key);
            }
            delay?
        };
        let (queue, key) = (self.clone(), key.clone());
        let span = tracing::info_span!("retry", key = ?key);
        tokio::spawn(
            async move {
                tokio::time::sleep(delay).await;
                queue.trigger(&key, Trigger::Retry);
            }
            .instrument(span),
        );
        Some(delay)
    }

    /// Keys waiting (not running).
    pub fn pending(&self) -> usize {
        self.lock().ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn triggers_while_queued_coalesce() {
        let q = Queue::<String>::new("reconcile");
        for _ in 0..5 {
            q.trigger("a", Trigger::Push);
        }
        q.trigger("b", Trigger::Push);
        assert_eq!(q.pending(), 2);
        assert_eq!(q.next().await.0, "a");
        assert_eq!(q.next().await.0, "b");
        assert_eq!(q.pending(), 0);
    }

    #[tokio::test]
    async fn triggers_while_running_give_exactly_one_more_run() {
        let q = Queue::<String>::new("reconcile");
        q.trigger("a", Trigger::Push);
        let (ns, _) = q.next().await;
        for _ in 0..10 {
            q.trigger("a", Trigger::Push);
        }
        q.trigger("a", Trigger::Drift);
        // Busy keys are never handed out twice at once.
        assert!(q.try_next().is_none());
        q.done(&ns);
        let (again, reasons) = q.next().await;
        assert_eq!(again, "a");
        // The reasons of every coalesced trigger are kept, once each.
        assert_eq!(
            reasons.into_iter().collect::<Vec<_>>(),
            vec![Trigger::Push, Trigger::Drift]
        );
        q.done(&again);
        assert!(q.try_next().is_none());
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_on_trigger() {
        let q = Queue::<String>::new("reconcile");
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.trigger("z", Trigger::Push);
        assert_eq!(worker.await.unwrap().0, "z");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_key_comes_back_later_each_time_until_the_policy_gives_up() {
        let q = Queue::<(String, u64)>::with_retries("fetch", retry_policy(Some(3)));
        let key = ("acme".to_owned(), 7);
        let mut delays = Vec::new();
        while let Some(delay) = q.retry_later(&key) {
            delays.push(delay);
            let (again, reasons) = q.next().await;
            assert_eq!(again, key);
            assert_eq!(
                reasons.into_iter().collect::<Vec<_>>(),
                vec![Trigger::Retry]
            );
            q.done(&again);
        }
        assert_eq!(delays.len(), 3, "{delays:?}");
        // Each wait is within its step of the doubling, jitter included.
        for (i, d) in delays.iter().enumerate() {
            let step = FIRST_RETRY * 2u32.pow(u32::try_from(i).unwrap());
            assert!(*d >= step && *d < step * 2, "{delays:?}");
        }
        // Given up: a success (or a new trigger) starts the policy over.
        q.succeeded(&key);
        assert!(q.retry_later(&key).is_some_and(|d| d < FIRST_RETRY * 2));
    }
}
