//! `micro manifests`: exactly the objects the Kubernetes runtime would apply for a ref,
//! whatever runtime this server runs, with secret values replaced by a placeholder.

use super::plan::{default_ref, desired_at};
use crate::extract::Members;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ManifestsQuery {
    #[serde(rename = "ref", default = "default_ref")]
    reference: String,
    /// Only this service's objects.
    service: Option<String>,
}

/// A `v1` `List` of the objects, namespace-wide ones first: `kubectl apply -f` reads it.
pub async fn manifests(
    State(state): State<ApiState>,
    Members(ns): Members,
    Query(q): Query<ManifestsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let desired = desired_at(&state, &ns.name, &q.reference).await?;
    if let Some(name) = &q.service
        && !desired.services.contains_key(name)
    {
        return Err(ApiError::NotFound(format!(
            "service {name} at {}",
            q.reference
        )));
    }
    let dir = state.repos.path(&ns.name);
    let quota = crate::blocking::blocking(move || micro_tenant::marks::quota(&dir)).await?;
    let rendered = (state.manifests)(&desired, &quota, q.service.as_deref());
    let mut list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": rendered.items,
    });
    // Beside the list, for the CLI to say (it hands kubectl the list alone).
    if !rendered.warnings.is_empty() {
        list["warnings"] = rendered.warnings.into();
    }
    Ok(Json(list))
}
