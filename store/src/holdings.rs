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

use crate::{Store, StoreError};
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

/// What [`Holdings::reserve`] found.
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

impl Store {
    /// Reserves room for a record of `size` bytes in `ns`'s count (counting the store
    /// first if need be); how much was reserved. With `key`, the record may replace one
    /// of that key, which frees its room.
    pub(crate) async fn reserve(
        &self,
        ns: &str,
        key: Option<(&str, &str)>,
        size: i64,
    ) -> Result<i64, StoreError> {
        let mut wanted = size;
        let mut replacing = false;
        loop {
            match self.holdings.reserve(ns, wanted) {
                Reserve::Done => return Ok(wanted),
                Reserve::Uncounted => {
                    let held = self.held_in_database(ns).await?;
                    self.holdings.counted(ns, held);
                }
                // Full with the whole size: the record may replace one, which frees room.
                Reserve::Full { .. } if !replacing && key.is_some() => {
                    replacing = true;
                    let (table, key) = key.unwrap_or_default();
                    let old: Option<i64> = sqlx::query_scalar(
                        "SELECT size FROM kv_records WHERE namespace = $1 AND tbl = $2 AND name = $3",
                    )
                    .bind(ns)
                    .bind(table)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                    wanted = size - old.unwrap_or(0);
                }
                Reserve::Full { wanted, limit } => {
                    return Err(StoreError::StoreFull {
                        namespace: ns.to_owned(),
                        wanted,
                        limit,
                    });
                }
            }
        }
    }

    /// What `ns` keeps in the store, added up from the database: its records (each as
    /// counted when written) and every version of its config values (name and stored,
    /// sealed text, both ASCII).
    pub(crate) async fn held_in_database(&self, ns: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT CAST((SELECT COALESCE(SUM(size), 0) FROM kv_records WHERE namespace = $1) \
             + (SELECT COALESCE(SUM(LENGTH(name) + LENGTH(value)), 0) FROM config_values WHERE namespace = $1) \
             AS BIGINT)",
        )
        .bind(ns)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Sets what `ns` may keep in the store (its quota, in bytes).
    pub fn set_store_limit(&self, ns: &str, limit: i64) {
        self.holdings.set_limit(ns, limit);
    }

    /// Bytes `ns` keeps in the store: key-value records (expired ones until swept) and
    /// config values.
    pub async fn held_bytes(&self, ns: &str) -> Result<i64, StoreError> {
        if let Some(held) = self.holdings.held(ns) {
            return Ok(held);
        }
        let held = self.held_in_database(ns).await?;
        self.holdings.counted(ns, held);
        Ok(self.holdings.held(ns).unwrap_or(held))
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
