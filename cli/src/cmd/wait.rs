//! `--wait`: follow a service's status until it runs or fails, printing each change.

use super::short;
use crate::context::Context;
use anyhow::{Result, bail};
use micro_api::types::ServiceState;
use micro_api::types::StatusReport;
use micro_tenant::change::Pushed;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Waits until `name` runs all replicas at a revision at least as new as `revision`.
/// When `revision` changed the service itself, only a status at that revision says how
/// it went: the namespace can read "applied" a moment before the runtime reports on the
/// new rollout, while the service still shows how the previous one ended.
pub async fn until_running(
    ctx: &Context,
    name: &str,
    revision: &str,
    changed_it: bool,
    timeout: Duration,
) -> Result<ExitCode> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let since = micro_store::now_millis();
    // The build's lines, as they come, while it builds (ended with the wait), under the
    // status lines.
    let mut following = Following(None);
    let tail = std::sync::Arc::new(std::sync::Mutex::new(super::tail::Tail::for_stderr()));
    let show = |line: &str| {
        if let Ok(mut tail) = tail.lock() {
            tail.status_line(line);
        }
    };
    loop {
        let report = ctx.client.status(&ctx.namespace).await?;
        if let Some(ns) = &report.namespace
            && ns.head == revision
            && let Some(error) = &ns.error
        {
            bail!("revision {} was not applied: {error}", short(revision));
        }
        let applied = report
            .namespace
            .as_ref()
            .and_then(|ns| ns.applied.as_deref())
            .is_some_and(|a| a == revision);
        if let Some(s) = report.services.iter().find(|s| s.name == name) {
            // Built: the tail folds before the next state shows.
            if s.status != ServiceState::Building
                && following.0.is_some()
                && let Ok(mut tail) = tail.lock()
            {
                let failed = s.status == ServiceState::Error && s.message.starts_with("build");
                tail.fold(name, !failed);
            }
            if let Some(line) = changed(s, &mut last) {
                show(&line);
            }
            if s.status == ServiceState::Building && following.0.is_none() {
                following.0 = Some(tokio::spawn(super::logs::follow_build(
                    ctx.client.clone(),
                    ctx.namespace.clone(),
                    name.to_owned(),
                    since,
                    tail.clone(),
                )));
            }
            if applied && (!changed_it || s.revision == revision) {
                match s.status {
                    ServiceState::Running if s.ready == s.desired => {
                        eprintln!("{name}: running at {}", short(&s.revision));
                        return Ok(ExitCode::SUCCESS);
                    }
                    ServiceState::Paused => {
                        eprintln!("{name}: paused at {}", short(&s.revision));
                        return Ok(ExitCode::SUCCESS);
                    }
                    ServiceState::Error => bail!("{name} failed: {}", s.message),
                    ServiceState::CrashLoop => bail!("{name} is in a crash loop: {}", s.message),
                    _ => {}
                }
            }
        } else if last.is_empty() {
            eprintln!(
                "{name}: waiting for the platform to pick up {}",
                short(revision)
            );
            last = "waiting".into();
        }
        if Instant::now() > deadline {
            bail!(
                "{name} is not running after {}s; see `micro status {name}` and `micro logs {name}`",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints a service's state as one progress line, when it differs from the `last` one.
pub fn show_change(s: &micro_api::types::ServiceView, last: &mut String) {
    if let Some(line) = changed(s, last) {
        eprintln!("{line}");
    }
}

/// A service's state as one progress line, when it differs from the `last` one.
fn changed(s: &micro_api::types::ServiceView, last: &mut String) -> Option<String> {
    let line = format!(
        "{}: {} {}/{} {}",
        s.name, s.status, s.ready, s.desired, s.message
    );
    (line != *last).then(|| {
        *last = line.clone();
        line.trim_end().to_owned()
    })
}

/// Says what a push did (`what` describes a new commit), then waits if asked; without
/// `--wait`, only until the platform has taken the commit up.
pub async fn after_push(
    ctx: &Context,
    name: &str,
    pushed: Pushed,
    what: &str,
    wait: bool,
    timeout: u64,
) -> Result<ExitCode> {
    let committed = matches!(pushed, Pushed::Committed(_));
    let revision = match pushed {
        Pushed::Committed(id) => {
            eprintln!(
                "{name}: {what} ({} in {})",
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
    if committed && !delivered(ctx, name).await {
        return Ok(ExitCode::SUCCESS);
    }
    if wait {
        return until_running(
            ctx,
            name,
            &revision,
            committed,
            Duration::from_secs(timeout),
        )
        .await;
    }
    if committed {
        match taken_up(ctx, &revision).await {
            Some(report) => match report.services.iter().find(|s| s.name == name) {
                Some(s) => eprintln!(
                    "{name}: {} {}/{}; `micro status {name}` shows how it goes",
                    s.status, s.ready, s.desired
                ),
                None => eprintln!("{name}: taken up by the platform"),
            },
            None => not_yet(name, &revision),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// After a commit: says where it went when not to the branch the namespace runs (then
/// the platform will not run it: `false`), and has a linked namespace's platform fetch
/// it now rather than wait on the forge's webhook or the poll.
pub async fn delivered(ctx: &Context, name: &str) -> bool {
    if let Some(said) = ctx.elsewhere() {
        eprintln!("{name}: {said}");
        return false;
    }
    if ctx.link.is_some()
        && let Err(e) = ctx.client.fetch_link(&ctx.namespace).await
    {
        eprintln!("{name}: the platform was not told to fetch ({e}); it will at its next poll");
    }
    true
}

/// How long a command without `--wait` waits for the platform to take up its commit.
const PICKUP: Duration = Duration::from_secs(5);

/// Waits (briefly) until the platform has taken up `revision`, so that a `micro status`
/// typed next already shows what the commit did; the status then, or `None` if the
/// platform has not got to it yet. Never an error: the commit is in either way.
pub async fn taken_up(ctx: &Context, revision: &str) -> Option<StatusReport> {
    let deadline = Instant::now() + PICKUP;
    loop {
        let report = ctx.client.status(&ctx.namespace).await.ok()?;
        if report
            .namespace
            .as_ref()
            .is_some_and(|ns| ns.head == revision)
        {
            return Some(report);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What to say when [`taken_up`] gave up.
pub fn not_yet(name: &str, revision: &str) {
    eprintln!(
        "{name}: the platform has not taken up {} yet; see `micro status`",
        short(revision)
    );
}

/// A build's lines being printed: only while waiting, so the task ends when this is dropped.
struct Following(Option<tokio::task::JoinHandle<()>>);

impl Drop for Following {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}
