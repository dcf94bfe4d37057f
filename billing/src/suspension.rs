//! Suspending a namespace (billing, or an admin's hand) and lifting it. The store says
//! who is suspended; the mark beside the repo makes git's hook refuse pushes and the
//! reconciler run every service at zero replicas. Reads stay open, so users can take
//! their data out; writes through the API are refused with the same line as pushes.

use crate::BillingError;
use micro_store::{Store, Suspension};
use micro_tenant::Repos;
use std::sync::Arc;

/// Tells the reconciler that a namespace's suspension changed.
pub type SuspensionChanged = Arc<dyn Fn(&str) + Send + Sync>;

/// The store's suspensions, kept visible beside each repo.
#[derive(Clone)]
pub struct Suspensions {
    store: Store,
    repos: Repos,
    changed: SuspensionChanged,
}

/// The one line a write to a suspended namespace is refused with.
pub fn refusal(namespace: &str, why: Suspension) -> String {
    match why {
        Suspension::Billing => format!(
            "namespace {namespace} is suspended: billing; see the mail about your payment \
             (pay the open invoice, or `micro signup` again); reads and `micro clone` still work"
        ),
        Suspension::Admin => format!(
            "namespace {namespace} is suspended: by the platform's admin; ask them; \
             reads and `micro clone` still work"
        ),
    }
}

impl Suspensions {
    pub fn new(store: Store, repos: Repos, changed: SuspensionChanged) -> Self {
        Suspensions {
            store,
            repos,
            changed,
        }
    }

    /// Refuses a write to a suspended namespace ([`BillingError::Suspended`]).
    pub async fn writable(&self, namespace: &str) -> Result<(), BillingError> {
        match self.store.suspension(namespace).await? {
            Some(why) => Err(BillingError::Suspended(refusal(namespace, why))),
            None => Ok(()),
        }
    }

    /// Suspends `namespace`; whether anything changed.
    pub async fn suspend(&self, namespace: &str, why: Suspension) -> Result<bool, BillingError> {
        let changed = self.store.suspend_namespace(namespace, why).await?;
        if changed {
            tracing::info!(namespace, why = why.as_str(), "namespace suspended");
        }
        self.publish(namespace).await?;
        Ok(changed)
    }

    /// Lifts `namespace`'s suspension (any, or only one for `only`); whether it was lifted.
    pub async fn resume(
        &self,
        namespace: &str,
        only: Option<Suspension>,
    ) -> Result<bool, BillingError> {
        let changed = self.store.resume_namespace(namespace, only).await?;
        if changed {
            tracing::info!(namespace, "namespace resumed");
        }
        self.publish(namespace).await?;
        Ok(changed)
    }

    /// At start: every repo's mark as the store says (a suspension made while the server
    /// was down, or a mark left over, is put right before anything runs).
    pub async fn publish_all(&self) -> Result<(), BillingError> {
        let suspended: std::collections::HashMap<_, _> = self
            .store
            .suspended_namespaces()
            .await?
            .into_iter()
            .collect();
        for namespace in self.store.list_namespaces().await? {
            let why = suspended.get(&namespace).copied();
            self.mark(&namespace, why).await?;
        }
        Ok(())
    }

    /// Writes (or clears) the mark beside `namespace`'s repo to match the store.
    async fn publish(&self, namespace: &str) -> Result<(), BillingError> {
        let why = self.store.suspension(namespace).await?;
        self.mark(namespace, why).await
    }

    /// Makes the mark beside `namespace`'s repo say `why` (or nothing), and has the
    /// reconciler take up a change.
    async fn mark(&self, namespace: &str, why: Option<Suspension>) -> Result<(), BillingError> {
        let line = why.map(|why| refusal(namespace, why));
        let path = self.repos.path(namespace);
        let changed = crate::blocking(move || {
            if micro_tenant::marks::suspension(&path) == line {
                return Ok(false);
            }
            micro_tenant::marks::suspend(&path, line.as_deref()).map(|()| true)
        })
        .await?
        .map_err(|e| BillingError::Mark(format!("marking {namespace}'s repo: {e}")))?;
        if changed {
            (self.changed)(namespace);
        }
        Ok(())
    }
}
