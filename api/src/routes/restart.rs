//! `micro restart NAME`: a new rollout of the revision a service runs (also how a build
//! that failed for a passing reason is tried again), recorded in history as a restart.

use crate::extract::Members;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use micro_store::Trigger;

pub async fn restart(
    State(state): State<ApiState>,
    Members(ns): Members,
    Path((_, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    // Not marked while it is being replaced (a rollout under way is as good as a
    // restart): then it is known by its status row.
    let marked = state.controller.runtime().restart(&ns.name, &name);
    if !marked
        && !state
            .store
            .service_statuses(&ns.name)
            .await?
            .iter()
            .any(|s| s.name == name)
    {
        return Err(ApiError::NotFound(format!("service {name}")));
    }
    tracing::info!(namespace = %ns.name, service = %name, "restart requested");
    state.controller.queue().trigger(&ns.name, Trigger::Restart);
    Ok(StatusCode::ACCEPTED)
}
