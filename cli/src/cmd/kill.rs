//! `micro kill NAME`: a commit removing `services/<name>/`; the reconciler stops it.

use super::{short, wait};
use crate::context::Target;
use crate::gitops::{self, Pushed, TenantRepo};
use anyhow::{Result, bail};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The service to remove
    pub name: String,
    #[command(flatten)]
    pub to: super::BranchFlag,
}

pub async fn run(t: &Target, args: KillArgs) -> Result<ExitCode> {
    let ctx = t.resolve_writing(args.to.branch.as_deref()).await?;
    let name = args.name.clone();
    let pushed = tokio::task::block_in_place(|| {
        let repo = TenantRepo::open(&ctx)?;
        repo.change(&format!("Kill {name}"), |r, tree| {
            if !gitops::has_service(tree, &name) {
                bail!("service {name} not found in namespace {}", ctx.namespace);
            }
            gitops::set_path(r, Some(tree), &["services", &name], None)
        })
    })?;
    let Pushed::Committed(id) = pushed else {
        eprintln!("{name}: already gone");
        return Ok(ExitCode::SUCCESS);
    };
    let revision = id.to_string();
    eprintln!(
        "{name}: removed in {} ({})",
        ctx.namespace,
        short(&revision)
    );
    if !wait::delivered(&ctx, &name).await {
        return Ok(ExitCode::SUCCESS);
    }
    // Like `kubectl delete`: return once the platform has acted on it.
    match wait::taken_up(&ctx, &revision).await {
        Some(report) if report.services.iter().any(|s| s.name == name) => {
            eprintln!("{name}: stopping");
        }
        Some(_) => eprintln!("{name}: stopped"),
        None => wait::not_yet(&name, &revision),
    }
    Ok(ExitCode::SUCCESS)
}
