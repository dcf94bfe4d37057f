//! `micro history` and `micro rollback [REV]`.

use super::{Output, ago, short};
use crate::context::Target;
use anyhow::{Result, anyhow, bail};
use micro_store::now_micros;
use micro_tenant::change::{Change, ChangeError, Edit, Pushed};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// How many entries
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    /// How to print it: text (a table for people), json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// The revision whose tree to restore [default: the last applied one before the one
    /// running, when the branch head is what runs]
    pub revision: Option<String>,
    /// Restore only this service's folder (`services/NAME`) from that revision
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    #[command(flatten)]
    pub to: super::BranchFlag,
}

pub async fn run(t: &Target, args: HistoryArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let entries = ctx.client.history(&ctx.namespace, args.limit).await?;
    #[derive(serde::Serialize)]
    struct Item<'a> {
        #[serde(flatten)]
        item: &'a micro_api::types::HistoryItem,
        /// RFC 3339, like every time the CLI prints.
        started: String,
    }
    let items: Vec<Item<'_>> = entries
        .iter()
        .map(|item| Item {
            started: super::rfc3339(item.started_us / 1000),
            item,
        })
        .collect();
    if args.output.data(&items)? {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<8} {:<14} {:<8} {:>6}  {:<32} {:<28} PLAN / ERROR",
        "WHEN", "REVISION", "TRIGGER", "RESULT", "MS", "COMMIT", "AUTHOR"
    );
    let now = now_micros();
    for e in entries {
        let when = ago((now - e.started_us) / 1000);
        let mut detail = e.error.unwrap_or(e.summary);
        if let Some(note) = e.note {
            detail = format!("{detail} · {note}");
        }
        // Applied, but what it rolled out failed since: said so.
        let result = match &e.rollout_failed {
            Some(why) => {
                detail = format!("{detail} · rollout failed: {why}");
                "failed".to_owned()
            }
            None => e.result.to_string(),
        };
        // Who pushed it, else the commit's author's address (the CLI's commits all name
        // their author `micro`).
        let author = match (&e.pushed_by, &e.author) {
            (Some(by), _) => by.clone(),
            (None, Some(a)) => a
                .split_once(" <")
                .map(|(name, email)| {
                    let email = email.trim_end_matches('>');
                    if email.is_empty() { name } else { email }
                })
                .unwrap_or(a)
                .to_owned(),
            (None, None) => String::new(),
        };
        let author = author.as_str();
        println!(
            "{when:<10} {:<8} {:<14} {:<8} {:>6}  {:<32} {:<28} {detail}",
            short(&e.revision),
            e.reason,
            result,
            e.duration_ms,
            clip(e.subject.as_deref().unwrap_or(""), 32),
            clip(author, 28),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// At most `width` characters, with `…` when cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

pub async fn rollback(t: &Target, args: RollbackArgs) -> Result<ExitCode> {
    let ctx = t.writing_to(&args.to).resolve_writing().await?;
    let target = match args.revision {
        Some(rev) => rev,
        None => {
            let applied: Vec<String> = ctx
                .client
                .history(&ctx.namespace, 1000)
                .await?
                .into_iter()
                .filter(|e| e.result == micro_store::ReconcileResult::Applied)
                .map(|e| e.revision)
                .collect();
            let current = applied
                .first()
                .ok_or_else(|| anyhow!("nothing has been applied yet"))?;
            let before = applied
                .iter()
                .find(|r| *r != current)
                .cloned()
                .ok_or_else(|| anyhow!("no earlier applied revision to roll back to"))?;
            // With commits on top of what runs (one that does not validate, say), "back
            // one" is ambiguous: the user picks.
            let head = ctx.client.status(&ctx.namespace).await?.branch;
            if let Some(head) = head.filter(|h| h != current) {
                bail!(
                    "the branch head {} is not what runs ({} runs; before it {}): `micro rollback {}` undoes the commits after what runs, `micro rollback {}` goes back one more",
                    short(&head),
                    short(current),
                    short(&before),
                    short(current),
                    short(&before)
                );
            }
            before
        }
    };
    if let Some(name) = &args.service {
        micro_tenant::spec::check_service_name(name).map_err(|e| anyhow!("{e}"))?;
    }
    let pushed = tokio::task::block_in_place(|| {
        let trailer = micro_tenant::repo::ACTION_TRAILER;
        let what = match &args.service {
            Some(name) => format!(
                "Rollback {name} to {}\n\n{trailer}: rollback",
                short(&target)
            ),
            None => format!("Rollback to {}\n\n{trailer}: rollback", short(&target)),
        };
        let change = Change {
            message: what,
            edits: vec![Edit::AsAt {
                // Only that folder (as it was then, or gone if it did not exist then),
                // else the whole tree.
                path: args
                    .service
                    .as_deref()
                    .map(micro_tenant::layout::service_dir),
                revision: target.clone(),
            }],
            expect: Vec::new(),
        };
        ctx.tenant_repo()?.apply(&change).map_err(|e| match e {
            ChangeError::Missing(_) => {
                anyhow!("revision {target} not found in namespace {}", ctx.namespace)
            }
            e => ctx.said(e),
        })
    })?;
    match pushed {
        Pushed::Committed(id) => {
            eprintln!(
                "rolled back to {}: pushed {}",
                short(&target),
                short(&id.to_string())
            );
            super::wait::delivered(&ctx, "rollback").await;
        }
        Pushed::Unchanged(_) => eprintln!("already at the tree of {}", short(&target)),
    }
    Ok(ExitCode::SUCCESS)
}
