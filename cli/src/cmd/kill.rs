//! `micro kill NAME`: a commit removing `services/<name>/`; the reconciler stops it.

use super::short;
use crate::context::Target;
use crate::gitops::{self, Pushed, TenantRepo};
use anyhow::{Result, bail};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The service to remove
    pub name: String,
}

pub async fn run(t: &Target, args: KillArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
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
    match pushed {
        Pushed::Committed(id) => eprintln!(
            "{}: removed in {} ({})",
            args.name,
            ctx.namespace,
            short(&id.to_string())
        ),
        Pushed::Unchanged(_) => eprintln!("{}: already gone", args.name),
    }
    Ok(ExitCode::SUCCESS)
}
