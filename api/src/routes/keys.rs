//! A namespace's API keys, for its services behind `auth: key` at the public edge:
//! made (shown once), listed (names only), revoked (refused from the next request on).

use crate::extract::Members;
use crate::types::{KeyCreated, KeyView, NewKey};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, State};

pub async fn create(
    State(state): State<ApiState>,
    Members(ns): Members,
    Json(body): Json<NewKey>,
) -> Result<Json<KeyCreated>, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    micro_tenant::spec::check_service_name(&body.name).map_err(|_| {
        ApiError::BadRequest(format!(
            "key name {:?} must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
            body.name
        ))
    })?;
    let key = state.store.create_api_key(&ns.name, &body.name).await?;
    tracing::info!(namespace = %ns.name, key = %body.name, by = %ns.caller.email, "API key made");
    Ok(Json(KeyCreated {
        name: body.name,
        key,
    }))
}

pub async fn list(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    Ok(Json(
        state
            .store
            .api_keys(&ns.name)
            .await?
            .into_iter()
            .map(|k| KeyView {
                name: k.name,
                created_at: k.created_at,
            })
            .collect(),
    ))
}

pub async fn revoke(
    State(state): State<ApiState>,
    Members(ns): Members,
    Path((_, name)): Path<(String, String)>,
) -> Result<(), ApiError> {
    if !state.store.revoke_api_key(&ns.name, &name).await? {
        return Err(ApiError::NotFound(format!("key {name}")));
    }
    tracing::info!(namespace = %ns.name, key = %name, by = %ns.caller.email, "API key revoked");
    Ok(())
}
