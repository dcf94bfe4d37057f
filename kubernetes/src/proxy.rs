//! `micro call` from a server outside the cluster: through the API server's service proxy
//! (`/api/v1/namespaces/<ns>/services/<name>:<port>/proxy/<path>`), with the platform's
//! credentials. The API server decodes and cleans that path, so a `..` segment would
//! climb out of the proxy to any object the platform may read (another tenant's Secret):
//! such paths never leave here.

use futures_util::StreamExt;
use http_body_util::BodyExt;
use micro_runtime::{CallRequest, CallResponse, RuntimeError};

/// Whether `path` (below the service's root, query included) stays below it once the
/// API server has percent-decoded and cleaned it.
pub fn stays_below(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let lowered = path.to_ascii_lowercase();
    // Encoded separators and dots would be decoded before the cleaning.
    if ["%2f", "%5c", "%2e", "\\"]
        .iter()
        .any(|bad| lowered.contains(bad))
    {
        return false;
    }
    !path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}

pub async fn call(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    port: u64,
    request: CallRequest,
) -> Result<CallResponse, RuntimeError> {
    if !stays_below(&request.path) {
        return Err(RuntimeError::Refused(format!(
            "the path {:?} has `.` or `..` segments or encoded separators; call the path itself",
            request.path
        )));
    }
    let uri = format!(
        "/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{}",
        request.path
    );
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(uri);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    let outgoing = builder
        .body(kube::client::Body::from(request.body))
        .map_err(|e| RuntimeError::Refused(format!("the call: {e}")))?;
    let answer = client
        .send(outgoing)
        .await
        .map_err(|e| RuntimeError::Backend(format!("the service proxy: {e}")))?;
    let status = answer.status().as_u16();
    let headers = answer
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let body = answer
        .into_body()
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other))
        .boxed();
    Ok(CallResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_would_climb_out_are_refused() {
        for ok in [
            "",
            "greet",
            "items/7?x=../y",
            "a/b.c/d",
            "..hidden/x",
            "x/..y",
        ] {
            assert!(stays_below(ok), "{ok}");
        }
        for bad in [
            "..",
            "../secrets",
            "a/../../x",
            "./x",
            "a/.",
            "%2e%2e/x",
            "%2E./x",
            "a%2Fb",
            "a%2f..",
            "a\\..\\b",
            "a%5c..",
        ] {
            assert!(!stays_below(bad), "{bad}");
        }
    }
}
