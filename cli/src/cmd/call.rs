//! `micro call SERVICE PATH [JSON]`: through the platform to a service of your namespace.

use crate::context::Target;
use anyhow::{Result, anyhow};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// The service
    pub service: String,
    /// The path (endpoint) to call, e.g. / or /greet
    pub path: String,
    /// A JSON body; with one the call is a POST, without one a GET
    pub json: Option<String>,
}

pub async fn run(t: &Target, args: CallArgs) -> Result<ExitCode> {
    if let Some(body) = &args.json {
        serde_json::from_str::<serde_json::Value>(body)
            .map_err(|e| anyhow!("the JSON argument is not valid JSON: {e}"))?;
    }
    let ctx = t.resolve().await?;
    let (status, body) = ctx
        .client
        .call(&ctx.namespace, &args.service, &args.path, args.json)
        .await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&body)?;
    if !body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    if status.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: {} answered {status}", args.service);
        Ok(ExitCode::FAILURE)
    }
}
