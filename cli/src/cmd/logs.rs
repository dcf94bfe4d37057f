//! `micro logs NAME [-n N] [-f] [--since 10m]`: each line stamped with its time (UTC),
//! build output marked `[build]`, replicas `[1]`, `[2]` … when there are several;
//! `--build` keeps the build's lines alone.

use crate::context::Target;
use anyhow::Result;
use futures_util::StreamExt;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The service
    #[arg(add = crate::complete::services())]
    pub name: String,
    /// How many of the last lines to show
    #[arg(short = 'n', long = "lines", default_value_t = 100)]
    pub lines: usize,
    /// Keep streaming new lines (ends when the service is removed)
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines from this long ago on (`90s`, `10m`, `2h`, `1d`) or since a time
    /// (`2026-11-29T10:00:00Z`)
    #[arg(long, value_parser = parse_since)]
    pub since: Option<i64>,
    /// The public edge's line for each request to the service (time, method, path,
    /// status, bytes, duration, client, request id) instead of the service's output
    #[arg(long, conflicts_with = "since")]
    pub router: bool,
    /// Only its builds' output (the last build, and with `-f` one that runs)
    #[arg(long, conflicts_with = "router")]
    pub build: bool,
}

/// Lines of a service's log are its build's when marked so (the local runtime marks
/// them; a cluster's builds run in an init container, `kubectl logs -c build`).
const BUILD_MARK: &str = " [build] ";

/// Cuts a byte stream into whole lines and keeps a build's: the rest of a line that
/// arrives in pieces waits for its end.
#[derive(Default)]
pub struct BuildLines {
    partial: Vec<u8>,
}

impl BuildLines {
    /// The build lines completed by `chunk`, each with its newline.
    pub fn feed(&mut self, chunk: &[u8]) -> String {
        self.partial.extend_from_slice(chunk);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return String::new();
        };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&whole)
            .lines()
            .filter(|line| line.contains(BUILD_MARK))
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

/// Shows `name`'s build lines logged since `since_ms` as they come, through `tail`, until
/// the stream ends or the task is dropped (`--wait` follows a build this way).
pub async fn follow_build(
    client: micro_api::client::Client,
    namespace: String,
    name: String,
    since_ms: i64,
    tail: std::sync::Arc<std::sync::Mutex<super::tail::Tail>>,
) {
    let Ok(response) = client
        .logs(&namespace, &name, BUILD_TAIL, true, Some(since_ms), false)
        .await
    else {
        return;
    };
    let mut stream = response.bytes_stream();
    let mut lines = BuildLines::default();
    while let Some(Ok(chunk)) = stream.next().await {
        let out = lines.feed(&chunk);
        if !out.is_empty()
            && let Ok(mut tail) = tail.lock()
        {
            tail.build_lines(&out);
        }
    }
}

/// How many of the log's last lines `--build` looks through.
const BUILD_TAIL: usize = 10_000;

/// `--since`: a duration back from now, or an RFC 3339 time; milliseconds since the epoch.
fn parse_since(text: &str) -> Result<i64, String> {
    let at = match humantime::parse_duration(text) {
        Ok(back) => std::time::SystemTime::now()
            .checked_sub(back)
            .ok_or_else(|| format!("{text}: too long ago"))?,
        Err(_) => humantime::parse_rfc3339_weak(text).map_err(|_| {
            format!("{text:?} is neither a duration (10m, 2h) nor a time (2026-11-29T10:00:00Z)")
        })?,
    };
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("{text}: before 1970"))?
        .as_millis();
    i64::try_from(ms).map_err(|_| format!("{text}: too far ahead"))
}

pub async fn run(t: &Target, args: LogsArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let response = ctx
        .client
        .logs(
            &ctx.namespace,
            &args.name,
            if args.build { BUILD_TAIL } else { args.lines },
            args.follow,
            args.since,
            args.router,
        )
        .await?;
    let mut stream = response.bytes_stream();
    let mut out = std::io::stdout().lock();
    let mut builds = args.build.then(BuildLines::default);
    // With --build, the last `lines` of them (then, following, each as it comes).
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("log stream broke: {e}"))?;
        match &mut builds {
            Some(lines) => {
                let text = lines.feed(&chunk);
                let text = if std::mem::take(&mut first) {
                    let all: Vec<&str> = text.lines().collect();
                    all[all.len().saturating_sub(args.lines)..]
                        .iter()
                        .map(|l| format!("{l}\n"))
                        .collect()
                } else {
                    text
                };
                out.write_all(text.as_bytes())?;
            }
            None => out.write_all(&chunk)?,
        }
        out.flush()?;
    }
    if args.follow {
        eprintln!("{}: removed; no more logs", args.name);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_lines_are_kept_whole_and_alone() {
        let mut lines = BuildLines::default();
        assert_eq!(lines.feed(b"2026-12-07T01:00:00.000Z [build] Collect"), "");
        assert_eq!(
            lines.feed(b"ing greet\n2026-12-07T01:00:01.000Z serving on 8080\n"),
            "2026-12-07T01:00:00.000Z [build] Collecting greet\n"
        );
    }
}
