//! `/git/<namespace>.git/...`: authenticate, authorise, then run `git http-backend`.

use crate::{auth, cgi};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use micro_store::Store;
use micro_tenant::spec::check_namespace_name;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// What the git endpoint needs.
#[derive(Clone)]
pub struct GitState {
    pub store: Store,
    /// The directory holding `<namespace>.git` bare repos.
    pub repos_root: PathBuf,
    pub pushes: Arc<PushLimits>,
    /// Whose service certificates (mTLS) are taken as identities.
    pub trust_domain: String,
    /// Told the namespace once a push's answer is sent whole (its refs are updated by
    /// then): branch previews follow it.
    pub pushed: Option<Pushed>,
}

/// What a finished push is told to.
pub type Pushed = Arc<dyn Fn(&str) + Send + Sync>;

type Limiter = governor::DefaultDirectRateLimiter;

/// Pushes per minute per namespace, at the rate its quota names (re-read on each push,
/// so an admin's change applies to the next one). A namespace that has not pushed for a
/// minute has its whole allowance back, so its limiter is forgotten then: the map holds
/// only namespaces pushing now (deleted ones leave it too).
#[derive(Default)]
pub struct PushLimits {
    inner: Mutex<Limits>,
}

#[derive(Default)]
struct Limits {
    /// Namespace → (its rate, its limiter, when it last pushed).
    by_namespace: HashMap<String, (u64, Arc<Limiter>, std::time::Instant)>,
    pruned: Option<std::time::Instant>,
}

/// How long a limiter is kept after its namespace's last push: its full period.
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl PushLimits {
    fn allow(&self, namespace: &str, per_minute: u64) -> bool {
        self.allow_at(namespace, per_minute, std::time::Instant::now())
    }

    fn allow_at(&self, namespace: &str, per_minute: u64, now: std::time::Instant) -> bool {
        let Some(rate) = u32::try_from(per_minute).ok().and_then(NonZeroU32::new) else {
            return false;
        };
        let limiter = {
            let mut limits = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if limits
                .pruned
                .is_none_or(|at| now.saturating_duration_since(at) >= FORGET_AFTER)
            {
                limits
                    .by_namespace
                    .retain(|_, (_, _, last)| now.saturating_duration_since(*last) < FORGET_AFTER);
                limits.pruned = Some(now);
            }
            let fresh = || Arc::new(Limiter::direct(governor::Quota::per_minute(rate)));
            let entry = limits
                .by_namespace
                .entry(namespace.to_owned())
                .or_insert_with(|| (per_minute, fresh(), now));
            if entry.0 != per_minute {
                *entry = (per_minute, fresh(), now);
            }
            entry.2 = now;
            entry.1.clone()
        };
        limiter.check().is_ok()
    }

    /// Namespaces with a limiter now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_namespace
            .len()
    }
}

/// The git smart-HTTP routes.
pub fn router(state: GitState) -> Router {
    // Found now, not on the first push.
    let _ = cgi::backend();
    Router::new()
        .route("/git/{repo}/{*rest}", any(serve))
        .with_state(state)
}

/// Smart-HTTP paths only: the dumb protocol would hand out raw repo files.
fn is_smart_path(rest: &str) -> bool {
    matches!(rest, "info/refs" | "git-upload-pack" | "git-receive-pack")
}

