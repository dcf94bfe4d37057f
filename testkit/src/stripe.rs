//! Stripe's REST API as the platform uses it: Checkout Sessions (form-encoded, with
//! idempotency keys), subscriptions as the test sets them, and a stand-in for the
//! hosted Checkout page a browser lands on.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A Checkout Session the platform made.
#[derive(Clone, Debug)]
pub struct StripeSession {
    pub id: String,
    pub url: String,
    /// The form it was made with (`mode`, `line_items[0][price]`, `client_reference_id`…).
    pub form: HashMap<String, String>,
    /// The `authorization` header it came with.
    pub credential: String,
}

#[derive(Default)]
struct Inner {
    base: String,
    sessions: Vec<StripeSession>,
    by_key: HashMap<String, usize>,
    /// subscription → (customer, status)
    subscriptions: HashMap<String, (String, String)>,
    /// Requests for subscriptions, by id.
    reads: Vec<String>,
}

#[derive(Clone)]
pub struct StripeRecorder {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl StripeRecorder {
    pub fn start() -> StripeRecorder {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/subscriptions/{id}", get(subscription))
            .route("/c/pay/{id}", get(pay_page))
            .with_state(inner.clone());
        let url = crate::serve::serve(app);
        inner.lock().unwrap().base = url.clone();
        StripeRecorder { inner, url }
    }

    pub fn sessions(&self) -> Vec<StripeSession> {
        self.inner.lock().unwrap().sessions.clone()
    }

    /// What `GET /v1/subscriptions/{id}` answers from now on.
    pub fn set_subscription(&self, id: &str, customer: &str, status: &str) {
        self.inner
            .lock()
            .unwrap()
            .subscriptions
            .insert(id.to_owned(), (customer.to_owned(), status.to_owned()));
    }

    /// The subscriptions the platform read, in order.
    pub fn reads(&self) -> Vec<String> {
        self.inner.lock().unwrap().reads.clone()
    }
}

async fn create_session(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("content-type") != "application/x-www-form-urlencoded" {
        return (StatusCode::BAD_REQUEST, "form bodies only").into_response();
    }
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap();
    let mut inner = inner.lock().unwrap();
    let key = header("idempotency-key");
    let index = match inner.by_key.get(&key) {
        Some(&i) if !key.is_empty() => i,
        _ => {
            let id = format!("cs_test_{}", inner.sessions.len() + 1);
            let url = format!("{}/c/pay/{id}", inner.base);
            inner.sessions.push(StripeSession {
                id,
                url,
                form,
                credential: header("authorization"),
            });
            let i = inner.sessions.len() - 1;
            inner.by_key.insert(key, i);
            i
        }
    };
    let s = &inner.sessions[index];
    axum::Json(json!({
        "id": s.id,
        "object": "checkout.session",
        "mode": s.form.get("mode"),
        "client_reference_id": s.form.get("client_reference_id"),
        "customer_email": s.form.get("customer_email"),
        "status": "open",
        "url": s.url,
    }))
    .into_response()
}

async fn subscription(State(inner): State<Arc<Mutex<Inner>>>, Path(id): Path<String>) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.reads.push(id.clone());
    match inner.subscriptions.get(&id) {
        Some((customer, status)) => axum::Json(json!({
            "id": id,
            "object": "subscription",
            "customer": customer,
            "status": status,
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"type": "invalid_request_error", "message": "No such subscription"}})),
        )
            .into_response(),
    }
}

async fn pay_page(Path(id): Path<String>) -> Html<String> {
    Html(format!(
        "<!doctype html><title>Checkout stand-in</title><h1 id=\"checkout\">Pay for {id}</h1>"
    ))
}
