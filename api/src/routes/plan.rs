//! Plans without applying: `micro diff` (and later pull-request previews).

use crate::extract::Members;
use crate::types::PlanView;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct PlanQuery {
    #[serde(rename = "ref", default = "default_ref")]
    reference: String,
}

fn default_ref() -> String {
    micro_reconciler::layout::BRANCH.into()
}

/// What a ref of the namespace's repo would change.
pub async fn for_ref(
    State(state): State<ApiState>,
    Members(ns): Members,
    Query(q): Query<PlanQuery>,
) -> Result<Json<PlanView>, ApiError> {
    if q.reference.starts_with('-') || q.reference.contains("..") {
        return Err(ApiError::BadRequest(format!("bad ref {:?}", q.reference)));
    }
    let loaded = state
        .controller
        .load(&ns.name, &q.reference)
        .await
        .map_err(|e| {
            // Only a ref that does not resolve is "not found"; anything else is ours.
            if micro_reconciler::repo::is_unknown_ref(&e) {
                ApiError::NotFound(format!("ref {}", q.reference))
            } else {
                ApiError::Internal(format!("reading ref {}: {}", q.reference, e.message()))
            }
        })?;
    let desired = match loaded.1 {
        Ok(d) => d,
        Err(e) => return Err(e.into()),
    };
    let plan = state
        .controller
        .plan(&desired)
        .await
        .map_err(|e| ApiError::Internal(format!("observing what runs: {e}")))?;
    Ok(Json(plan.into()))
}
