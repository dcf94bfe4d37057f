use crate::extract::Members;
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use micro_runtime::LogQuery;
use micro_runtime::RuntimeError;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LogsQuery {
    #[serde(default = "default_lines")]
    lines: usize,
    #[serde(default)]
    follow: bool,
    /// Milliseconds since the epoch.
    since: Option<i64>,
}

fn default_lines() -> usize {
    100
}

pub async fn logs(
    State(state): State<ApiState>,
    Members(ns): Members,
    Path((_, name)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let stream = state
        .controller
        .runtime()
        .logs(
            &ns.name,
            &name,
            LogQuery {
                tail: q.lines,
                follow: q.follow,
                since_ms: q.since,
            },
        )
        .await
        .map_err(|e| match e {
            RuntimeError::NotFound(_) => ApiError::NotFound(format!("service {name}")),
            other => ApiError::Internal(other.to_string()),
        })?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}
