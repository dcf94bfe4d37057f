//! What nearly every request asks the store first — who a token (or a deployment's
//! certificate) is, whether a namespace exists, whether it is suspended — kept in
//! memory and dropped at once by every store method that changes it: a revoked token, a
//! service's tokens retired or revoked, a suspension or its end, a deleted account. So
//! the very next request after any of those is answered from the database, and so is
//! every request after a namespace is deleted.
//!
//! A lookup that raced with a change must not put back what the change dropped: every
//! drop bumps a generation, and a lookup caches its answer only if no drop happened
//! since it started. This is one process's memory: a second server on the same database
//! would not see the first one's drops (the platform runs one server).

use crate::{Account, Suspension};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Entries kept per map before it is emptied and filled again (a bound on memory, not
/// a policy: hot entries come back with their next request).
const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, Default)]
pub(crate) struct AuthCache {
    generation: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Token hash → its account and when it expires (ms), if it does.
    tokens: HashMap<String, (Account, Option<i64>)>,
    /// (namespace, service, deployment) → the service's account while it is live.
    deployments: HashMap<(String, String, String), Account>,
    /// Namespaces known to exist.
    namespaces: HashSet<String>,
    /// Namespace → its suspension, if any.
    suspensions: HashMap<String, Option<Suspension>>,
}

/// Where a lookup started: it may cache its answer only if nothing was dropped since.
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

impl Inner {
    /// Drops every token and deployment of the accounts `gone` picks.
    fn forget_accounts(&mut self, gone: impl Fn(&Account) -> bool) {
        self.tokens.retain(|_, (a, _)| !gone(a));
        self.deployments.retain(|_, a| !gone(a));
    }
}

fn bounded<K, V>(map: &mut HashMap<K, V>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
}

