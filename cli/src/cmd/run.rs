//! `micro run DIR` and `micro update NAME`: commit a local folder into
//! `services/<name>/` of the namespace's repo and push it.

use super::{short, wait};
use crate::context::{Context, Target};
use crate::gitops::{self, Pushed, TenantRepo};
use anyhow::{Context as _, Result, anyhow, bail};
use micro_reconciler::spec::{self, SpecError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A local folder holding service.yaml and the service's code
    pub source: String,
    /// The service name [default: the folder's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Wait until the service runs (or fails), showing progress
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The service to update (or the folder it was run from)
    pub name: String,
    /// Wait until the new version runs (or fails), showing progress
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

pub async fn run(t: &Target, args: RunArgs) -> Result<ExitCode> {
    let dir = PathBuf::from(&args.source);
    if !dir.is_dir() {
        if args.source.contains("://") || args.source.contains('@') {
            bail!(
                "{}: running from a git URL is not supported yet; pass a local folder",
                args.source
            );
        }
        bail!(
            "{}: no such folder (create one with `micro new NAME`)",
            args.source
        );
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let name = match args.name {
        Some(n) => n,
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("cannot name a service after {}: pass --name", dir.display()))?,
    };
    deploy(t, &dir, &name, args.wait, args.timeout).await
}

pub async fn update(t: &Target, args: UpdateArgs) -> Result<ExitCode> {
    let as_dir = Path::new(&args.name);
    if as_dir.is_dir() && as_dir.join("service.yaml").exists() {
        let dir = as_dir.canonicalize()?;
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("cannot name a service after {}", dir.display()))?;
        return deploy(t, &dir, &name, args.wait, args.timeout).await;
    }
    let ctx = t.resolve().await?;
    let dir = ctx.home.source_of(&source_key(&ctx, &args.name))?.ok_or_else(|| {
        anyhow!(
            "service {} was not run from a folder on this machine: edit it in `micro clone` and push, or `micro run DIR`",
            args.name
        )
    })?;
    if !dir.is_dir() {
        bail!(
            "{} (where {} was run from) no longer exists",
            dir.display(),
            args.name
        );
    }
    deploy(t, &dir, &args.name, args.wait, args.timeout).await
}

fn source_key(ctx: &Context, name: &str) -> String {
    format!("{}/{}/{}", ctx.env_name, ctx.namespace, name)
}

/// Validates the folder's spec locally, then commits and pushes it.
async fn deploy(
    t: &Target,
    dir: &Path,
    name: &str,
    wait_for: bool,
    timeout: u64,
) -> Result<ExitCode> {
    spec::check_service_name(name).map_err(anyhow::Error::msg)?;
    let spec_path = dir.join("service.yaml");
    let bytes = std::fs::read(&spec_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "{}: missing (every service needs one; see `micro new`)",
                spec_path.display()
            )
        } else {
            anyhow!("{}: {e}", spec_path.display())
        }
    })?;
    // The same validator the server runs, with the error pointing at the local file.
    spec::parse_service(name, &bytes).map_err(|e| {
        anyhow::Error::msg(SpecError {
            file: spec_path.display().to_string(),
            ..e
        })
    })?;
    let ctx = t.resolve().await?;
    let pushed = {
        let dir = dir.to_owned();
        let name = name.to_owned();
        let message = format!("Run {name}");
        let ctx = &ctx;
        tokio::task::block_in_place(|| {
            let repo = TenantRepo::open(ctx)?;
            repo.change(&message, |r, tree| {
                let service_tree = gitops::tree_from_dir(r, &dir)?;
                gitops::set_path(
                    r,
                    Some(tree),
                    &["services", &name],
                    Some((service_tree, 0o040000)),
                )
            })
        })?
    };
    ctx.home.remember_source(&source_key(&ctx, name), dir)?;
    let revision = match pushed {
        Pushed::Committed(id) => {
            eprintln!(
                "{name}: pushed {} to {}",
                short(&id.to_string()),
                ctx.namespace
            );
            id.to_string()
        }
        Pushed::Unchanged(id) => {
            eprintln!(
                "{name}: no change; {} already has this version",
                ctx.namespace
            );
            id.to_string()
        }
    };
    if wait_for {
        return wait::until_running(&ctx, name, &revision, Duration::from_secs(timeout)).await;
    }
    Ok(ExitCode::SUCCESS)
}