async fn serve(
    State(state): State<GitState>,
    Path((repo, rest)): Path<(String, String)>,
    request: Request,
) -> Response {
    let token = auth::token(request.headers());
    let cert = request.extensions().get::<micro_pki::ClientCert>().cloned();
    let account = match caller(&state, token, cert).await {
        Ok(Some(a)) => a,
        Ok(None) => return challenge(),
        Err(e) => {
            tracing::error!(error = %e, "git auth");
            return (StatusCode::INTERNAL_SERVER_ERROR, "store unavailable\n").into_response();
        }
    };
    // A namespace the caller may not see is answered exactly like one that does not exist.
    let not_found = || (StatusCode::NOT_FOUND, "repository not found\n").into_response();
    let Some(namespace) = micro_tenant::layout::namespace_of(&repo) else {
        return not_found();
    };
    // A service may fetch its own namespace's repo (a pod on a cluster checks its code
    // out), never push to it.
    let fetching = rest == "git-upload-pack"
        || (rest == "info/refs" && request.uri().query() == Some("service=git-upload-pack"));
    let preview_of = micro_tenant::preview::parent_of(namespace);
    let named = check_namespace_name(namespace).is_ok() || preview_of.is_some();
    // A namespace's developers clone its previews; what a preview runs changes only
    // with its pull request or branch, so nobody pushes there.
    let reads_preview = fetching
        && !account.is_service()
        && preview_of.is_some()
        && preview_of == account.namespace.as_deref();
    if preview_of.is_some() && !fetching {
        return not_found();
    }
    if !named
        || !(account.may_access(namespace) || reads_preview)
        || (account.is_service() && !fetching)
        || !is_smart_path(&rest)
    {
        return not_found();
    }
    match state.store.namespace_exists(namespace).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "git namespace lookup");
            return (StatusCode::INTERNAL_SERVER_ERROR, "store unavailable\n").into_response();
        }
    }
    if rest == "git-receive-pack" {
        // The mark is a file: read on the blocking pool, like every file here.
        let dir = micro_tenant::layout::repo_path(&state.repos_root, namespace);
        let Ok(quota) = tokio::task::spawn_blocking(move || micro_tenant::marks::quota(&dir)).await
        else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the quota\n").into_response();
        };
        if !state.pushes.allow(namespace, quota.pushes_per_minute) {
            let message = format!(
                "too many pushes: namespace {namespace} may push {} times a minute; try again shortly\n",
                quota.pushes_per_minute
            );
            return (StatusCode::TOO_MANY_REQUESTS, message).into_response();
        }
    }
    let path_info = format!("/{}/{rest}", micro_tenant::layout::repo_dir_name(namespace));
    let span = tracing::info_span!("git", namespace, op = %rest, account = %account.email);
    tracing::debug!(parent: &span, "git request");
    let served = {
        use tracing::Instrument;
        cgi::http_backend(&state.repos_root, &path_info, &account.email, request)
            .instrument(span.clone())
            .await
    };
    match served {
        Ok(response) if rest == "git-receive-pack" => match &state.pushed {
            Some(pushed) => after_body(response, pushed.clone(), namespace.to_owned()),
            None => response,
        },
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, namespace, "git http-backend");
            (StatusCode::BAD_GATEWAY, "git backend failed\n").into_response()
        }
    }
}

/// `response`, calling `pushed` once its body has been sent whole.
fn after_body(response: Response, pushed: Pushed, namespace: String) -> Response {
    use futures_util::StreamExt;
    let (parts, body) = response.into_parts();
    let done = futures_util::stream::once(async move {
        pushed(&namespace);
    })
    .filter_map(|()| async { None });
    let stream = body.into_data_stream().chain(done);
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

/// Who is calling: a token (HTTP Basic's password, or Bearer), else a service's
/// certificate (mTLS) while its deployment is live, as the API takes them (one answer:
/// the store's).
async fn caller(
    state: &GitState,
    token: Option<String>,
    cert: Option<micro_pki::ClientCert>,
) -> Result<Option<micro_store::Account>, micro_store::StoreError> {
    let identity = cert.and_then(|cert| cert.identity(&state.trust_domain));
    let certified = identity.as_ref().map(|id| micro_store::DeploymentId {
        namespace: &id.namespace,
        service: &id.service,
        deployment: &id.deployment,
    });
    state.store.caller(token.as_deref(), certified).await
}

fn challenge() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "authentication required: use an API token as the password\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"micro\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaces_pushing_now_keep_a_limiter() {
        let limits = PushLimits::default();
        let start = std::time::Instant::now();
        for i in 0..1000 {
            assert!(limits.allow_at(&format!("ns{i}"), 2, start));
        }
        assert_eq!(limits.held(), 1000);
        assert!(limits.allow_at("ns0", 2, start));
        assert!(
            !limits.allow_at("ns0", 2, start),
            "a third push in a minute"
        );
        // A minute on, one push: the others are forgotten.
        let later = start + FORGET_AFTER;
        assert!(limits.allow_at("busy", 2, later));
        assert_eq!(limits.held(), 1);
    }
}
