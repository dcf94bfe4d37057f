//! The fake's HTTP face: Kubernetes REST paths (`/api/v1/…`, `/apis/<group>/<version>/…`),
//! get, list (label selectors), watch (a stream of events from a resourceVersion),
//! server-side apply patches, deletes, discovery enough for `kubectl get`, and answers in
//! the API's shapes (`Status` objects for errors).

use super::resources::{self, Resource};
use super::store::{self, StoreError};
use super::{Calls, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type Params = HashMap<String, String>;

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (api_version, rest) = match segments.as_slice() {
        ["api"] => {
            return json_answer(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"]}),
            );
        }
        ["apis"] => return json_answer(StatusCode::OK, &discovery_groups()),
        ["api", "v1"] => return json_answer(StatusCode::OK, &discovery_resources("v1")),
        ["apis", g, v] => {
            return json_answer(StatusCode::OK, &discovery_resources(&format!("{g}/{v}")));
        }
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return status(StatusCode::NOT_FOUND, "NotFound", "no such path"),
    };
    // namespaces/<ns>/<plural>[/<name>[/<sub>]] | <plural>[/<name>]
    let (ns, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (
            Some(*ns),
            *plural,
            tail.first().copied(),
            tail.get(1).copied(),
        ),
        ["namespaces", name] => (None, "namespaces", Some(*name), None),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        _ => return status(StatusCode::NOT_FOUND, "NotFound", "no such path"),
    };
    let Some(r) = resources::find(&api_version, plural) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "no such resource");
    };
    let ns = ns.unwrap_or("");
    let target = if r.plural == "namespaces" {
        name.unwrap_or("")
    } else {
        ns
    };
    if matches!(method, Method::PATCH | Method::DELETE) && shared.lock().refused.contains(target) {
        shared.count(Calls::Write);
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "etcdserver: request timed out",
        );
    }
    let watching = params.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method, name) {
        (method, Some(service)) if r.plural == "services" && sub == Some("proxy") => {
            shared.count(Calls::Proxy);
            proxy_echo(&shared, ns, service, &method, &uri, &headers, &body)
        }
        (Method::GET, Some(pod)) if r.plural == "pods" && sub == Some("log") => {
            shared.count(Calls::Get);
            pod_log(shared, ns, pod, &params)
        }
        (Method::GET, None) if watching => {
            shared.count(Calls::Watch);
            shared.read(r.plural, ns);
            watch(shared, r, ns, &params)
        }
        (Method::GET, None) => {
            shared.count(Calls::List);
            shared.read(r.plural, ns);
            let store = shared.lock();
            let items = store.list(
                r,
                (!ns.is_empty()).then_some(ns),
                params.get("labelSelector").map(String::as_str),
            );
            json_answer(
                StatusCode::OK,
                &json!({
                    "apiVersion": r.api_version,
                    "kind": format!("{}List", r.kind),
                    "metadata": { "resourceVersion": store.resource_version().to_string() },
                    "items": items,
                }),
            )
        }
        (Method::GET, Some(name)) => {
            shared.count(Calls::Get);
            match shared.lock().get(r, ns, name) {
                Some(o) => json_answer(StatusCode::OK, &o),
                None => not_found(r, name),
            }
        }
        (Method::PATCH, Some(name)) => {
            shared.count(Calls::Write);
            let apply = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("application/apply-patch"));
            if !apply {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "only server-side apply patches",
                );
            }
            let Some(manager) = params.get("fieldManager") else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "fieldManager is required for apply patch",
                );
            };
            let config: Value = match serde_saphyr::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return status(StatusCode::BAD_REQUEST, "BadRequest", &format!("body: {e}"));
                }
            };
            let force = params.get("force").is_some_and(|f| f == "true");
            if r.namespaced
                && config["metadata"]["namespace"]
                    .as_str()
                    .is_some_and(|n| n != ns)
            {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the namespace of the object does not match the namespace on the request",
                );
            }
            let result = shared.lock().apply(r, ns, name, manager, &config, force);
            shared.changed();
            match result {
                Ok(o) => json_answer(StatusCode::OK, &o),
                Err(e) => store_error(r, name, e),
            }
        }
        (Method::DELETE, Some(name)) => {
            shared.count(Calls::Write);
            let result = shared.lock().delete(r, ns, name);
            shared.changed();
            match result {
                Ok(_) => json_answer(
                    StatusCode::OK,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}),
                ),
                Err(e) => store_error(r, name, e),
            }
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not supported by the fake",
        ),
    }
}

