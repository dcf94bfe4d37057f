//! Suspending a namespace (billing, or an admin's hand) and lifting it. The store says
//! who is suspended; the mark beside the repo makes git's hook refuse pushes and the
//! reconciler run every service at zero replicas. Reads stay open, so users can take
//! their data out; writes through the API are refused with the same line as pushes.

use crate::{ApiError, ApiState};
use micro_reconciler::Trigger;
use micro_store::Suspension;

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

/// Refuses a write to a suspended namespace.
pub async fn writable(state: &ApiState, namespace: &str) -> Result<(), ApiError> {
    match state.store.suspension(namespace).await? {
        Some(why) => Err(ApiError::Forbidden(refusal(namespace, why))),
        None => Ok(()),
    }
}

/// Writes (or clears) the mark beside `namespace`'s repo to match the store.
async fn publish(state: &ApiState, namespace: &str) -> Result<(), ApiError> {
    let why = state.store.suspension(namespace).await?;
    mark(state, namespace, why).await
}

/// Makes the mark beside `namespace`'s repo say `why` (or nothing), and has the
/// reconciler take up a change.
async fn mark(state: &ApiState, namespace: &str, why: Option<Suspension>) -> Result<(), ApiError> {
    let line = why.map(|why| refusal(namespace, why));
    let path = state.repos.path(namespace);
    let changed = crate::blocking::blocking(move || {
        if micro_tenant::marks::suspension(&path) == line {
            return Ok(false);
        }
        micro_tenant::marks::suspend(&path, line.as_deref()).map(|()| true)
    })
    .await?
    .map_err(|e| ApiError::Internal(format!("marking {namespace}'s repo: {e}")))?;
    if changed {
        state
            .controller
            .queue()
            .trigger(namespace, Trigger::Suspension);
    }
    Ok(())
}

/// Suspends `namespace`; whether anything changed.
pub async fn suspend(state: &ApiState, namespace: &str, why: Suspension) -> Result<bool, ApiError> {
    let changed = state.store.suspend_namespace(namespace, why).await?;
    if changed {
        tracing::info!(namespace, why = why.as_str(), "namespace suspended");
    }
    publish(state, namespace).await?;
    Ok(changed)
}

/// Lifts `namespace`'s suspension (any, or only one for `only`); whether it was lifted.
pub async fn resume(
    state: &ApiState,
    namespace: &str,
    only: Option<Suspension>,
) -> Result<bool, ApiError> {
    let changed = state.store.resume_namespace(namespace, only).await?;
    if changed {
        tracing::info!(namespace, "namespace resumed");
    }
    publish(state, namespace).await?;
    Ok(changed)
}

/// At start: every repo's mark as the store says (a suspension made while the server
/// was down, or a mark left over, is put right before anything runs).
pub async fn publish_all(state: &ApiState) -> Result<(), ApiError> {
    let suspended: std::collections::HashMap<_, _> = state
        .store
        .suspended_namespaces()
        .await?
        .into_iter()
        .collect();
    for namespace in state.store.list_namespaces().await? {
        let why = suspended.get(&namespace).copied();
        mark(state, &namespace, why).await?;
    }
    Ok(())
}
