//! `micro call`: forwards a request to one ready replica of a service in the caller's
//! namespace. The route is the only way in; services never see other namespaces' ports.
//! A service's own identity may call its siblings here: that is how services of one
//! namespace reach each other from their sandboxes.

use crate::extract::Namespace;
use crate::{ApiError, ApiState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Request bodies larger than this are refused.
const MAX_CALL_BODY: usize = 4 * 1024 * 1024;
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// `/api/v1/namespaces/{ns}/services/{name}/call/…`: the forwarded path starts after the
/// eighth `/`.
const SLASHES_BEFORE_PATH: usize = 8;

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
            | CALLER_HEADER
    ) && name.as_str() != crate::ERROR_HEADER
}

/// Who called, as the platform says it: a service's SPIFFE URI, or `mailto:` a person.
/// Set on every forwarded call; a caller's own is dropped, so it cannot be forged
/// through the platform (a service with `tls: true` knows the platform sent it).
pub const CALLER_HEADER: &str = "x-micro-caller";

fn caller_uri(caller: &micro_store::Account, trust_domain: &str) -> String {
    match (&caller.namespace, &caller.service) {
        (Some(ns), Some(service)) if caller.is_service() => {
            format!("spiffe://{trust_domain}/ns/{ns}/svc/{service}")
        }
        _ => format!("mailto:{}", caller.email),
    }
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
    record_call(&state, &ns, &name).await;
    if state.controller.runtime().forwards_calls() {
        let caller = caller_uri(&ns.caller, &state.trust_domain);
        let call = Forward {
            path,
            method,
            headers: &headers,
            body,
            caller,
        };
        return forward_by_runtime(&state, &ns.name, &name, call).await;
    }
    let endpoints = state.controller.runtime().endpoints(&ns.name, &name);
    if endpoints.is_empty() {
        // Only a call that cannot go anywhere asks the store whether the service exists.
        let known = state
            .store
            .service_statuses(&ns.name)
            .await?
            .into_iter()
            .any(|s| s.name == name);
        return Err(if known {
            ApiError::Unavailable(format!("service {name} has no ready replica"))
        } else {
            ApiError::NotFound(format!("service {name}"))
        });
    }
    let target = &endpoints[NEXT.fetch_add(1, Ordering::Relaxed) % endpoints.len()];
    let uri: Uri = format!("{target}/{path}")
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{path:?} is not a path a call can take")))?;
    let mut request = axum::http::Request::new(Body::from(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let forwarded = request.headers_mut();
    for (name, value) in headers.iter().filter(|(name, _)| passes(name)) {
        forwarded.append(name.clone(), value.clone());
    }
    let caller = caller_uri(&ns.caller, &state.trust_domain);
    forwarded.insert(
        CALLER_HEADER,
        HeaderValue::from_str(&caller)
            .map_err(|_| ApiError::BadRequest(format!("{caller:?} cannot be sent")))?,
    );
    // A service's answer goes back as it is: hyper's client follows no redirect (one could
    // point anywhere the platform can reach and a tenant cannot). A service that serves
    // TLS is called over mTLS, taken only with its own identity.
    let answer = if target.starts_with("https://") {
        let tls = state.service_tls.as_ref().ok_or_else(|| {
            ApiError::Unavailable(format!(
                "service {name} serves TLS and this platform has no CA to call it with"
            ))
        })?;
        tls.client(&ns.name, &name)
            .map_err(|e| ApiError::Unavailable(format!("service {name}: {e}")))?
            .request(request)
            .await
    } else {
        state.http.request(request).await
    };
    let upstream =
        answer.map_err(|e| ApiError::Unavailable(format!("service {name} did not answer: {e}")))?;
    let (head, incoming) = upstream.into_parts();
    let passed: Vec<_> = head
        .headers
        .iter()
        .filter(|(name, _)| passes(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut response = Body::new(incoming).into_response();
    *response.status_mut() = head.status;
    response.headers_mut().extend(passed);
    Ok(response)
}

/// Through the runtime (a cluster's service proxy): the same filtering both ways.
/// Remembers that a service called a sibling (what a preview runs by default follows
/// it); once per pair, bounded, and never in the way of the call.
async fn record_call(state: &ApiState, ns: &Namespace, callee: &str) {
    const REMEMBERED: usize = 100_000;
    let (Some(caller_ns), Some(caller)) = (&ns.caller.namespace, &ns.caller.service) else {
        return;
    };
    if !ns.caller.is_service() || *caller_ns != ns.name || caller == callee {
        return;
    }
    let key = (ns.name.clone(), caller.clone(), callee.to_owned());
    {
        let mut seen = state
            .calls_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        if !seen.insert(key) {
            return;
        }
    }
    if let Err(e) = state.store.record_call(&ns.name, caller, callee).await {
        tracing::warn!(error = %e, "a call between services was not recorded");
    }
}

/// A call as it goes on: what the caller sent, and who they are.
struct Forward<'a> {
    path: String,
    method: Method,
    headers: &'a HeaderMap,
    body: Bytes,
    caller: String,
}

async fn forward_by_runtime(
    state: &ApiState,
    namespace: &str,
    name: &str,
    call: Forward<'_>,
) -> Result<Response, ApiError> {
    use micro_runtime::{CallRequest, RuntimeError};
    let Forward {
        path,
        method,
        headers,
        body,
        caller,
    } = call;
    let request = CallRequest {
        method: method.to_string(),
        path,
        headers: headers
            .iter()
            .filter(|(name, _)| passes(name))
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .chain([(CALLER_HEADER.to_owned(), caller.into_bytes())])
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
