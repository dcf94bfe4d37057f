//! `micro previews`: what each open pull request (linked repos) or each branch other
//! than main (platform-hosted repos) would change, and its preview environment: where
//! it runs, in which state, until when. `open`, `logs`, `approve` and `delete` act on one.

use super::{Output, ago, rfc3339, short};
use crate::context::Target;
use anyhow::{Result, bail};
use micro_api::types::{EnvironmentView, PreviewView};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PreviewsArgs {
    #[command(subcommand)]
    pub what: Option<PreviewsWhat>,
    /// How to print them: text, json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Subcommand, Debug)]
pub enum PreviewsWhat {
    /// Print a preview's URLs, and open the first in a browser when there is a desktop
    Open {
        /// The pull request's number (`7` or `#7`) or the branch
        preview: String,
        /// Only print the URLs
        #[arg(long)]
        print: bool,
    },
    /// A service's logs in a preview
    Logs {
        /// The pull request's number or the branch
        preview: String,
        /// The service
        service: String,
        /// Lines to show
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: usize,
        /// Keep streaming new lines
        #[arg(short, long)]
        follow: bool,
    },
    /// Let a fork's pull request run in its preview (its code runs with your quota)
    Approve {
        /// The pull request's number
        preview: String,
    },
    /// Remove a preview now, whole (a new push to it starts it again)
    Delete {
        /// The pull request's number or the branch
        preview: String,
    },
}

pub async fn run(t: &Target, args: PreviewsArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    match args.what {
        None => list(&ctx, args.output).await,
        Some(PreviewsWhat::Open { preview, print }) => {
            let env = environment(&ctx, &preview).await?;
            if env.urls.is_empty() {
                bail!(
                    "preview {preview} ({}) has no public URL: it is {} and serves only the services public in {} (`micro previews` says more)",
                    env.namespace,
                    env.state,
                    ctx.namespace
                );
            }
            for url in &env.urls {
                println!("{url}");
            }
            if !print {
                super::open::in_browser(&env.urls[0]);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(PreviewsWhat::Logs {
            preview,
            service,
            lines,
            follow,
        }) => {
            let env = environment(&ctx, &preview).await?;
            let target = Target {
                env: t.env.clone(),
                namespace: Some(env.namespace),
                branch: None,
            };
            super::logs::run(
                &target,
                super::logs::LogsArgs {
                    name: service,
                    lines,
                    follow,
                    since: None,
                    router: false,
                    build: false,
                },
            )
            .await
        }
        Some(PreviewsWhat::Approve { preview }) => {
            let env = ctx.client.approve_preview(&ctx.namespace, &preview).await?;
            println!("{}: {} ({})", env.namespace, env.state, env.detail);
            Ok(ExitCode::SUCCESS)
        }
        Some(PreviewsWhat::Delete { preview }) => {
            ctx.client.delete_preview(&ctx.namespace, &preview).await?;
            eprintln!("preview {preview} of {} removed", ctx.namespace);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The environment of one preview, or a line saying why there is none.
async fn environment(ctx: &crate::context::Context, preview: &str) -> Result<EnvironmentView> {
    let wanted = micro_tenant::preview::Source::parse(preview);
    let previews = ctx.client.previews(&ctx.namespace).await?;
    let found = previews.into_iter().find(|p| match &wanted {
        micro_tenant::preview::Source::Pull(n) => p.number == Some(*n),
        micro_tenant::preview::Source::Branch(b) => p.number.is_none() && p.name == *b,
    });
    match found {
        Some(PreviewView {
            environment: Some(env),
            ..
        }) => Ok(env),
        Some(_) => bail!(
            "{preview} has a plan but no preview environment: turn them on with `previews: {{enabled: true}}` in micro.yaml"
        ),
        None => bail!(
            "no preview {preview} in {}: `micro previews` lists them",
            ctx.namespace
        ),
    }
}

async fn list(ctx: &crate::context::Context, output: Output) -> Result<ExitCode> {
    let previews = ctx.client.previews(&ctx.namespace).await?;
    if output.data(&previews)? {
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
        "{:<24} {:<8} {:<8} {:<10} {:<9} {:<20} URL / SUMMARY / ERROR",
        "PREVIEW", "HEAD", "STATUS", "UPDATED", "STATE", "EXPIRES"
    );
    let now = micro_store::now_millis();
    for p in previews {
        let (state, expires, detail) = match &p.environment {
            Some(env) => (
                env.state.clone(),
                rfc3339(env.expires_at),
                match env.state.as_str() {
                    "waiting" | "approval" | "failed" => env.detail.clone(),
                    _ => env.urls.join(" "),
                },
            ),
            None => (
                "-".to_owned(),
                "-".to_owned(),
                p.error.clone().unwrap_or_else(|| p.summary.clone()),
            ),
        };
        println!(
            "{:<24} {:<8} {:<8} {:<10} {:<9} {:<20} {detail}",
            p.name,
            short(&p.head),
            p.status,
            ago(now - p.updated_at),
            state,
            expires
        );
    }
    eprintln!(
        "`micro diff --pr N` (or `micro diff BRANCH`) shows one's plan in full; `micro previews logs N SERVICE` its logs"
    );
    Ok(ExitCode::SUCCESS)
}
