//! `micro logs NAME [-n N] [-f] [--since 10m]`: each line stamped with its time (UTC),
//! build output marked `[build]`, replicas `[1]`, `[2]` … when there are several.

use crate::context::Target;
use anyhow::Result;
use futures_util::StreamExt;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The service
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
}

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
            args.lines,
            args.follow,
            args.since,
            args.router,
        )
        .await?;
    let mut stream = response.bytes_stream();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("log stream broke: {e}"))?;
        out.write_all(&chunk)?;
        out.flush()?;
    }
    if args.follow {
        eprintln!("{}: removed; no more logs", args.name);
    }
    Ok(ExitCode::SUCCESS)
}
