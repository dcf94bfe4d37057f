//! A service's log lines from its pods' `service` containers, stamped as the local
//! runtime stamps them: `<RFC 3339 time> [<replica>] <line>` (the tag only when there
//! are several), oldest first; a follow ends when the pods are gone.

use bytes::Bytes;
use futures_util::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use micro_runtime::{LogQuery, LogStream, RuntimeError};

pub async fn of_pods(
    client: &kube::Client,
    namespace: &str,
    pods: &[String],
    query: LogQuery,
) -> Result<LogStream, RuntimeError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let since_seconds = query
        .since_ms
        .map(|since| ((crate::shared::now_ms() - since) / 1000).max(1));
    let params = |follow: bool| LogParams {
        container: Some("service".into()),
        follow,
        tail_lines: (query.tail > 0).then(|| i64::try_from(query.tail).unwrap_or(i64::MAX)),
        since_seconds,
        timestamps: true,
        ..LogParams::default()
    };
    let tagged = pods.len() > 1;
    // What is there now, from every pod, in time order, then the last `tail` of it.
    let mut lines: Vec<String> = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let reader = match api.log_stream(pod, &params(false)).await {
            Ok(reader) => reader,
            // Gone since the cache listed it (a rollout replaced it): nothing to show.
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(RuntimeError::Backend(format!("logs of pod {pod}: {e}"))),
        };
        let mut stream = std::pin::pin!(reader.lines());
        while let Some(line) = stream.next().await {
            let line =
                line.map_err(|e| RuntimeError::Backend(format!("logs of pod {pod}: {e}")))?;
            lines.push(stamp(&line, tagged.then_some(i + 1)));
        }
    }
    lines.sort();
    if query.tail > 0 && lines.len() > query.tail {
        lines.drain(..lines.len() - query.tail);
    }
    let now = futures_util::stream::iter(
        lines
            .into_iter()
            .map(|l| Ok::<_, std::io::Error>(Bytes::from(l + "\n"))),
    );
    if !query.follow {
        return Ok(now.boxed());
    }
    // Then what each pod writes from here on.
    let mut after = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let follow = LogParams {
            tail_lines: Some(0),
            since_seconds: None,
            ..params(true)
        };
        let reader = api
            .log_stream(pod, &follow)
            .await
            .map_err(|e| RuntimeError::Backend(format!("logs of pod {pod}: {e}")))?;
        let tag = tagged.then_some(i + 1);
        after.push(
            reader
                .lines()
                .map_ok(move |l| Bytes::from(stamp(&l, tag) + "\n"))
                .boxed(),
        );
    }
    Ok(now.chain(futures_util::stream::select_all(after)).boxed())
}

/// `<time> <text>` → `<time> [<replica>] <text>`.
fn stamp(line: &str, replica: Option<usize>) -> String {
    match (replica, line.split_once(' ')) {
        (Some(n), Some((time, text))) => format!("{time} [{n}] {text}"),
        _ => line.to_owned(),
    }
}
