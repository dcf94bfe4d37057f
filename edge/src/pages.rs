//! The edge's own answers: short pages that say what happened and what to do.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

pub fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "No service here",
        "No public service answers at this address. Check the name: a service is \
         reached at &lt;service&gt;-&lt;namespace&gt; under the platform's apps domain, \
         once its service.yaml says <code>public: true</code>.",
    )
}

pub fn suspended() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Suspended",
        "This service's account is suspended. Its owner can lift the suspension by \
         settling the account.",
    )
}

pub fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Not ready",
        "This service has no ready replica right now. Try again shortly.",
    )
}

pub fn bad_gateway() -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "Bad gateway",
        "The service did not answer. Try again shortly.",
    )
}

pub fn timeout() -> Response {
    page(
        StatusCode::GATEWAY_TIMEOUT,
        "Gateway timeout",
        "The service took too long to answer.",
    )
}

pub fn too_large(limit: u64) -> Response {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request too large",
        &format!("The request body is over this service's limit ({limit} bytes)."),
    )
}

pub fn too_many(wait: std::time::Duration) -> Response {
    let mut response = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        "Too many requests from your address. Slow down and try again.",
    );
    let seconds = wait.as_secs().max(1).to_string();
    if let Ok(value) = axum::http::HeaderValue::from_str(&seconds) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

pub fn unauthorized() -> Response {
    let mut response = page(
        StatusCode::UNAUTHORIZED,
        "API key needed",
        "This service takes calls with one of its owner's API keys: send it as \
         <code>Authorization: Bearer KEY</code>.",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"micro\""),
    );
    response
}
