//! `micro call`: forwards a request to one ready replica of a service in the caller's
//! namespace. The route is the only way in; services never see other namespaces' ports.
//! A service's own identity may call its siblings here: that is how services of one
//! namespace reach each other from their sandboxes.

use crate::extract::Namespace;
use crate::{ApiError, ApiState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Request bodies larger than this are refused.
const MAX_CALL_BODY: usize = 4 * 1024 * 1024;
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// `/api/v1/namespaces/{ns}/services/{name}/call/…`: the forwarded path starts after the
/// eighth `/`.
const SLASHES_BEFORE_PATH: usize = 8;

/// The client `micro call` forwards with. A service's answer goes back as it is: a
/// redirect is the caller's to follow, never the platform's (it could point anywhere
/// the platform can reach and a tenant cannot).
pub fn forwarding_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Whether a header goes through `micro call` (either way). Not the caller's platform
/// token, not the platform's error mark (a service cannot pose as the platform), not
/// what belongs to one hop of HTTP.
fn passes(name: &header::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "authorization"
            | "proxy-authorization"
            | "host"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    ) && name.as_str() != crate::ERROR_HEADER
}

/// The path and query after `/call`, exactly as the caller sent them (still
/// percent-encoded: `%2F..` stays what it is).
fn forwarded_path(uri: &Uri) -> String {
    let path = uri.path();
    let rest = path
        .match_indices('/')
        .nth(SLASHES_BEFORE_PATH - 1)
        .map_or("", |(i, _)| &path[i + 1..]);
    match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    }
}

pub async fn call_root(
    state: State<ApiState>,
    ns: Namespace,
    Path((_, name)): Path<(String, String)>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    forward(state, ns, name, forwarded_path(&uri), method, headers, body).await
}

pub async fn call(
    state: State<ApiState>,
    ns: Namespace,
    Path((_, name, _)): Path<(String, String, String)>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    forward(state, ns, name, forwarded_path(&uri), method, headers, body).await
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
    if state.controller.runtime().forwards_calls() {
        return forward_by_runtime(&state, &ns.name, &name, path, method, &headers, body).await;
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
    let target = &endpoints[NEXT.fetch_add(1, Ordering::Relaxed) % endpoints.len()];
    let url = format!("{target}/{path}");
    let mut request = state.http.request(method, url).body(body);
    for (name, value) in headers.iter().filter(|(name, _)| passes(name)) {
        request = request.header(name, value);
    }
    let upstream = request
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("service {name} did not answer: {e}")))?;
    let status = upstream.status();
    let passed: Vec<_> = upstream
        .headers()
        .iter()
        .filter(|(name, _)| passes(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut response = Body::from_stream(upstream.bytes_stream()).into_response();
    *response.status_mut() = status;
    response.headers_mut().extend(passed);
    Ok(response)
}

/// Through the runtime (a cluster's service proxy): the same filtering both ways.
async fn forward_by_runtime(
    state: &ApiState,
    namespace: &str,
    name: &str,
    path: String,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use micro_reconciler::runtime::{CallRequest, RuntimeError};
    let request = CallRequest {
        method: method.to_string(),
        path,
        headers: headers
            .iter()
            .filter(|(name, _)| passes(name))
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect(),
        body,
    };
    let answer = state
        .controller
        .runtime()
        .call(namespace, name, request)
        .await
        .map_err(|e| match e {
            RuntimeError::NotFound(_) => ApiError::NotFound(format!("service {name}")),
            RuntimeError::Refused(why) => ApiError::BadRequest(why),
            other => ApiError::Unavailable(format!("service {name} did not answer: {other}")),
        })?;
    let mut response = Body::from_stream(answer.body).into_response();
    *response.status_mut() = axum::http::StatusCode::from_u16(answer.status)
        .map_err(|e| ApiError::Unavailable(format!("service {name}: {e}")))?;
    for (key, value) in answer.headers {
        if let (Ok(key), Ok(value)) = (
            header::HeaderName::from_bytes(key.as_bytes()),
            header::HeaderValue::from_bytes(&value),
        ) && passes(&key)
        {
            response.headers_mut().append(key, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::forwarded_path;

    #[test]
    fn the_path_and_query_go_on_exactly_as_sent() {
        let f = |u: &str| forwarded_path(&u.parse().unwrap());
        assert_eq!(f("/api/v1/namespaces/a/services/web/call"), "");
        assert_eq!(f("/api/v1/namespaces/a/services/web/call/"), "");
        assert_eq!(
            f("/api/v1/namespaces/a/services/web/call/x/y?q=1&r=%2F"),
            "x/y?q=1&r=%2F"
        );
        assert_eq!(
            f("/api/v1/namespaces/a/services/web/call/a%2F..%2Fb"),
            "a%2F..%2Fb"
        );
        assert_eq!(
            f("/api/v1/namespaces/a/services/web/call?only=query"),
            "?only=query"
        );
    }
}
