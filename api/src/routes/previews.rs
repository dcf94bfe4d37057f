//! `micro previews`: what each open pull request of a linked repo would change (as last
//! previewed on the forge), or, for a platform-hosted repo, each branch other than main
//! (planned now, with the engine `micro diff` uses).

use crate::extract::Members;
use crate::types::PreviewView;
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::State;
use micro_tenant::layout::BRANCH;

/// Branches planned at most per request.
const MAX_BRANCHES: usize = 50;

pub async fn list(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<Json<Vec<PreviewView>>, ApiError> {
    if state.store.link(&ns.name).await?.is_some() {
        let previews = state.store.previews(&ns.name).await?;
        return Ok(Json(
            previews
                .into_iter()
                .filter(|p| p.result != "merged")
                .map(|p| PreviewView {
                    name: format!("#{}", p.number),
                    number: Some(p.number),
                    reference: micro_tenant::change::pull_preview_ref(p.number),
                    head: p.head,
                    status: p.result,
                    summary: p.summary,
                    error: p.error,
                    updated_at: p.updated_at,
                })
                .collect(),
        ));
    }
    let path = state.repos.path(&ns.name);
    let branches = crate::blocking::blocking(move || -> Result<Vec<String>, git2::Error> {
        let repo = git2::Repository::open_bare(path)?;
        let mut names = Vec::new();
        for r in repo.references_glob("refs/heads/*")?.flatten() {
            if let Ok(name) = r.name()
                && name != BRANCH
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        names.truncate(MAX_BRANCHES);
        Ok(names)
    })
    .await?
    .map_err(|e| ApiError::Internal(format!("listing branches: {}", e.message())))?;
    let mut out = Vec::new();
    for reference in branches {
        let loaded = state
            .controller
            .load(&ns.name, &reference)
            .await
            .map_err(|e| ApiError::Internal(format!("reading {reference}: {}", e.message())))?;
        let (head, loaded) = loaded;
        let (status, summary, error) = match loaded {
            Ok(desired) => match state.controller.plan(&desired).await {
                Ok(plan) => ("planned", plan.summary().to_string(), None),
                Err(e) => ("failed", String::new(), Some(e.to_string())),
            },
            Err(e) => (
                "invalid",
                String::new(),
                Some(ApiError::from(e).to_string()),
            ),
        };
        out.push(PreviewView {
            name: reference.trim_start_matches("refs/heads/").to_owned(),
            number: None,
            reference,
            head: head.to_string(),
            status: status.into(),
            summary,
            error,
            updated_at: micro_store::now_millis(),
        });
    }
    Ok(Json(out))
}
