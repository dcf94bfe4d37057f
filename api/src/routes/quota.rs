//! `micro admin quota`: what one namespace may ask of the platform. The effective quota
//! is the server's default with the admin's overrides on top; it is written into the
//! namespace's repo folder, where the pre-receive hook and the reconciler read it.

use crate::extract::Caller;
use crate::types::{QuotaView, SetQuota};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, State};
use micro_store::Role;
use micro_tenant::quota::{Quota, mib};

/// The effective quota of `namespace`.
pub async fn effective(state: &ApiState, namespace: &str) -> Result<Quota, ApiError> {
    let mut quota = state.default_quota;
    if let Some(overrides) = state.store.quota_overrides(namespace).await? {
        // Validated when stored; a bad row would be a bug, so the defaults stand.
        if let Err(e) = quota.set(&overrides) {
            tracing::error!(namespace, error = %e, "stored quota overrides");
        }
    }
    Ok(quota)
}

/// Writes the effective quota where the hook and the reconciler read it.
pub async fn publish(state: &ApiState, namespace: &str) -> Result<Quota, ApiError> {
    let quota = effective(state, namespace).await?;
    let (written, path) = (quota, state.repos.path(namespace));
    crate::blocking::blocking(move || micro_tenant::marks::write_quota(&path, &written))
        .await?
        .map_err(|e| {
            tracing::error!(namespace, error = %e, "cannot write the quota file");
            ApiError::Internal("the quota could not be saved".into())
        })?;
    let store_bytes = i64::try_from(quota.store_bytes).unwrap_or(i64::MAX);
    state.store.set_store_limit(namespace, store_bytes);
    Ok(quota)
}

async fn admins_namespace(
    state: &ApiState,
    caller: &micro_store::Account,
    ns: &str,
) -> Result<(), ApiError> {
    if caller.role != Role::Admin || !state.store.namespace_exists(ns).await? {
        return Err(ApiError::NotFound(format!("namespace {ns}")));
    }
    Ok(())
}

pub(crate) fn view(namespace: String, q: Quota) -> QuotaView {
    QuotaView {
        namespace,
        services: q.services,
        replicas: q.replicas,
        cpu: format!("{}m", q.cpu_millis),
        memory: mib(q.memory_bytes),
        repo_size: mib(q.repo_bytes),
        checkout_files: q.checkout_files,
        checkout_size: mib(q.checkout_bytes),
        pushes_per_minute: q.pushes_per_minute,
        store_size: mib(q.store_bytes),
        build_time: Some(if q.build_seconds.is_multiple_of(60) {
            format!("{}m", q.build_seconds / 60)
        } else {
            format!("{}s", q.build_seconds)
        }),
        refs: Some(q.refs),
    }
}

pub async fn get(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(ns): Path<String>,
) -> Result<Json<QuotaView>, ApiError> {
    admins_namespace(&state, &caller, &ns).await?;
    let quota = effective(&state, &ns).await?;
    Ok(Json(view(ns, quota)))
}

pub async fn set(
    State(state): State<ApiState>,
    crate::extract::Admin(caller): crate::extract::Admin,
    Path(ns): Path<String>,
    Json(body): Json<SetQuota>,
) -> Result<Json<QuotaView>, ApiError> {
    admins_namespace(&state, &caller, &ns).await?;
    // Checked on its own first, so the error names what the admin typed.
    Quota::default()
        .set(&body.set)
        .map_err(ApiError::BadRequest)?;
    let merged = match state.store.quota_overrides(&ns).await? {
        Some(old) if !old.is_empty() => format!("{old},{}", body.set),
        _ => body.set.clone(),
    };
    state.store.set_quota_overrides(&ns, &merged).await?;
    let quota = publish(&state, &ns).await?;
    tracing::info!(namespace = %ns, set = %body.set, "quota changed");
    Ok(Json(view(ns, quota)))
}

/// `micro admin quota --previews`: the previews class (what every preview may use, never
/// more than its parent).
pub async fn get_class(
    State(state): State<ApiState>,
    crate::extract::Admin(_): crate::extract::Admin,
) -> Result<Json<QuotaView>, ApiError> {
    Ok(Json(view("previews".into(), class(&state).await?)))
}

pub async fn set_class(
    State(state): State<ApiState>,
    crate::extract::Admin(caller): crate::extract::Admin,
    Json(body): Json<SetQuota>,
) -> Result<Json<QuotaView>, ApiError> {
    Quota::default()
        .set(&body.set)
        .map_err(ApiError::BadRequest)?;
    let key = micro_tenant::preview::QUOTA_CLASS;
    let merged = match state.store.quota_overrides(key).await? {
        Some(old) if !old.is_empty() => format!("{old},{}", body.set),
        _ => body.set.clone(),
    };
    state.store.set_quota_overrides(key, &merged).await?;
    if let Some(previews) = &state.previews
        && let Err(e) = previews.requota().await
    {
        tracing::error!(error = %e, "previews' quotas not rewritten");
    }
    tracing::info!(by = %caller.email, set = %body.set, "previews quota class changed");
    Ok(Json(view("previews".into(), class(&state).await?)))
}

async fn class(state: &ApiState) -> Result<Quota, ApiError> {
    let overrides = state
        .store
        .quota_overrides(micro_tenant::preview::QUOTA_CLASS)
        .await?;
    // The class alone, as if the parent allowed everything.
    let unbounded = Quota {
        services: u64::MAX,
        replicas: u64::MAX,
        cpu_millis: u64::MAX,
        memory_bytes: u64::MAX,
        repo_bytes: u64::MAX,
        checkout_files: u64::MAX,
        checkout_bytes: u64::MAX,
        pushes_per_minute: u64::MAX,
        store_bytes: u64::MAX,
        build_seconds: u64::MAX,
        refs: u64::MAX,
    };
    Ok(micro_tenant::preview::quota(
        state.default_quota,
        overrides.as_deref(),
        unbounded,
    ))
}
