use crate::extract::Members;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Query, State};
use micro_store::HistoryEntry;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

pub async fn history(
    State(state): State<ApiState>,
    Members(ns): Members,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    Ok(Json(
        state
            .store
            .history(&ns.name, q.limit.clamp(1, 1000))
            .await?,
    ))
}
