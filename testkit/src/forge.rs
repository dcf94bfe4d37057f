//! A forge's REST API: commit statuses, and pull-request comments (GitHub and Gitea
//! issue comments, GitLab merge-request notes) with paging, edits and deletes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request as the recorder saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The credential it carried (`authorization` or `private-token`).
    pub credential: String,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    /// (id, pull request, body)
    comments: Vec<(u64, u64, String)>,
    next_id: u64,
}

/// The recording forge; dropped with the test.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl Recorder {
    pub fn start() -> Recorder {
        let inner = Arc::new(Mutex::new(Inner {
            next_id: 1000,
            ..Inner::default()
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let url = crate::serve::serve(app);
        Recorder { inner, url }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The comments of pull request `number`, oldest first: (id, body).
    pub fn comments(&self, number: u64) -> Vec<(u64, String)> {
        let inner = self.inner.lock().unwrap();
        inner
            .comments
            .iter()
            .filter(|c| c.1 == number)
            .map(|c| (c.0, c.2.clone()))
            .collect()
    }

    /// Adds `count` comments by other people to pull request `number`.
    pub fn seed(&self, number: u64, count: usize) {
        let mut inner = self.inner.lock().unwrap();
        for i in 0..count {
            inner.next_id += 1;
            let id = inner.next_id;
            inner.comments.push((id, number, format!("LGTM {i}")));
        }
    }
}

/// `…/issues/7/comments`, `…/merge_requests/7/notes` → 7.
fn number_in(path: &str, marker: &str) -> Option<u64> {
    let rest = &path[path.find(marker)? + marker.len()..];
    rest.split('/').next()?.parse().ok()
}

fn last_number(path: &str) -> Option<u64> {
    path.rsplit('/').next()?.parse().ok()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let credential = ["authorization", "private-token"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or_default()
        .to_owned();
    let mut inner = inner.lock().unwrap();
    inner.requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_owned(),
        credential,
        body: body.clone(),
    });
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    if path.contains("/statuses/") && method == Method::POST {
        return (
            StatusCode::CREATED,
            axum::Json(json!({"id": 1, "state": body["state"]})),
        )
            .into_response();
    }
    let listing = path.ends_with("/comments") || path.ends_with("/notes");
    let number = number_in(&path, "/issues/").or_else(|| number_in(&path, "/merge_requests/"));
    match (method, listing) {
        (Method::GET, true) => {
            let number = number.unwrap_or(0);
            let per: usize = query
                .get("per_page")
                .or_else(|| query.get("limit"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            let page: usize = query.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let all: Vec<_> = inner.comments.iter().filter(|c| c.1 == number).collect();
            let slice: Vec<Value> = all
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .map(|c| json!({"id": c.0, "body": c.2, "user": {"login": "someone"}}))
                .collect();
            let mut response = axum::Json(slice).into_response();
            if page * per < all.len() {
                let next = format!("<{path}?page={}>; rel=\"next\"", page + 1);
                response.headers_mut().insert("link", next.parse().unwrap());
                if path.ends_with("/notes") {
                    let page = (page + 1).to_string();
                    response
                        .headers_mut()
                        .insert("x-next-page", page.parse().unwrap());
                }
            }
            response
        }
        (Method::POST, true) => {
            inner.next_id += 1;
            let id = inner.next_id;
            inner.comments.push((id, number.unwrap_or(0), text.clone()));
            (
                StatusCode::CREATED,
                axum::Json(json!({"id": id, "body": text})),
            )
                .into_response()
        }
        (Method::PATCH | Method::PUT, false) => {
            let Some(id) = last_number(&path) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            match inner.comments.iter_mut().find(|c| c.0 == id) {
                Some(c) => {
                    c.2.clone_from(&text);
                    axum::Json(json!({"id": id, "body": text})).into_response()
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        (Method::DELETE, false) => {
            let Some(id) = last_number(&path) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            inner.comments.retain(|c| c.0 != id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
