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
    let items = crate::blocking::blocking(move || {
        let revisions: Vec<String> = entries.iter().map(|e| e.revision.clone()).collect();
        let infos = repos.commit_infos(&name, &revisions);
        let pushers = micro_tenant::marks::pushers(&repos.path(&name));
        entries
            .into_iter()
            .zip(infos)
            .map(|(e, info)| {
                let pushed_by = pushers.get(&e.revision).cloned();
                HistoryItem {
                    pushed_by,
                    ..HistoryItem::new(e, info)
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(items))
}
