//! `micro repo link/show/unlink`: a namespace follows a branch of a repo on a forge
//! instead of its platform-hosted repo. One source of truth: pushes to the platform's
//! copy are refused while linked (the pre-receive hook says where to push instead).

use crate::extract::Members;
use crate::types::{DeliveryView, LinkCreated, LinkRequest, LinkView};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::State;
use micro_store::Link;
use micro_tenant::forge::Forge;
use micro_tenant::marks::{self, Followed};

/// The link of the namespace.
pub async fn show(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<Json<LinkView>, ApiError> {
    let link = state
        .store
        .link(&ns.name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("a link of namespace {}", ns.name)))?;
    Ok(Json(view(&state, link)))
}

/// Links the namespace (replacing any link it had) and answers the webhook's URL and
/// secret, the only time the secret is shown.
pub async fn link(
    State(state): State<ApiState>,
    Members(ns): Members,
    Json(req): Json<LinkRequest>,
) -> Result<Json<LinkCreated>, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    let url = req.url.trim().trim_end_matches('/').to_owned();
    if !micro_tenant::spec::is_source_url(&url) {
        return Err(ApiError::BadRequest(format!(
            "{url:?}: a repo URL is https://, http:// (or, where allowed, file://)"
        )));
    }
    if has_credentials(&url) {
        return Err(ApiError::BadRequest(
            "the URL holds credentials: give the token with --token-file instead".into(),
        ));
    }
    let branch = req.branch.unwrap_or_else(|| "main".into());
    if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        return Err(ApiError::BadRequest(format!(
            "{branch:?} is not a branch name"
        )));
    }
    let forge = match req.forge {
        Some(f) => Forge::parse(&f).ok_or_else(|| {
            ApiError::BadRequest(format!("forge {f:?}: one of github, gitea, gitlab"))
        })?,
        None => Forge::guess(&url).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cannot tell which forge hosts {url}: say --forge github|gitea|gitlab"
            ))
        })?,
    };
    if let Some(api) = &req.api
        && !(api.starts_with("https://") || api.starts_with("http://"))
    {
        return Err(ApiError::BadRequest(format!(
            "--api {api:?}: an https:// URL"
        )));
    }
    // Decided before anything is stored, from the URLs and DNS alone: the platform will
    // fetch from the repo and call the API from inside the operator's network.
    let (policy, checked, api) = (state.sources.clone(), url.clone(), req.api.clone());
    crate::blocking::blocking(move || {
        policy.check(&checked)?;
        match api {
            Some(api) => policy.check(&api),
            None => Ok(()),
        }
    })
    .await?
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = hex::encode(rand::random::<[u8; 16]>());
    let mut link = Link::new(&ns.name, &id, &url, &branch, forge.name());
    link.secret = hex::encode(rand::random::<[u8; 32]>());
    link.api = req.api.map(|a| a.trim_end_matches('/').to_owned());
    link.token = req
        .token
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    state.store.put_link(&link).await?;
    mark(&state, &ns.name, Some(Followed { url, branch })).await?;
    tracing::info!(namespace = %ns.name, url = %link.url, branch = %link.branch, forge = %link.forge, "linked");
    let secret = link.secret.clone();
    Ok(Json(LinkCreated {
        link: view(&state, link),
        webhook_secret: secret,
    }))
}

/// Unlinks the namespace: its platform-hosted repo, at what it last followed, takes
/// pushes again.
pub async fn unlink(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<axum::http::StatusCode, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    if !state.store.delete_link(&ns.name).await? {
        return Err(ApiError::NotFound(format!(
            "a link of namespace {}",
            ns.name
        )));
    }
    state.store.delete_previews(&ns.name).await?;
    mark(&state, &ns.name, None).await?;
    tracing::info!(namespace = %ns.name, "unlinked");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Fetches the linked branch now (the CLI after pushing to it: no waiting on a webhook
/// or the poll).
pub async fn fetch(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<axum::http::StatusCode, ApiError> {
    if state.store.link(&ns.name).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "a link of namespace {}",
            ns.name
        )));
    }
    if let Some(fetch) = &state.fetch_link {
        fetch(&ns.name);
    }
    Ok(axum::http::StatusCode::ACCEPTED)
}

async fn mark(state: &ApiState, ns: &str, followed: Option<Followed>) -> Result<(), ApiError> {
    let dir = state.repos.path(ns);
    crate::blocking::blocking(move || marks::follow(&dir, followed.as_ref()))
        .await?
        .map_err(|e| ApiError::Internal(format!("marking the repo of {ns}: {e}")))
}

fn view(state: &ApiState, link: Link) -> LinkView {
    LinkView {
        webhook_url: format!("{}/hooks/{}", state.public_url, link.id),
        api: link
            .api
            .clone()
            .unwrap_or_else(|| Forge::of_link(&link.forge).api_base(&link.url)),
        has_token: link.token.is_some(),
        last_delivery: link.delivery.map(|d| DeliveryView {
            at: d.at,
            event: d.event,
            result: d.result,
        }),
        namespace: link.namespace,
        url: link.url,
        branch: link.branch,
        forge: link.forge,
        fetched_revision: link.fetched_revision,
        fetched_at: link.fetched_at,
        fetch_error: link.fetch_error,
    }
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

fn has_credentials(url: &str) -> bool {
    url.starts_with("http") && authority(url).contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_seen() {
        assert!(has_credentials("https://me:pw@github.com/a/b"));
        assert!(!has_credentials("https://github.com/a/b@main"));
    }
}
