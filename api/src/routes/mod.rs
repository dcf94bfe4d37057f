//! The router, composed from one small module per concern.

mod admin;
mod auth;
mod call;

mod config;
mod describe;
mod domains;
mod history;
mod keys;
mod kv;
mod link;
mod logs;
mod manifests;
mod plan;
mod previews;
pub mod quota;
mod restart;
mod signup;
mod signup_page;
mod status;

use crate::extract::Caller;
use crate::types::{SourceBase, WhoAmI};
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};

/// Largest request body the API reads (axum's default, stated so errors can name it).
pub const BODY_LIMIT: usize = 2 << 20;

/// The platform CA, for anyone (it is public; `micro env add` shows its fingerprint and
/// pins it once the user trusts it); 404 when the server's certificate is an operator's.
async fn platform_ca(State(state): State<ApiState>) -> Result<String, ApiError> {
    state.ca_pem.clone().ok_or_else(|| {
        ApiError::NotFound("a platform CA (this server's certificate is its operator's)".into())
    })
}

pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(admin::metrics))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/ca.pem", get(platform_ca))
        .route(
            "/api/v1/version",
            get(|| async { Json(serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })) }),
        )
        .route("/api/v1/login", post(auth::login))
        .route("/api/v1/logout", post(auth::logout))
        .route("/api/v1/signup", get(signup::open).post(signup::start))
        .route("/api/v1/signup/verify", post(signup::verify))
        .route("/api/v1/signup/claim", post(signup::claim))
        .route("/api/v1/admin/outbox", get(signup::outbox))
        .route("/api/v1/admin/backup", post(admin::backup))
        .route(
            "/api/v1/admin/invites",
            get(admin::list_invites).post(admin::invite),
        )
        .route(
            "/api/v1/admin/invites/{email}",
            axum::routing::delete(admin::revoke_invite),
        )
        .route(
            "/api/v1/admin/accounts",
            get(admin::list_accounts).post(admin::create_account),
        )
        .route(
            "/api/v1/admin/accounts/{email}",
            axum::routing::delete(admin::delete_account),
        )
        .route("/api/v1/sources/base", get(source_base))
        .route("/api/v1/namespaces/{ns}/status", get(status::namespace))
        .route("/api/v1/namespaces/{ns}/history", get(history::history))
        .route(
            "/api/v1/namespaces/{ns}/domains",
            get(domains::list).post(domains::add),
        )
        .route(
            "/api/v1/namespaces/{ns}/domains/{host}",
            axum::routing::delete(domains::remove),
        )
        .route(
            "/api/v1/namespaces/{ns}/keys",
            get(keys::list).post(keys::create),
        )
        .route(
            "/api/v1/namespaces/{ns}/keys/{name}",
            axum::routing::delete(keys::revoke),
        )
        .route("/api/v1/namespaces/{ns}/store/{table}", get(kv::read))
        .route(
            "/api/v1/namespaces/{ns}/store/{table}/{key}",
            axum::routing::put(kv::write).delete(kv::delete),
        )
        .route("/api/v1/namespaces/{ns}/config", get(config::list))
        .route(
            "/api/v1/namespaces/{ns}/config/{key}",
            get(config::get).put(config::set),
        )
        .route("/api/v1/namespaces/{ns}/plan", get(plan::for_ref))
        .route("/api/v1/namespaces/{ns}/admit", get(plan::admit))
        .route(
            "/api/v1/namespaces/{ns}/link",
            get(link::show).put(link::link).delete(link::unlink),
        )
        .route("/api/v1/namespaces/{ns}/link/fetch", post(link::fetch))
        .route("/api/v1/namespaces/{ns}/previews", get(previews::list))
        .route(
            "/api/v1/namespaces/{ns}/previews/{source}",
            axum::routing::delete(previews::delete),
        )
        .route(
            "/api/v1/namespaces/{ns}/previews/{source}/approve",
            post(previews::approve),
        )
        .route(
            "/api/v1/admin/quota/previews",
            get(quota::get_class).put(quota::set_class),
        )
        .route(
            "/api/v1/namespaces/{ns}/manifests",
            get(manifests::manifests),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{name}",
            get(describe::describe),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{name}/logs",
            get(logs::logs),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{name}/restart",
            post(restart::restart),
        )
        .route(
            "/api/v1/admin/namespaces",
            get(admin::list_namespaces).post(admin::create_namespace),
        )
        .route(
            "/api/v1/admin/namespaces/{ns}",
            axum::routing::delete(admin::delete_namespace),
        )
        .route(
            "/api/v1/admin/namespaces/{ns}/suspend",
            post(admin::suspend),
        )
        .route("/api/v1/admin/namespaces/{ns}/resume", post(admin::resume))
        .route(
            "/api/v1/admin/namespaces/{ns}/quota",
            get(quota::get).put(quota::set),
        )
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        // One announcing more is refused unread (a 413 the client sees, not a close).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_rejections));
    // Outside that layer: a service's own answers pass through `micro call` untouched.
    let calls = Router::new()
        .route(
            "/api/v1/namespaces/{ns}/services/{name}/call",
            any(call::call_root),
        )
        // `…/call/` is the root too, as a base URL with a slash makes it.
        .route(
            "/api/v1/namespaces/{ns}/services/{name}/call/",
            any(call::call_root),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{name}/call/{*path}",
            any(call::call),
        );
    // Web pages answer in HTML, errors included.
    let pages = Router::new()
        .route("/signup", get(signup_page::form).post(signup_page::start))
        .route("/signup/verify", post(signup_page::verify))
        .route("/signup/done", get(signup_page::done))
        .route("/signup/cancelled", get(signup_page::cancelled));
    // Request spans are the server's, one layer over every router it serves.
    api.merge(calls).merge(pages).with_state(state)
}

/// axum's own rejections (a malformed JSON body, a bad query, a wrong method) are plain
/// text; callers get them in the API's one error shape, like every other failure.
async fn json_rejections(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(crate::ERROR_HEADER)
    {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let error = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        // axum's words ("length limit exceeded") do not say what the limit is.
        format!("the request body is over the API's limit of {BODY_LIMIT} bytes")
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut out = (status, Json(crate::types::ErrorBody { error })).into_response();
    out.headers_mut().insert(
        crate::ERROR_HEADER,
        axum::http::HeaderValue::from_static("1"),
    );
    out
}

/// Where short source names resolve, if the platform is configured with a base.
async fn source_base(State(state): State<ApiState>, _caller: Caller) -> Json<SourceBase> {
    Json(SourceBase {
        base: state.source_base.clone(),
    })
}

async fn whoami(Caller(account): Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        email: account.email,
        role: account.role,
        namespace: account.namespace,
    })
}