impl AuthCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// Runs `f` on the maps if no drop happened since `ticket` (under the lock, so no
    /// drop can come between the check and the insert).
    fn fill(&self, ticket: Ticket, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.lock();
        if self.generation.load(Ordering::SeqCst) == ticket.0 {
            f(&mut inner);
        }
    }

    /// Drops with `f`, bumping the generation first (under the lock).
    fn drop_with(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        f(&mut inner);
    }

    pub fn token(&self, hash: &str, now_ms: i64) -> Option<Account> {
        let inner = self.lock();
        let (account, expires) = inner.tokens.get(hash)?;
        expires
            .is_none_or(|at| at > now_ms)
            .then(|| account.clone())
    }

    pub fn put_token(&self, ticket: Ticket, hash: &str, account: &Account, expires: Option<i64>) {
        self.fill(ticket, |inner| {
            bounded(&mut inner.tokens);
            inner
                .tokens
                .insert(hash.to_owned(), (account.clone(), expires));
        });
    }

    pub fn forget_token(&self, hash: &str) {
        self.drop_with(|inner| {
            inner.tokens.remove(hash);
        });
    }

    pub fn deployment(&self, key: &(String, String, String)) -> Option<Account> {
        self.lock().deployments.get(key).cloned()
    }

    pub fn put_deployment(&self, ticket: Ticket, key: (String, String, String), account: &Account) {
        self.fill(ticket, |inner| {
            bounded(&mut inner.deployments);
            inner.deployments.insert(key, account.clone());
        });
    }

    /// Everything an account authenticates with: its tokens, its deployments.
    pub fn forget_account(&self, account_id: &str) {
        self.forget_where(|a| a.id == account_id);
    }

    /// Everything a service's identity authenticates with (its deployments' tokens).
    pub fn forget_service(&self, namespace: &str, service: &str) {
        self.forget_where(|a| {
            a.namespace.as_deref() == Some(namespace) && a.service.as_deref() == Some(service)
        });
    }

    fn forget_where(&self, gone: impl Fn(&Account) -> bool) {
        self.drop_with(|inner| inner.forget_accounts(gone));
    }

    pub fn namespace_exists(&self, name: &str) -> bool {
        self.lock().namespaces.contains(name)
    }

    pub fn put_namespace(&self, ticket: Ticket, name: &str) {
        self.fill(ticket, |inner| {
            if inner.namespaces.len() >= MAX_ENTRIES {
                inner.namespaces.clear();
            }
            inner.namespaces.insert(name.to_owned());
        });
    }

    /// `Some(answer)` if known.
    pub fn suspension(&self, namespace: &str) -> Option<Option<Suspension>> {
        self.lock().suspensions.get(namespace).copied()
    }

    pub fn put_suspension(&self, ticket: Ticket, namespace: &str, s: Option<Suspension>) {
        self.fill(ticket, |inner| {
            bounded(&mut inner.suspensions);
            inner.suspensions.insert(namespace.to_owned(), s);
        });
    }

    /// Everything of a deleted namespace: that it exists, its suspension, and every
    /// token and deployment of an account in it (developers and services alike).
    pub fn forget_namespace(&self, namespace: &str) {
        self.drop_with(|inner| {
            inner.namespaces.remove(namespace);
            inner.suspensions.remove(namespace);
            inner.forget_accounts(|a| {
                a.role != crate::Role::Admin && a.namespace.as_deref() == Some(namespace)
            });
        });
    }

    pub fn forget_suspension(&self, namespace: &str) {
        self.drop_with(|inner| {
            inner.suspensions.remove(namespace);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    fn account(id: &str, ns: &str) -> Account {
        Account {
            id: id.into(),
            email: format!("{id}@example.com"),
            role: Role::Developer,
            namespace: Some(ns.into()),
            service: None,
        }
    }

    #[test]
    fn a_lookup_that_raced_with_a_drop_does_not_put_back_what_was_dropped() {
        let cache = AuthCache::default();
        let a = account("a", "team");
        // A lookup starts, the token is revoked meanwhile, the lookup ends: not cached.
        let ticket = cache.ticket();
        cache.forget_token("h1");
        cache.put_token(ticket, "h1", &a, None);
        assert_eq!(cache.token("h1", 0), None);
        // Without a drop in between, it is.
        let ticket = cache.ticket();
        cache.put_token(ticket, "h1", &a, Some(1_000));
        assert_eq!(cache.token("h1", 999), Some(a.clone()));
        assert_eq!(cache.token("h1", 1_000), None, "expired");
    }

    #[test]
    fn drops_reach_everything_an_account_held() {
        let cache = AuthCache::default();
        let (a, b) = (account("a", "team"), account("b", "other"));
        let t = cache.ticket();
        cache.put_token(t, "ha", &a, None);
        cache.put_token(t, "hb", &b, None);
        cache.put_deployment(t, ("team".into(), "web".into(), "d1".into()), &a);
        cache.put_namespace(t, "team");
        cache.put_suspension(t, "team", None);
        cache.forget_account("a");
        assert_eq!(cache.token("ha", 0), None);
        assert_eq!(
            cache.deployment(&("team".into(), "web".into(), "d1".into())),
            None
        );
        assert_eq!(cache.token("hb", 0), Some(b.clone()));
        assert!(cache.namespace_exists("team"));
        cache.forget_suspension("team");
        assert_eq!(cache.suspension("team"), None);
        assert_eq!(cache.token("hb", 0), Some(b));
    }

    #[test]
    fn a_deleted_namespace_takes_its_accounts_along_but_not_an_admins() {
        let cache = AuthCache::default();
        let (dev, other) = (account("a", "team"), account("b", "other"));
        let admin = Account {
            role: Role::Admin,
            ..account("root", "team")
        };
        let t = cache.ticket();
        cache.put_token(t, "ha", &dev, None);
        cache.put_token(t, "hb", &other, None);
        cache.put_token(t, "hr", &admin, None);
        cache.put_deployment(t, ("team".into(), "web".into(), "d1".into()), &dev);
        cache.put_namespace(t, "team");
        cache.put_namespace(t, "other");
        cache.put_suspension(t, "team", None);
        cache.forget_namespace("team");
        assert_eq!(cache.token("ha", 0), None);
        assert_eq!(
            cache.deployment(&("team".into(), "web".into(), "d1".into())),
            None
        );
        assert!(!cache.namespace_exists("team"));
        assert_eq!(cache.suspension("team"), None);
        assert_eq!(cache.token("hb", 0), Some(other));
        assert_eq!(cache.token("hr", 0), Some(admin));
        assert!(cache.namespace_exists("other"));
    }
}
