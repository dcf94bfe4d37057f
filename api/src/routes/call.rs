//! `micro call`: forwards a request to one ready replica of a service in the caller's
//! namespace. The route is the only way in; services never see other namespaces' ports.
//! A service's own identity may call its siblings here: that is how services of one
//! namespace reach each other from their sandboxes.

use crate::extract::Namespace;
use crate::{ApiError, ApiState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Request bodies larger than this are refused.
const MAX_CALL_BODY: usize = 4 * 1024 * 1024;
static NEXT: AtomicUsize = AtomicUsize::new(0);

pub async fn call_root(
    state: State<ApiState>,
    ns: Namespace,
    Path((_, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    forward(state, ns, name, String::new(), method, headers, body).await
}

pub async fn call(
    state: State<ApiState>,
    ns: Namespace,
    Path((_, name, path)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    forward(state, ns, name, path, method, headers, body).await
}

async fn forward(
    State(state): State<ApiState>,
    ns: Namespace,
    name: String,
    path: String,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_CALL_BODY {
        return Err(ApiError::BadRequest(format!(
            "request body over {MAX_CALL_BODY} bytes"
        )));
    }
    let known = state
        .store
        .service_statuses(&ns.name)
        .await?
        .into_iter()
        .any(|s| s.name == name);
    let endpoints = state.controller.runtime().endpoints(&ns.name, &name);
    if !known && endpoints.is_empty() {
        return Err(ApiError::NotFound(format!("service {name}")));
    }
    if endpoints.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "service {name} has no ready replica"
        )));
    }
    let target = endpoints[NEXT.fetch_add(1, Ordering::Relaxed) % endpoints.len()];
    let url = format!("http://{target}/{path}");
    let mut request = state.http.request(method, url).body(body);
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let upstream = request
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("service {name} did not answer: {e}")))?;
    let status = upstream.status();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let mut response = Body::from_stream(upstream.bytes_stream()).into_response();
    *response.status_mut() = status;
    if let Some(ct) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(response)
}
