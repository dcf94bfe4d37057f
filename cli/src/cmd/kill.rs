//! `micro kill NAME`: a commit removing `services/<name>/`; the reconciler stops it.

use super::{short, wait};
use crate::context::Target;
use anyhow::Result;
use micro_tenant::change::{Change, Edit, Expect, Pushed};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// The service to remove
    #[arg(add = crate::complete::services())]
    pub name: String,
    #[command(flatten)]
    pub to: super::BranchFlag,
}

pub async fn run(t: &Target, args: KillArgs) -> Result<ExitCode> {
    let ctx = t.writing_to(&args.to).resolve_writing().await?;
    let name = args.name.clone();
    let path = micro_tenant::layout::service_dir(&name);
    let change = Change {
        message: format!("Kill {name}"),
        edits: vec![Edit::Remove { path: path.clone() }],
        expect: vec![Expect::Exists {
            path,
            missing: format!("service {name} not found in namespace {}", ctx.namespace),
        }],
    };
    let pushed = tokio::task::block_in_place(|| ctx.commit(&change))?;
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
