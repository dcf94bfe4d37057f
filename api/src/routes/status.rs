use crate::blocking::blocking;
use crate::extract::Members;
use crate::types::StatusReport;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::State;

pub async fn namespace(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<Json<StatusReport>, ApiError> {
    Ok(Json(StatusReport {
        namespace: state
            .store
            .namespace_status(&ns.name)
            .await?
            .map(Into::into),
        services: state
            .store
            .service_statuses(&ns.name)
            .await?
            .into_iter()
            .map(|s| {
                let mut view = crate::types::ServiceView::from(s);
                view.url = state.url_of(&view.namespace, &view.name);
                view
            })
            .collect(),
        branch: {
            let (repos, name) = (state.repos.clone(), ns.name.clone());
            blocking(move || repos.head(&name).ok().map(|id| id.to_string())).await?
        },
        fetch_error: state
            .store
            .link(&ns.name)
            .await?
            .and_then(|l| l.fetch_error),
        suspended: state
            .store
            .suspension(&ns.name)
            .await?
            .map(|why| micro_billing::refusal(&ns.name, why)),
    }))
}
