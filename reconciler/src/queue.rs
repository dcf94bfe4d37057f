//! The work queue: one reconcile per namespace at a time; triggers that arrive while a
//! namespace is queued or busy coalesce into one more reconcile.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

pub use micro_store::Trigger;

/// The reasons that coalesced into one reconcile.
pub type Reasons = BTreeSet<Trigger>;

#[derive(Default)]
struct Entry {
    queued: bool,
    running: bool,
    /// Triggered while running: reconcile once more when done.
    dirty: bool,
    /// Why the next run happens.
    reasons: Reasons,
}

#[derive(Default)]
struct State {
    ready: VecDeque<String>,
    entries: HashMap<String, Entry>,
}

/// A coalescing per-namespace work queue; cheap to clone.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
}

impl Queue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a reconcile of `namespace`.
    pub fn trigger(&self, namespace: &str, why: Trigger) {
        tracing::debug!(namespace, trigger = why.as_str(), "reconcile queued");
        let mut state = self.lock();
        let entry = state.entries.entry(namespace.to_owned()).or_default();
        entry.reasons.insert(why);
        if entry.running {
            entry.dirty = true;
        } else if !entry.queued {
            entry.queued = true;
            state.ready.push_back(namespace.to_owned());
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Waits for the next namespace to reconcile; call [`Queue::done`] when finished.
    pub async fn next(&self) -> (String, Reasons) {
        loop {
            let notified = self.wake.notified();
            if let Some(ns) = self.try_next() {
                return ns;
            }
            notified.await;
        }
    }

    fn try_next(&self) -> Option<(String, Reasons)> {
        let mut state = self.lock();
        let ns = state.ready.pop_front()?;
        let mut reasons = Reasons::new();
        if let Some(entry) = state.entries.get_mut(&ns) {
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
        Some((ns, reasons))
    }

    /// Marks `namespace` finished; requeues it if it was triggered meanwhile.
    pub fn done(&self, namespace: &str) {
        let mut state = self.lock();
        let Some(entry) = state.entries.get_mut(namespace) else {
            return;
        };
        entry.running = false;
        if std::mem::take(&mut entry.dirty) {
            entry.queued = true;
            state.ready.push_back(namespace.to_owned());
            drop(state);
            self.wake.notify_one();
        } else {
            state.entries.remove(namespace);
        }
    }

    /// Namespaces waiting (not running).
    pub fn pending(&self) -> usize {
        self.lock().ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn triggers_while_queued_coalesce() {
        let q = Queue::new();
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
        let q = Queue::new();
        q.trigger("a", Trigger::Push);
        let (ns, _) = q.next().await;
        for _ in 0..10 {
            q.trigger("a", Trigger::Push);
        }
        q.trigger("a", Trigger::Drift);
        // Busy namespaces are never handed out twice at once.
        assert!(q.try_next().is_none());
        q.done(&ns);
        let (again, reasons) = q.next().await;
        assert_eq!(again, "a");
        // The reasons of every coalesced trigger are kept, once each.
        assert_eq!(
            reasons.into_iter().collect::<Vec<_>>(),
            vec![Trigger::Push, Trigger::Drift]
        );
        q.done("a");
        assert!(q.try_next().is_none());
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_on_trigger() {
        let q = Queue::new();
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.trigger("z", Trigger::Push);
        assert_eq!(worker.await.unwrap().0, "z");
    }
}
