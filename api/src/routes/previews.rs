//! `micro previews`: what each open pull request of a linked repo would change (as last
//! previewed on the forge), or, for a platform-hosted repo, each branch other than main
//! (planned now, with the engine `micro diff` uses); each with its preview environment
//! when previews are on. Approving a fork's preview and deleting one.

use crate::extract::Members;
use crate::types::{EnvironmentView, PreviewView};
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
    let mut out = plans(&state, &ns.name).await?;
    let Some(previews) = &state.previews else {
        return Ok(Json(out));
    };
    for view in previews.list(&ns.name).await.map_err(error)? {
        let (number, source) = (view.env.number, view.env.source.clone());
        let env = environment_view(view);
        match out.iter_mut().find(|p| match number {
            Some(n) => p.number == Some(n),
            None => p.number.is_none() && p.name == source,
        }) {
            Some(p) => p.environment = Some(env),
            None => out.push(PreviewView {
                name: source,
                number,
                reference: String::new(),
                head: env.head.clone(),
                status: "running".into(),
                summary: String::new(),
                error: None,
                updated_at: micro_store::now_millis(),
                environment: Some(env),
            }),
        }
    }
    Ok(Json(out))
}

/// An environment as the API shows it.
fn environment_view(view: micro_previews::View) -> EnvironmentView {
    let (logs, detail) = match &view.phase {
        micro_previews::Phase::Failed { logs, .. } => (logs.clone(), view.phase.describe()),
        other => (Vec::new(), other.describe()),
    };
    EnvironmentView {
        namespace: view.env.namespace,
        head: view.env.head,
        state: view.phase.as_str().into(),
        detail,
        logs,
        urls: view.urls.into_iter().map(|(_, u)| u).collect(),
        expires_at: view.expires_at,
        fork: view.env.fork,
    }
}

fn error(e: micro_previews::PreviewError) -> ApiError {
    match e {
        micro_previews::PreviewError::Refused(m) => ApiError::BadRequest(m),
        micro_previews::PreviewError::NotFound(what) => {
            ApiError::NotFound(format!("preview {what}"))
        }
        micro_previews::PreviewError::Store(e) => e.into(),
        micro_previews::PreviewError::Git(m) => ApiError::Internal(m),
    }
}

fn previews_of(state: &ApiState) -> Result<&micro_previews::Previews, ApiError> {
    state
        .previews
        .as_deref()
        .ok_or_else(|| ApiError::Conflict("this platform runs no preview environments".into()))
}

/// `micro previews approve N`: a fork's pull request may run in its preview.
pub async fn approve(
    State(state): State<ApiState>,
    Members(ns): Members,
    axum::extract::Path((_, source)): axum::extract::Path<(String, String)>,
) -> Result<Json<EnvironmentView>, ApiError> {
    own_namespace(&ns.name)?;
    let previews = previews_of(&state)?;
    let source = micro_tenant::preview::Source::parse(&source);
    let env = previews.approve(&ns.name, &source).await.map_err(error)?;
    tracing::info!(namespace = %ns.name, preview = %env.namespace, by = %ns.caller.email, "fork preview approved");
    let view = previews.view(env).await.map_err(error)?;
    Ok(Json(environment_view(view)))
}

/// `micro previews delete N`: the preview goes now (a new push starts it again).
pub async fn delete(
    State(state): State<ApiState>,
    Members(ns): Members,
    axum::extract::Path((_, source)): axum::extract::Path<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    own_namespace(&ns.name)?;
    let previews = previews_of(&state)?;
    let source = micro_tenant::preview::Source::parse(&source);
    match previews.close(&ns.name, &source).await.map_err(error)? {
        (Some(_), _) => Ok(axum::http::StatusCode::NO_CONTENT),
        (None, _) => Err(ApiError::NotFound(format!("preview {}", source.label()))),
    }
}

/// Previews are a parent's to approve or delete, never another preview's.
fn own_namespace(name: &str) -> Result<(), ApiError> {
    if micro_tenant::preview::parent_of(name).is_some() {
        return Err(ApiError::BadRequest(format!(
            "{name} is a preview; name the namespace it previews"
        )));
    }
    Ok(())
}

/// The plans of open pull requests or branches.
async fn plans(state: &ApiState, namespace: &str) -> Result<Vec<PreviewView>, ApiError> {
    let ns_name = namespace;
    if state.store.link(ns_name).await?.is_some() {
        let previews = state.store.previews(ns_name).await?;
        return Ok(previews
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
                environment: None,
            })
            .collect());
    }
    let path = state.repos.path(ns_name);
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
            .load(ns_name, &reference)
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
            environment: None,
        });
    }
    Ok(out)
}
