//! `micro describe NAME`: one service in full: its status, the commit it runs, its
//! replicas, config keys and versions (never values), and what happened to it lately.

use crate::extract::Members;
use crate::types::ServiceDescription;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, State};
use micro_runtime::ServiceEvent;

/// History entries looked at for rollbacks.
const HISTORY_LOOKED_AT: i64 = 50;

pub async fn describe(
    State(state): State<ApiState>,
    Members(ns): Members,
    Path((_, name)): Path<(String, String)>,
) -> Result<Json<ServiceDescription>, ApiError> {
    let status = state
        .store
        .service_statuses(&ns.name)
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("service {name}")))?;
    let mut detail = state
        .controller
        .runtime()
        .describe(&ns.name, &name)
        .unwrap_or_default();
    let history = state.store.history(&ns.name, HISTORY_LOOKED_AT).await?;
    let repos = state.controller.repos().clone();
    let namespace = ns.name.clone();
    let revision = status.revision.clone();
    let (running, rollbacks) = crate::blocking::blocking(move || {
        let mut wanted: Vec<String> = history.iter().map(|h| h.revision.clone()).collect();
        wanted.push(revision);
        let mut infos = repos.commit_infos(&namespace, &wanted);
        let running = infos.pop().flatten();
        let rollbacks: Vec<ServiceEvent> = history
            .iter()
            .zip(infos)
            .filter(|(h, _)| h.result == micro_store::ReconcileResult::Applied)
            .filter_map(|(h, info)| {
                let info = info?;
                (info.action.as_deref() == Some("rollback")).then(|| ServiceEvent {
                    at_ms: h.started_us / 1000,
                    what: format!("rolled back: {}", info.subject),
                })
            })
            .collect();
        (running, rollbacks)
    })
    .await?;
    detail.events.extend(rollbacks);
    detail.events.sort_by_key(|e| e.at_ms);
    let mut status = crate::types::ServiceView::from(status);
    status.url = state.url_of(&status.namespace, &status.name);
    let traffic = match (&state.traffic, &status.url) {
        (Some(traffic), Some(_)) => {
            let recent = traffic.recent(&status.namespace, &status.name);
            Some(crate::types::TrafficView {
                requests_per_minute: recent.per_minute,
                p50_ms: recent.p50.map(|s| s * 1000.0),
                p99_ms: recent.p99.map(|s| s * 1000.0),
            })
        }
        _ => None,
    };
    let mut described = ServiceDescription::new(
        status,
        running.as_ref().map(|i| i.subject.clone()),
        running.map(|i| i.author),
        detail,
    );
    described.traffic = traffic;
    // What its files asked for, at the revision it runs (read from the cached specs).
    if let Ok((_, Ok(desired))) = state
        .controller
        .load(&ns.name, &described.status.revision)
        .await
        && let Some(service) = desired.services.get(&name)
    {
        described.detected.clone_from(&service.model.detected);
        if let Some(runtime) = &service.model.runtime {
            described
                .detected
                .insert(0, format!("service.yaml: runtime {runtime}"));
        }
    }
    Ok(Json(described))
}
