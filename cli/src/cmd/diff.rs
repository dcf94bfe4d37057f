//! `micro diff [REF]`: what REF would change against what runs now. Exit 0 when nothing
//! would change, 1 when something would, 2 on error (as `argocd app diff`, `flux diff`).

use super::Output;
use crate::context::Target;
use anyhow::{Context as _, Result, anyhow};
use micro_reconciler::plan::Plan;
use micro_tenant::change::{self, PREVIEW_REFS};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// A branch, tag or commit. Inside a clone of the namespace's repo it is read from the
    /// clone (default HEAD); elsewhere from the platform (default: the branch head)
    pub reference: Option<String>,
    /// How to print it: text (a table for people), json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

pub async fn run(t: &Target, args: DiffArgs) -> ExitCode {
    match diff(t, &args).await {
        Ok(plan) => {
            match args.output.data(&plan) {
                Ok(true) => {}
                Ok(false) => print!("{}", plan.render_text(super::color_on_stdout())),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            if plan.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {}", crate::one_line(&e));
            ExitCode::from(2)
        }
    }
}

async fn diff(t: &Target, args: &DiffArgs) -> Result<Plan> {
    let ctx = t.resolve().await?;
    if let Some(local) = local_tenant_repo() {
        // The platform plans the clone's commit itself, from a preview ref: what a
        // commit means is read in one place, whatever version this CLI is.
        let reference = args.reference.as_deref().unwrap_or("HEAD");
        let commit = local
            .revparse_single(reference)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| anyhow!("{reference}: {}", e.message()))?
            .id();
        let preview = format!("{PREVIEW_REFS}{:016x}", rand::random::<u64>());
        let remote = crate::gitops::remote(&ctx);
        tokio::task::block_in_place(|| change::publish(&local, &remote, commit, &preview))
            .map_err(|e| anyhow!("cannot send {reference} to the platform: {e}"))?;
        let plan = ctx.client.plan_ref(&ctx.namespace, &preview).await;
        if let Err(e) = tokio::task::block_in_place(|| change::unpublish(&local, &remote, &preview))
        {
            tracing::debug!(error = %e, "preview ref left behind");
        }
        return plan.context("cannot plan");
    }
    let reference = args
        .reference
        .as_deref()
        .unwrap_or(micro_reconciler::layout::BRANCH);
    Ok(ctx.client.plan_ref(&ctx.namespace, reference).await?)
}

/// The git repo around the current directory, if it is a tenant repo (has micro.yaml).
fn local_tenant_repo() -> Option<git2::Repository> {
    let repo = git2::Repository::discover(".").ok()?;
    let is_tenant = {
        let tree = repo.head().ok()?.peel_to_tree().ok()?;
        tree.get_name("micro.yaml").is_some()
    };
    is_tenant.then_some(repo)
}
