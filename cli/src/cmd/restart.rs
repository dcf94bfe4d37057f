//! `micro restart NAME`: roll a service out again at the revision it runs, like
//! `kubectl rollout restart` or `heroku restart`; also how a build that failed for a
//! passing reason (a network blip) is tried again. Recorded in history as a restart.

use crate::context::Target;
use anyhow::{Result, bail};
use micro_api::types::ServiceState;
use micro_store::now_millis;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct RestartArgs {
    /// The service
    #[arg(add = crate::complete::services())]
    pub name: String,
    /// Wait until the new rollout runs (or fails), showing progress
    #[arg(long)]
    pub wait: bool,
}

pub async fn run(t: &Target, args: RestartArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let asked = now_millis();
    ctx.client.restart(&ctx.namespace, &args.name).await?;
    let name = &args.name;
    eprintln!("{name}: restarting");
    // Until the platform has acted (a few seconds at most), or, with --wait, until the
    // new rollout runs all its replicas.
    let deadline = Instant::now() + Duration::from_secs(if args.wait { 120 } else { 5 });
    let mut last = String::new();
    loop {
        let report = ctx.client.status(&ctx.namespace).await?;
        if let Some(s) = report
            .services
            .iter()
            .find(|s| s.name == *name && s.updated_at >= asked)
        {
            super::wait::show_change(s, &mut last);
            match s.status {
                _ if !args.wait => return Ok(ExitCode::SUCCESS),
                ServiceState::Running if s.ready == s.desired => return Ok(ExitCode::SUCCESS),
                ServiceState::Error => bail!("{name} failed: {}", s.message),
                ServiceState::CrashLoop => bail!("{name} is in a crash loop: {}", s.message),
                _ => {}
            }
        }
        if Instant::now() > deadline {
            if args.wait {
                bail!("{name} is not running again yet; see `micro status {name}`");
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
