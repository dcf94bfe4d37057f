//! `micro call SERVICE PATH [JSON]`: through the platform to a service of your namespace.

use crate::context::Target;
use anyhow::{Result, anyhow, bail};
use micro_api::client::{CallRequest, Method};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// The service
    #[arg(add = crate::complete::services())]
    pub service: String,
    /// The path (endpoint) to call, with any query, e.g. / or /greet?lang=en
    pub path: String,
    /// A JSON body; with one the call is a POST, without one a GET
    pub json: Option<String>,
    /// The HTTP method (GET, POST, PUT, DELETE, …)
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// A request header, `Name: value` (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Print the answer's status line and headers before its body
    #[arg(short, long)]
    pub include: bool,
}

pub async fn run(t: &Target, args: CallArgs) -> Result<ExitCode> {
    if let Some(body) = &args.json {
        serde_json::from_str::<serde_json::Value>(body)
            .map_err(|e| anyhow!("the JSON argument is not valid JSON: {e}"))?;
    }
    let method = args
        .method
        .as_deref()
        .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
        .transpose()
        .map_err(|_| anyhow!("-X: not an HTTP method"))?;
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("-H {h:?}: expected `Name: value`");
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let ctx = t.resolve().await?;
    let call = CallRequest {
        method,
        headers,
        json: args.json,
    };
    let reply = ctx
        .client
        .call_with(&ctx.namespace, &args.service, &args.path, call)
        .await?;
    let mut out = std::io::stdout().lock();
    if args.include {
        writeln!(out, "HTTP/1.1 {}", reply.status)?;
        for (name, value) in &reply.headers {
            writeln!(out, "{name}: {value}")?;
        }
        writeln!(out)?;
    }
    out.write_all(&reply.body)?;
    if !reply.body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    if reply.status.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: {} answered {}", args.service, reply.status);
        Ok(ExitCode::FAILURE)
    }
}
