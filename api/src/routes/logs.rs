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
    /// The edge's lines for the service's requests instead of the service's output.
    #[serde(default)]
    router: bool,
}

/// How often a follower of the router's log looks for new lines.
const ROUTER_FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

fn as_text(lines: Vec<(u64, String)>) -> bytes::Bytes {
    bytes::Bytes::from(lines.into_iter().map(|(_, l)| l + "\n").collect::<String>())
}

/// `micro logs NAME --router`: the edge's lines for this service's requests.
async fn router_lines(
    state: &ApiState,
    namespace: &str,
    name: &str,
    q: &LogsQuery,
) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    let Some(log) = state.router_log.clone() else {
        return Err(ApiError::BadRequest(
            "this platform has no edge, so no router log: its server runs without --apps-domain"
                .into(),
        ));
    };
    if !state
        .store
        .service_statuses(namespace)
        .await?
        .iter()
        .any(|s| s.name == name)
    {
        return Err(ApiError::NotFound(format!("service {name}")));
    }
    let first = log.lines(namespace, name, 0, q.lines);
    let after = first.last().map_or(0, |(n, _)| *n);
    let head =
        futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(as_text(first))));
    let body = if q.follow {
        // Until the caller hangs up: what came since the last look, every half second.
        let (ns, name) = (namespace.to_owned(), name.to_owned());
        let rest = futures_util::stream::unfold(after, move |after| {
            let (log, ns, name) = (log.clone(), ns.clone(), name.clone());
            async move {
                tokio::time::sleep(ROUTER_FOLLOW_EVERY).await;
                let lines = log.lines(&ns, &name, after, usize::MAX);
                let next = lines.last().map_or(after, |(n, _)| *n);
                Some((Ok(as_text(lines)), next))
            }
        });
        Body::from_stream(head.chain(rest))
    } else {
        Body::from_stream(head)
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
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
    if q.router {
        return router_lines(&state, &ns.name, &name, &q).await;
    }
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
