//! `micro checkout`: what a pod's init container runs on the Kubernetes runtime. Writes
//! the files of one folder of a git repo at one commit into a directory, authenticated
//! with `MICRO_TOKEN` (never a flag: flags show in process listings), trusting the CA in
//! the file `MICRO_TLS_CA` when set.

use anyhow::{Context as _, Result, anyhow};
use micro_reconciler::sources::SourceCache;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckoutArgs {
    /// The repo's URL (the platform's git endpoint for the tenant's own repo)
    #[arg(long, value_name = "URL")]
    pub git: String,
    /// The commit to check out (a full id)
    #[arg(long)]
    pub commit: String,
    /// The folder inside the repo [default: all of it]
    #[arg(long)]
    pub path: Option<String>,
    /// Where to write the files (created if missing)
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
}

pub fn run(args: CheckoutArgs) -> Result<ExitCode> {
    let commit = git2::Oid::from_str(&args.commit)
        .map_err(|_| anyhow!("--commit {}: not a commit id", args.commit))?;
    let scratch = tempfile::tempdir().context("a scratch folder for the fetch")?;
    let mut cache = SourceCache::new(scratch.path());
    if let Ok(token) = std::env::var("MICRO_TOKEN") {
        cache = cache.with_token(token);
    }
    // The platform's CA, pinned for this fetch (a pod gets it as a file).
    if let Some(path) = std::env::var_os("MICRO_TLS_CA") {
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("MICRO_TLS_CA {}", PathBuf::from(&path).display()))?;
        let env = crate::home::Env {
            ca: Some(pem),
            ..Default::default()
        };
        if let Some(check) = crate::tls::cert_check(&env) {
            cache = cache.with_cert_check(check);
        }
    }
    cache
        .checkout(&args.git, commit, args.path.as_deref(), &args.into)
        .map_err(|e| anyhow!("{e}"))?;
    Ok(ExitCode::SUCCESS)
}
