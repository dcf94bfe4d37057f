use crate::extract::Members;
use crate::types::HistoryItem;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

/// The namespace's reconciles, newest first, each with its commit's subject and author;
/// a push of a commit the CLI made for a rollback shows as a rollback.
pub async fn history(
    State(state): State<ApiState>,
    Members(ns): Members,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryItem>>, ApiError> {
    let entries = state
        .store
        .history(&ns.name, q.limit.clamp(1, 1000))
        .await?;
    let repos = state.controller.repos().clone();
    let name = ns.name.clone();
    let items = tokio::task::spawn_blocking(move || {
        let revisions: Vec<String> = entries.iter().map(|e| e.revision.clone()).collect();
        let infos = repos.commit_infos(&name, &revisions);
        entries
            .into_iter()
            .zip(infos)
            .map(|(e, info)| {
                let reason = match info.as_ref().and_then(|i| i.action.as_deref()) {
                    Some(action) if e.reason == micro_reconciler::Trigger::Push.as_str() => {
                        action.to_owned()
                    }
                    _ => e.reason,
                };
                HistoryItem {
                    namespace: e.namespace,
                    started_us: e.started_us,
                    revision: e.revision,
                    reason,
                    result: e.result,
                    summary: e.summary,
                    error: e.error,
                    duration_ms: e.duration_ms,
                    plan_ms: e.plan_ms,
                    apply_ms: e.apply_ms,
                    subject: info.as_ref().map(|i| i.subject.clone()),
                    author: info.map(|i| i.author),
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(items))
}
