//! `micro scale NAME N`: a commit setting `replicas` in the service's spec, like
//! `heroku ps:scale` or `kubectl scale`; the platform rolls it out with no downtime.

use super::wait;
use crate::context::Target;
use anyhow::{Result, anyhow, bail};
use micro_tenant::change::{Change, Edit};
use micro_tenant::spec;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// The service
    #[arg(add = crate::complete::services())]
    pub name: String,
    /// How many replicas it should run (0 pauses it: nothing runs until it is scaled up)
    pub replicas: u32,
    /// Wait until it runs that many (or fails), showing progress
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    #[command(flatten)]
    pub to: super::BranchFlag,
}

pub async fn run(t: &Target, args: ScaleArgs) -> Result<ExitCode> {
    let ctx = t.writing_to(&args.to).resolve_writing().await?;
    let (name, n) = (args.name.clone(), args.replicas);
    let path = format!("services/{name}/service.yaml");
    let rewrite = |bytes: Option<&[u8]>| -> Result<Vec<u8>> {
        let bytes = bytes
            .ok_or_else(|| anyhow!("service {name} not found in namespace {}", ctx.namespace))?;
        let text = std::str::from_utf8(bytes).map_err(|_| anyhow!("{path} is not UTF-8 text"))?;
        let edited = with_replicas(text, n);
        let parsed = spec::parse_service(&name, edited.as_bytes()).map_err(|e| {
            anyhow!("cannot set replicas in {path} ({e}): edit it in `micro clone`")
        })?;
        if parsed.replicas() != n {
            bail!("cannot set replicas in {path}: edit it in `micro clone`");
        }
        Ok(edited.into_bytes())
    };
    let change = Change {
        message: format!("Scale {name} to {n}"),
        edits: vec![Edit::Rewrite {
            path: path.clone(),
            with: Box::new(|bytes, _| rewrite(bytes).map_err(Into::into)),
        }],
        expect: Vec::new(),
    };
    let pushed = tokio::task::block_in_place(|| ctx.commit(&change))?;
    wait::after_push(
        &ctx,
        &args.name,
        pushed,
        &format!("scaled to {n}"),
        args.wait,
        args.timeout,
    )
    .await
}

/// The spec with its top-level `replicas:` line set to `n` (added if missing); every
/// other line, comments included, as it was.
pub(crate) fn with_replicas(spec: &str, n: u32) -> String {
    let line = format!("replicas: {n}");
    let mut found = false;
    let mut out: Vec<String> = spec
        .lines()
        .map(|l| {
            if !found && l.starts_with("replicas:") {
                found = true;
                line.clone()
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        out.push(line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::with_replicas;

    #[test]
    fn replicas_is_replaced_or_added_and_the_rest_kept() {
        assert_eq!(
            with_replicas("run: x\nreplicas: 1 # one\nenv: {A: b}\n", 3),
            "run: x\nreplicas: 3\nenv: {A: b}\n"
        );
        assert_eq!(
            with_replicas("# mine\nrun: x", 2),
            "# mine\nrun: x\nreplicas: 2\n"
        );
    }
}
