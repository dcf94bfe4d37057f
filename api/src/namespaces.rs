//! Creating a namespace, the one way: a valid, unreserved name, its repo (seeded from the
//! template, with the hook), its quota file, its row, and a first reconcile. Used by the
//! admin route and by the server for its built-in `default`.

use crate::{ApiError, ApiState};
use micro_tenant::spec::check_namespace_name;

/// Creates `name`; `Conflict` if it exists or a deletion of it is not torn down yet. A
/// repo without its row (an interrupted creation) is completed.
pub async fn create(state: &ApiState, name: &str) -> Result<(), ApiError> {
    check_namespace_name(name).map_err(ApiError::BadRequest)?;
    if state.store.namespace_exists(name).await? {
        return Err(ApiError::Conflict(format!(
            "namespace {name} already exists"
        )));
    }
    // Before the repo is looked at: one a deletion has not removed yet is the old
    // tenant's, not an interrupted creation to complete.
    if state.store.deletion_pending(name).await? {
        return Err(micro_store::StoreError::BeingDeleted(name.to_owned()).into());
    }
    if state.single_tenant && !state.store.list_namespaces().await?.is_empty() {
        return Err(ApiError::Conflict(
            "this server runs services without a sandbox (single-tenant mode): it hosts one namespace only".into(),
        ));
    }
    // The repo first: a namespace row without its repo would be unusable. Repos appear
    // whole (by rename), so an existing one is complete and only needs its hook.
    let (repos, owned, exe) = (state.repos.clone(), name.to_owned(), state.hook_exe.clone());
    crate::blocking::blocking(move || {
        if repos.path(&owned).exists() {
            repos.install_hook(&owned, &exe)
        } else {
            repos.create(&owned, &exe)
        }
    })
    .await?
    .map_err(|e| match e {
        micro_tenant::repo::RepoError::Exists(_) => ApiError::Conflict(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    })?;
    crate::routes::quota::publish(state, name).await?;
    state.store.create_namespace(name).await?;
    state
        .controller
        .queue()
        .trigger(name, micro_store::Trigger::Created);
    Ok(())
}

/// [`create`] unless it exists already. A deletion of it still on record (a server
/// stopped while tearing it down) is finished first: it comes back on a later start.
pub async fn ensure(state: &ApiState, name: &str) -> Result<(), ApiError> {
    match create(state, name).await {
        Err(ApiError::Conflict(_)) if state.store.namespace_exists(name).await? => Ok(()),
        Err(ApiError::Conflict(_)) if state.store.deletion_pending(name).await? => {
            tracing::warn!(
                namespace = name,
                "not created: its deletion is still being torn down"
            );
            Ok(())
        }
        other => other,
    }
}
