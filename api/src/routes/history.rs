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
    // What became of the services each revision changed, as far as it is known now.
    let failing: Vec<(String, String)> = state
        .store
        .service_statuses(&ns.name)
        .await?
        .into_iter()
        .filter(|s| {
            matches!(
                s.status,
                micro_store::ServiceState::Error | micro_store::ServiceState::CrashLoop
            )
        })
        .map(|s| (s.revision, format!("{}: {}", s.name, s.message)))
        .collect();
    let repos = state.controller.repos().clone();
    let name = ns.name.clone();
    let items = crate::blocking::blocking(move || {
        let revisions: Vec<String> = entries.iter().map(|e| e.revision.clone()).collect();
        let infos = repos.commit_infos(&name, &revisions);
        let pushers = micro_tenant::marks::pushers(&repos.path(&name));
        entries
            .into_iter()
            .zip(infos)
            .map(|(e, info)| {
                let pushed_by = pushers.get(&e.revision).cloned();
                let failed: Vec<&str> = failing
                    .iter()
                    .filter(|(revision, _)| *revision == e.revision)
                    .map(|(_, why)| why.as_str())
                    .collect();
                let applied = e.result == micro_store::ReconcileResult::Applied;
                HistoryItem {
                    pushed_by,
                    rollout_failed: (applied && !failed.is_empty()).then(|| failed.join("; ")),
                    ..HistoryItem::new(e, info)
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(items))
}
