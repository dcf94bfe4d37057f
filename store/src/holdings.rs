//! What each namespace keeps in the store (key-value records and config values, every
//! version), counted in this process's memory so a write is checked against the
//! namespace's quota at no cost to the database: added up once (the first write after
//! start), then kept exact by every write (its size, less the size its upsert says it
//! replaced), every delete and every sweep (the sizes they removed). A write first
//! reserves its whole size, so writers racing for the last room cannot pass the limit
//! together.
//!
//! Like the auth cache this is one process's memory: a second server writing the same
//! database would not be counted here (the platform runs one server).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
pub(crate) struct Holdings {
    namespaces: Mutex<HashMap<String, Count>>,
}

#[derive(Debug, Default)]
struct Count {
    /// Bytes held and reserved; `None` until counted.
    bytes: Option<i64>,
    /// The quota; `None`: none published (no limit).
    limit: Option<i64>,
}

/// What [`KvUsage::reserve`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reserve {
    Done,
    /// Not counted yet: count, [`Holdings::counted`], and ask again.
    Uncounted,
    /// Over the limit: what the store would hold, and the limit.
    Full {
        wanted: i64,
        limit: i64,
    },
}

impl Holdings {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Count>> {
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `bytes` to `ns`'s count if that keeps it within the limit (or shrinks it).
    pub(crate) fn reserve(&self, ns: &str, bytes: i64) -> Reserve {
        let mut map = self.lock();
        let count = map.entry(ns.to_owned()).or_default();
        let Some(held) = count.bytes else {
            return Reserve::Uncounted;
        };
        let wanted = held.saturating_add(bytes);
        match count.limit {
            Some(limit) if bytes > 0 && wanted > limit => Reserve::Full { wanted, limit },
            _ => {
                count.bytes = Some(wanted);
                Reserve::Done
            }
        }
    }

    /// Changes a counted namespace's count by `delta` (a write's remainder, a delete).
    pub(crate) fn settle(&self, ns: &str, delta: i64) {
        if let Some(Count {
            bytes: Some(held), ..
        }) = self.lock().get_mut(ns)
        {
            *held = held.saturating_add(delta);
        }
    }

    /// Sets the count found by adding `ns`'s records up, unless another writer's count
    /// got there first (the first one counted before any write was let through).
    pub(crate) fn counted(&self, ns: &str, bytes: i64) {
        let mut map = self.lock();
        let count = map.entry(ns.to_owned()).or_default();
        count.bytes.get_or_insert(bytes);
    }

    pub(crate) fn set_limit(&self, ns: &str, limit: i64) {
        self.lock().entry(ns.to_owned()).or_default().limit = Some(limit);
    }

    /// The count, if counted.
    pub(crate) fn held(&self, ns: &str) -> Option<i64> {
        self.lock().get(ns).and_then(|c| c.bytes)
    }

    /// Drops a deleted namespace: a namespace made again under its name starts afresh.
    pub(crate) fn forget(&self, ns: &str) {
        self.lock().remove(ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_reserves_within_the_limit_and_shrinking_always_goes() {
        let usage = Holdings::default();
        assert_eq!(usage.reserve("a", 10), Reserve::Uncounted);
        usage.counted("a", 90);
        usage.counted("a", 5); // a later count does not replace the first
        usage.set_limit("a", 100);
        assert_eq!(usage.reserve("a", 10), Reserve::Done);
        assert_eq!(
            usage.reserve("a", 1),
            Reserve::Full {
                wanted: 101,
                limit: 100
            }
        );
        usage.set_limit("a", 50);
        assert_eq!(usage.reserve("a", -20), Reserve::Done);
        assert_eq!(usage.held("a"), Some(80));
        usage.settle("a", -30);
        assert_eq!(usage.held("a"), Some(50));
        assert_eq!(usage.held("b"), None);
        usage.forget("a");
        assert_eq!(usage.reserve("a", 1), Reserve::Uncounted);
    }
}
