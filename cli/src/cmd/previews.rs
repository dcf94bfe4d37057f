//! `micro previews`: what each open pull request (linked repos) or each branch other
//! than main (platform-hosted repos) would change.

use super::{Output, ago, short};
use crate::context::Target;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct PreviewsArgs {
    /// How to print them: text, json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

pub async fn run(t: &Target, args: PreviewsArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let previews = ctx.client.previews(&ctx.namespace).await?;
    if args.output.data(&previews)? {
        return Ok(ExitCode::SUCCESS);
    }
    if previews.is_empty() {
        eprintln!(
            "{}: no open pull requests or branches to preview",
            ctx.namespace
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<8} {:<8} {:<10} SUMMARY / ERROR",
        "PREVIEW", "HEAD", "STATUS", "UPDATED"
    );
    let now = micro_store::now_millis();
    for p in previews {
        let detail = p.error.unwrap_or(p.summary);
        println!(
            "{:<24} {:<8} {:<8} {:<10} {detail}",
            p.name,
            short(&p.head),
            p.status,
            ago(now - p.updated_at)
        );
    }
    eprintln!("`micro diff --pr N` (or `micro diff BRANCH`) shows one in full");
    Ok(ExitCode::SUCCESS)
}
