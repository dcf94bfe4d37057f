//! `micro history` and `micro rollback [REV]`.

use super::{Output, ago, short};
use crate::context::Target;
use crate::gitops::{Pushed, TenantRepo};
use anyhow::{Result, anyhow};
use micro_store::now_micros;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// How many entries
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// The revision whose tree to restore [default: the last applied one before the current]
    pub revision: Option<String>,
}

pub async fn run(t: &Target, args: HistoryArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let entries = ctx.client.history(&ctx.namespace, args.limit).await?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<8} {:<14} {:<8} {:>6}  PLAN / ERROR",
        "WHEN", "REVISION", "TRIGGER", "RESULT", "MS"
    );
    let now = now_micros();
    for e in entries {
        let when = ago((now - e.started_us) / 1000);
        let detail = e.error.unwrap_or(e.summary);
        println!(
            "{when:<10} {:<8} {:<14} {:<8} {:>6}  {detail}",
            short(&e.revision),
            e.reason,
            e.result,
            e.duration_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(t: &Target, args: RollbackArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let target = match args.revision {
        Some(rev) => rev,
        None => {
            let applied: Vec<String> = ctx
                .client
                .history(&ctx.namespace, 1000)
                .await?
                .into_iter()
                .filter(|e| e.result == "applied")
                .map(|e| e.revision)
                .collect();
            let current = applied
                .first()
                .ok_or_else(|| anyhow!("nothing has been applied yet"))?;
            applied
                .iter()
                .find(|r| *r != current)
                .cloned()
                .ok_or_else(|| anyhow!("no earlier applied revision to roll back to"))?
        }
    };
    let pushed = tokio::task::block_in_place(|| {
        let repo = TenantRepo::open(&ctx)?;
        repo.change(&format!("Rollback to {}", short(&target)), |r, _| {
            let tree = r
                .revparse_single(&target)
                .and_then(|o| o.peel_to_tree())
                .map_err(|_| {
                    anyhow!("revision {target} not found in namespace {}", ctx.namespace)
                })?;
            Ok(tree.id())
        })
    })?;
    match pushed {
        Pushed::Committed(id) => eprintln!(
            "rolled back to {}: pushed {}",
            short(&target),
            short(&id.to_string())
        ),
        Pushed::Unchanged(_) => eprintln!("already at the tree of {}", short(&target)),
    }
    Ok(ExitCode::SUCCESS)
}
