//! `micro logs NAME [-n N] [-f]`.

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
    /// Keep streaming new lines
    #[arg(short, long)]
    pub follow: bool,
}

pub async fn run(t: &Target, args: LogsArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let response = ctx
        .client
        .logs(&ctx.namespace, &args.name, args.lines, args.follow)
        .await?;
    let mut stream = response.bytes_stream();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("log stream broke: {e}"))?;
        out.write_all(&chunk)?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
