//! Plans without applying: `micro diff` (and later pull-request previews).

use crate::extract::Members;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Query, State};
use micro_reconciler::DesiredNamespace;
use micro_reconciler::plan::Plan;
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
) -> Result<Json<Plan>, ApiError> {
    if q.reference.starts_with('-') || q.reference.contains("..") {
        return Err(ApiError::BadRequest(format!("bad ref {:?}", q.reference)));
    }
    let controller = state.controller.clone();
    let name = ns.name.clone();
    let reference = q.reference.clone();
    let loaded = tokio::task::spawn_blocking(move || controller.load(&name, &reference))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|_| ApiError::NotFound(format!("ref {}", q.reference)))?;
    let desired = match loaded.1 {
        Ok(d) => d,
        Err(e) => return Err(e.into()),
    };
    Ok(Json(state.controller.plan(&desired).await))
}

/// What a desired state read elsewhere (a local clone) would change.
pub async fn for_desired(
    State(state): State<ApiState>,
    Members(ns): Members,
    Json(desired): Json<DesiredNamespace>,
) -> Result<Json<Plan>, ApiError> {
    if desired.namespace != ns.name {
        return Err(ApiError::BadRequest(format!(
            "the desired state is for namespace {}, not {}",
            desired.namespace, ns.name
        )));
    }
    Ok(Json(state.controller.plan(&desired).await))
}
