//! A minimal CGI bridge to `git http-backend`: request body to stdin, stdout (headers,
//! blank line, body) back as the response, both streamed.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::io::ReaderStream;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CgiError {
    #[error("cannot run git http-backend: {0}")]
    Spawn(std::io::Error),
    #[error("reading git http-backend: {0}")]
    Read(std::io::Error),
    #[error("git http-backend sent a malformed header: {0:?}")]
    Header(String),
}

/// `git-http-backend` itself, found once in git's exec path, so a request starts one
/// process rather than `git` and then the backend; `git http-backend` if that fails.
fn backend_command() -> Command {
    match backend() {
        Some(path) => Command::new(path),
        None => {
            let mut cmd = Command::new("git");
            cmd.arg("http-backend");
            cmd
        }
    }
}

/// Where `git-http-backend` is (asked of git once; call it at start, off the requests).
pub(crate) fn backend() -> Option<&'static Path> {
    static BACKEND: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let out = std::process::Command::new("git")
                .arg("--exec-path")
                .output()
                .ok()?;
            let dir = String::from_utf8(out.stdout).ok()?;
            let path = Path::new(dir.trim()).join("git-http-backend");
            path.is_file().then_some(path)
        })
        .as_deref()
}

pub(crate) async fn http_backend(
    project_root: &Path,
    path_info: &str,
    remote_user: &str,
    request: Request,
) -> Result<Response, CgiError> {
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut cmd = backend_command();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path_info)
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("REMOTE_USER", remote_user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let length = header("content-length");
    if !length.is_empty() {
        cmd.env("CONTENT_LENGTH", length);
    }
    let mut child = cmd.spawn().map_err(CgiError::Spawn)?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(CgiError::Spawn(std::io::Error::other("no pipes")));
    };
    // Feed the body concurrently: git may answer before it has read everything.
    tokio::spawn(
        async move {
            let mut body = body.into_data_stream();
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { break };
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = stdin.shutdown().await;
        }
        .instrument(tracing::Span::current()),
    );
    let mut reader = BufReader::new(stdout);
    let mut response = Response::builder().status(StatusCode::OK);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.map_err(CgiError::Read)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| CgiError::Header(line.to_owned()))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok());
            let status = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| CgiError::Header(line.to_owned()))?;
            response = response.status(status);
        } else {
            let name = HeaderName::try_from(name).map_err(|_| CgiError::Header(line.to_owned()))?;
            let value =
                HeaderValue::try_from(value).map_err(|_| CgiError::Header(line.to_owned()))?;
            response = response.header(name, value);
        }
    }
    // The child is reaped when its stdout ends; kill_on_drop covers a client that leaves.
    tokio::spawn(
        async move {
            let _ = child.wait().await;
        }
        .instrument(tracing::Span::current()),
    );
    response
        .body(Body::from_stream(ReaderStream::new(reader)))
        .map_err(|e| CgiError::Header(e.to_string()))
}
