//! The tenant key-value store: the namespace is the database; tables inside it.

use crate::extract::Namespace;
use crate::types::{KvRecord, KvWrite, MAX_KV_VALUE_BYTES};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use micro_store::KvQuery;
use micro_tenant::spec::is_config_key;
use serde::Deserialize;

const MAX_LIMIT: i64 = 1000;
/// The table every namespace has, written or not; any other exists once written to.
const DEFAULT_TABLE: &str = "default";

fn check_table(table: &str) -> Result<(), ApiError> {
    let ok = !table.is_empty()
        && table.len() <= 63
        && table
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "table {table:?} must be 1-63 of [a-z0-9_-]"
        )))
    }
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if is_config_key(key) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "key {key:?} must be 1-253 of [A-Za-z0-9._-]"
        )))
    }
}

pub async fn write(
    State(state): State<ApiState>,
    ns: Namespace,
    Path((_, table, key)): Path<(String, String, String)>,
    Json(body): Json<KvWrite>,
) -> Result<StatusCode, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    check_table(&table)?;
    check_key(&key)?;
    if body.value.len() > MAX_KV_VALUE_BYTES {
        return Err(ApiError::BadRequest(format!(
            "value is {} bytes; the limit is {MAX_KV_VALUE_BYTES}",
            body.value.len()
        )));
    }
    let ttl = match body.expiry_secs {
        Some(0) => {
            return Err(ApiError::BadRequest(
                "expiry must be at least 1 second".into(),
            ));
        }
        Some(s) => Some(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
        None => None,
    };
    state
        .store
        .kv_write(&ns.name, &table, &key, &body.value, ttl)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct ReadQuery {
    #[serde(default)]
    key: String,
    #[serde(default)]
    prefix: bool,
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_limit() -> i64 {
    100
}

/// An exact key, or every key with a prefix (an empty prefix lists the table).
pub async fn read(
    State(state): State<ApiState>,
    ns: Namespace,
    Path((_, table)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<Vec<KvRecord>>, ApiError> {
    check_table(&table)?;
    if !q.prefix || !q.key.is_empty() {
        check_key(&q.key)?;
    }
    if !(1..=MAX_LIMIT).contains(&q.limit) || q.offset < 0 {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1-{MAX_LIMIT} and offset at least 0"
        )));
    }
    let records = state
        .store
        .kv_read(
            &ns.name,
            &table,
            &KvQuery {
                key: &q.key,
                prefix: q.prefix,
                limit: q.limit,
                offset: q.offset,
            },
        )
        .await?;
    // A record found proves its table; only an empty answer asks which is missing.
    if records.is_empty()
        && table != DEFAULT_TABLE
        && !state.store.kv_table_exists(&ns.name, &table).await?
    {
        return Err(ApiError::NotFound(format!("table {table}")));
    }
    if !q.prefix && records.is_empty() {
        return Err(ApiError::NotFound(format!("key {}", q.key)));
    }
    Ok(Json(records.into_iter().map(Into::into).collect()))
}

pub async fn delete(
    State(state): State<ApiState>,
    ns: Namespace,
    Path((_, table, key)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    check_table(&table)?;
    check_key(&key)?;
    if state.store.kv_delete(&ns.name, &table, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("key {key}")))
    }
}
