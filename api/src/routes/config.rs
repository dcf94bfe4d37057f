//! Config values: stored here, versioned; `config.yaml` in git names the version in use.
//! Only accounts of the namespace (and admins) reach these routes; secrets are masked
//! unless asked for.

use crate::extract::{Members, Namespace};
use crate::types::{ConfigEntryInfo, ConfigValueInfo, SetConfig, SetConfigReply};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, Query, State};
use micro_tenant::spec::is_config_key;
use serde::Deserialize;

/// Largest config value, as JSON text.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

fn check_key(key: &str) -> Result<(), ApiError> {
    if is_config_key(key) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "config key {key:?} must be 1-253 of [A-Za-z0-9._-]"
        )))
    }
}

async fn head_config(
    state: &ApiState,
    ns: &str,
) -> Result<micro_tenant::spec::ConfigSpec, ApiError> {
    state
        .controller
        .config_at_head(ns)
        .await
        .map_err(ApiError::from)
}

pub async fn set(
    State(state): State<ApiState>,
    Members(ns): Members,
    Path((_, key)): Path<(String, String)>,
    Json(body): Json<SetConfig>,
) -> Result<Json<SetConfigReply>, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    check_key(&key)?;
    let text = body.value.to_string();
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ApiError::BadRequest(format!(
            "config value is {} bytes; the limit is {MAX_CONFIG_BYTES}",
            text.len()
        )));
    }
    let version = state
        .store
        .put_config(&ns.name, &key, &text, body.secret)
        .await?;
    Ok(Json(SetConfigReply { key, version }))
}

#[derive(Deserialize)]
pub struct GetQuery {
    version: Option<u64>,
    #[serde(default)]
    reveal: bool,
}

pub async fn get(
    State(state): State<ApiState>,
    ns: Namespace,
    Path((_, key)): Path<(String, String)>,
    Query(q): Query<GetQuery>,
) -> Result<Json<ConfigValueInfo>, ApiError> {
    check_key(&key)?;
    if ns.caller.is_service() {
        may_read(&state, &ns, &key).await?;
    }
    let version = match q.version {
        Some(v) => v,
        None => head_config(&state, &ns.name)
            .await?
            .get(&key)
            .map(|e| e.version)
            .ok_or_else(|| ApiError::NotFound(format!("config key {key}")))?,
    };
    let stored = state
        .store
        .config_value(&ns.name, &key, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("config key {key} version {version}")))?;
    let value = if stored.secret && !q.reveal {
        None
    } else {
        Some(serde_json::from_str(&stored.value).map_err(|e| ApiError::Internal(e.to_string()))?)
    };
    Ok(Json(ConfigValueInfo {
        key,
        version,
        secret: stored.secret,
        value,
    }))
}

/// A service reads only the keys its spec lists at the branch head; others do not exist
/// for it.
async fn may_read(state: &ApiState, ns: &Namespace, key: &str) -> Result<(), ApiError> {
    let not_found = || ApiError::NotFound(format!("config key {key}"));
    let service = ns.caller.service.as_deref().ok_or_else(not_found)?;
    let (_, desired) = state
        .controller
        .load(&ns.name, micro_tenant::repo::BRANCH)
        .await
        .map_err(|e| ApiError::Internal(e.message().to_owned()))?;
    let desired = desired.map_err(|_| not_found())?;
    let listed = desired
        .services
        .get(service)
        .is_some_and(|s| s.model.config.contains_key(key));
    if listed { Ok(()) } else { Err(not_found()) }
}

pub async fn list(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<Json<Vec<ConfigEntryInfo>>, ApiError> {
    Ok(Json(
        head_config(&state, &ns.name)
            .await?
            .into_iter()
            .map(|(key, e)| ConfigEntryInfo {
                key,
                version: e.version,
                secret: e.secret,
            })
            .collect(),
    ))
}
