//! Plans without applying: `micro diff` (and later pull-request previews).

use crate::extract::Members;
use crate::types::PlanView;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Query, State};
use micro_tenant::DesiredNamespace;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct PlanQuery {
    #[serde(rename = "ref", default = "default_ref")]
    pub(crate) reference: String,
}

pub(crate) fn default_ref() -> String {
    micro_tenant::layout::BRANCH.into()
}

/// What a ref of the namespace's repo would change.
pub async fn for_ref(
    State(state): State<ApiState>,
    Members(ns): Members,
    Query(q): Query<PlanQuery>,
) -> Result<Json<PlanView>, ApiError> {
    let desired = desired_at(&state, &ns.name, &q.reference).await?;
    let plan = state
        .controller
        .plan(&desired)
        .await
        .map_err(|e| ApiError::Internal(format!("observing what runs: {e}")))?;
    Ok(Json(plan.into()))
}

/// The desired state at a ref of a namespace's repo: 404 for a ref that does not
/// resolve, 400 for a bad ref or a revision that does not validate.
pub(crate) async fn desired_at(
    state: &ApiState,
    namespace: &str,
    reference: &str,
) -> Result<DesiredNamespace, ApiError> {
    if reference.starts_with('-') || reference.contains("..") {
        return Err(ApiError::BadRequest(format!("bad ref {reference:?}")));
    }
    let (_, loaded) = state
        .controller
        .load(namespace, reference)
        .await
        .map_err(|e| {
            // Only a ref that does not resolve is "not found"; anything else is ours.
            if micro_tenant::repo::is_unknown_ref(&e) {
                ApiError::NotFound(format!("ref {reference}"))
            } else {
                ApiError::Internal(format!("reading ref {reference}: {}", e.message()))
            }
        })?;
    Ok(loaded?)
}

/// Whether a ref's commit would be taken as the namespace's head: the admission a push
/// gets (validation and quota), for a commit on its way to a linked repo's forge, so a
/// revision that can never apply is not committed there. 204, or 400 with the reason.
pub async fn admit(
    State(state): State<ApiState>,
    Members(ns): Members,
    Query(q): Query<PlanQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    if q.reference.starts_with('-') || q.reference.contains("..") {
        return Err(ApiError::BadRequest(format!("bad ref {:?}", q.reference)));
    }
    let dir = state.repos.path(&ns.name);
    let name = ns.name.clone();
    let reference = q.reference.clone();
    crate::blocking::blocking(move || -> Result<(), ApiError> {
        let repo = git2::Repository::open_bare(&dir)
            .map_err(|e| ApiError::Internal(format!("opening the repo: {}", e.message())))?;
        let commit = repo
            .revparse_single(&reference)
            .and_then(|o| o.peel_to_commit())
            .map_err(|_| ApiError::NotFound(format!("ref {reference}")))?
            .id();
        let marks = micro_tenant::marks::Marks::read(&dir);
        micro_tenant::admit::admit(
            &repo,
            &name,
            commit,
            &marks,
            micro_tenant::admit::Via::Head,
            &micro_tenant::repo::SpecCache::default(),
        )
        .map(|_| ())
        .map_err(|e| ApiError::BadRequest(e.to_string()))
    })
    .await??;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
