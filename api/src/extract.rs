//! Extractors: who is calling, and which namespace they may act on.

use crate::{ApiError, ApiState};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use micro_store::Account;
use std::collections::HashMap;

/// The token of `Authorization: Bearer …`.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The authenticated caller.
pub struct Caller(pub Account);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        // No token: a service's certificate (mTLS) is its identity while its deployment
        // is live, exactly as its token would be.
        let identity = parts
            .extensions
            .get::<micro_pki::ClientCert>()
            .and_then(|cert| cert.identity(&state.trust_domain));
        let certified = identity.as_ref().map(|id| micro_store::DeploymentId {
            namespace: &id.namespace,
            service: &id.service,
            deployment: &id.deployment,
        });
        let account = state
            .store
            .caller(bearer(&parts.headers), certified)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller(account))
    }
}

/// A namespace from the path that the caller may act on and that exists. Services of the
/// namespace pass too: use it only on routes a service may call (config, store).
pub struct Namespace {
    pub name: String,
    pub caller: Account,
}

/// [`Namespace`] for people only: a service's identity gets the same 404 as a stranger.
pub struct Members(pub Namespace);

impl FromRequestParts<ApiState> for Members {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let ns = Namespace::from_request_parts(parts, state).await?;
        if ns.caller.is_service() {
            return Err(ApiError::NotFound(format!("namespace {}", ns.name)));
        }
        Ok(Members(ns))
    }
}

impl FromRequestParts<ApiState> for Namespace {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Caller(caller) = Caller::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let name = params
            .get("ns")
            .cloned()
            .ok_or_else(|| ApiError::BadRequest("no namespace in path".into()))?;
        // A developer reads (and calls) the previews of their own namespace; what a
        // preview runs changes only with its pull request or branch.
        let previewing = !caller.is_service()
            && caller.namespace.is_some()
            && micro_tenant::preview::parent_of(&name) == caller.namespace.as_deref();
        if previewing && !(parts.method.is_safe() || parts.uri.path().contains("/call")) {
            return Err(ApiError::Conflict(format!(
                "{name} is a preview: it runs what its pull request or branch holds; change that instead"
            )));
        }
        // Same answer for "not yours" and "not there": nobody learns what exists.
        if !(caller.may_access(&name) || previewing) || !state.store.namespace_exists(&name).await?
        {
            return Err(ApiError::NotFound(format!("namespace {name}")));
        }
        Ok(Namespace { name, caller })
    }
}

/// An admin, checked before anything else of the request is read (its body above all):
/// to anyone else an admin route answers exactly as a route that does not exist, even
/// to a malformed request.
pub struct Admin(pub Account);

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Caller(caller) = Caller::from_request_parts(parts, state).await?;
        if caller.role != micro_store::Role::Admin {
            return Err(ApiError::NotFound("route".into()));
        }
        Ok(Admin(caller))
    }
}