/// Events after `resourceVersion`, then new ones as they happen, until `timeoutSeconds`.
fn watch(shared: Arc<Shared>, r: &'static Resource, ns: &str, params: &Params) -> Response {
    let from: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let selector = params.get("labelSelector").cloned();
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(290u64);
    let ns = ns.to_owned();
    let mut changes = shared.subscribe();
    let stream = async_stream(move |tx| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut seen = from;
        loop {
            let fresh: Vec<store::Event> = shared
                .lock()
                .events
                .iter()
                .filter(|e| e.rv > seen)
                .cloned()
                .collect();
            for e in fresh {
                seen = e.rv;
                if e.plural != r.plural
                    || (!ns.is_empty() && e.namespace != ns)
                    || !store::matches(selector.as_deref(), &e.object["metadata"]["labels"])
                {
                    continue;
                }
                let mut line = json!({"type": e.kind, "object": e.object}).to_string();
                line.push('\n');
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(stream)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The service proxy, answering for the service: with no pods really running, the fake
/// echoes what reached it (service, port, method, path, body, `x-` headers) as JSON.
fn proxy_echo(
    shared: &Shared,
    ns: &str,
    target: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let (service, port) = target.split_once(':').unwrap_or((target, ""));
    let Some(svc) =
        resources::by_plural("services").and_then(|r| shared.lock().get(r, ns, service))
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("services \"{service}\" not found"),
        );
    };
    let served = svc["spec"]["ports"][0]["port"]
        .as_u64()
        .map(|p| p.to_string());
    if !port.is_empty() && served.as_deref() != Some(port) {
        return status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "no endpoints on that port",
        );
    }
    let marker = format!("{target}/proxy");
    let path = uri.path().split_once(&marker).map_or("", |(_, p)| p);
    let extra: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-"))
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
        .collect();
    json_answer(
        StatusCode::OK,
        &json!({
            "namespace": ns, "service": service, "port": port, "method": method.as_str(),
            "path": path, "query": uri.query(), "body": String::from_utf8_lossy(body), "headers": extra,
        }),
    )
}

/// A pod's log: `tailLines`, `sinceSeconds` (against the lines' own stamps is beyond the
/// fake: it keeps them all), `timestamps` (lines are stored stamped), `follow` until the
/// pod is gone.
fn pod_log(shared: Arc<Shared>, ns: &str, pod: &str, params: &Params) -> Response {
    let Some(lines) = shared.lock().log_lines(ns, pod, 0) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{pod}\" not found"),
        );
    };
    let tail = params
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok());
    let stamped = params.get("timestamps").is_some_and(|t| t == "true");
    let follow = params.get("follow").is_some_and(|f| f == "true");
    let shown = move |line: &str| -> Bytes {
        let text = if stamped {
            line
        } else {
            line.split_once(' ').map_or(line, |(_, t)| t)
        };
        Bytes::from(format!("{text}\n"))
    };
    let start = tail.map_or(0, |t| lines.len().saturating_sub(t));
    let (ns, pod) = (ns.to_owned(), pod.to_owned());
    let mut changes = shared.subscribe();
    let body = async_stream(move |tx| async move {
        let mut sent = start;
        loop {
            let Some(fresh) = shared.lock().log_lines(&ns, &pod, sent) else {
                return;
            };
            for line in fresh {
                sent += 1;
                if tx.send(shown(&line)).await.is_err() {
                    return;
                }
            }
            if !follow || changes.changed().await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A body fed by a task through a channel; the task ends when the client goes away.
fn async_stream<F, Fut>(task: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(task(tx));
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|b| b.map(Ok::<_, std::io::Error>))
    });
    Body::from_stream(stream)
}

fn discovery_groups() -> Value {
    let mut groups: Vec<&str> = resources::ALL
        .iter()
        .map(|r| r.api_version)
        .filter(|v| v.contains('/'))
        .collect();
    groups.dedup();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|gv| {
            let (g, v) = gv.split_once('/').unwrap_or((gv, ""));
            let version = json!({"groupVersion": gv, "version": v});
            json!({"name": g, "versions": [version], "preferredVersion": version})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn discovery_resources(group_version: &str) -> Value {
    let list: Vec<Value> = resources::ALL
        .iter()
        .filter(|r| r.api_version == group_version)
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.kind.to_lowercase(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "list", "watch", "patch", "delete"],
            })
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list})
}

fn json_answer(code: StatusCode, v: &Value) -> Response {
    (code, [("content-type", "application/json")], v.to_string()).into_response()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    json_answer(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        }),
    )
}

fn not_found(r: &Resource, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} \"{name}\" not found", r.plural),
    )
}

fn store_error(r: &Resource, name: &str, e: StoreError) -> Response {
    match e {
        StoreError::NotFound => not_found(r, name),
        StoreError::Invalid(why) => status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &why),
        StoreError::Conflict(conflicts) => {
            let what: Vec<String> = conflicts
                .iter()
                .map(|c| format!("conflict with \"{}\": {}", c.manager, c.path))
                .collect();
            status(
                StatusCode::CONFLICT,
                "Conflict",
                &format!(
                    "Apply failed with {} conflicts: {}",
                    what.len(),
                    what.join(", ")
                ),
            )
        }
    }
}
