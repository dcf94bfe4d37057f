//! `micro diff [REF]`: what REF would change against what runs now. Exit 0 when nothing
//! would change, 1 when something would, 2 on error (as `argocd app diff`, `flux diff`).

use super::Output;
use crate::context::Target;
use anyhow::{Context as _, Result, anyhow};
use micro_api::types::{ActionView, PlanView};
use micro_tenant::change::{self, PREVIEW_REFS};
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// A branch, tag or commit. Inside a clone of the namespace's repo it is read from the
    /// clone (default HEAD); elsewhere from the platform (default: the branch head)
    #[arg(conflicts_with = "pr")]
    pub reference: Option<String>,
    /// The last fetched head of pull (merge) request N of the linked repo
    #[arg(long, value_name = "N")]
    pub pr: Option<u64>,
    /// How to print it: text (a table for people), json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

pub async fn run(t: &Target, args: DiffArgs) -> ExitCode {
    match diff(t, &args).await {
        Ok(plan) => {
            match args.output.data(&plan) {
                Ok(true) => {}
                Ok(false) => print!("{}", render_text(&plan, super::color_on_stdout())),
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

async fn diff(t: &Target, args: &DiffArgs) -> Result<PlanView> {
    let ctx = t.resolve().await?;
    if let Some(number) = args.pr {
        let reference = change::pull_preview_ref(number);
        return match ctx.client.plan_ref(&ctx.namespace, &reference).await {
            Err(micro_api::client::ClientError::NotFound(_)) => Err(anyhow!(
                "no preview of #{number} in {}: is the pull request open, and has its forge sent the event? (`micro previews`)",
                ctx.namespace
            )),
            other => Ok(other?),
        };
    }
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
        let remote = ctx.platform_remote();
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
        .unwrap_or(micro_tenant::layout::BRANCH);
    Ok(ctx.client.plan_ref(&ctx.namespace, reference).await?)
}

/// The plan for a terminal: `+` create (with what it sets), `~` update (field by field),
/// `-` delete.
fn render_text(plan: &PlanView, color: bool) -> String {
    let paint = |code: &str, text: String| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let short = |rev: &str| rev.get(..7).unwrap_or(rev).to_owned();
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} @ {}: {}",
        plan.namespace,
        short(&plan.revision),
        plan.summary
    );
    for action in &plan.actions {
        let lines: Vec<(&str, String)> = match action {
            ActionView::Create { name, changes, .. } => std::iter::once(format!("+ {name}"))
                .chain(
                    changes
                        .iter()
                        .map(|c| format!("    {}: {}", c.field, c.to.as_deref().unwrap_or(""))),
                )
                .map(|l| ("32", l))
                .collect(),
            ActionView::Update {
                name,
                from_revision,
                changes,
                ..
            } => std::iter::once(format!("~ {name} (running {})", short(from_revision)))
                .chain(
                    changes
                        .iter()
                        .map(|c| format!("    {}: {} → {}", c.field, show(&c.from), show(&c.to))),
                )
                .map(|l| ("33", l))
                .collect(),
            ActionView::Delete { name, .. } => vec![("31", format!("- {name}"))],
            ActionView::Unknown => {
                vec![("0", "? (a change this CLI cannot show: update it)".into())]
            }
        };
        for (code, line) in lines {
            let _ = writeln!(out, "{}", paint(code, line));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use micro_api::types::{FieldChangeView, PlanSummary};

    fn change(field: &str, from: Option<&str>, to: Option<&str>) -> FieldChangeView {
        FieldChangeView {
            field: field.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    #[test]
    fn text_shows_every_action_field_by_field() {
        let plan = PlanView {
            namespace: "a".into(),
            revision: "r2".into(),
            summary: PlanSummary {
                create: 1,
                update: 1,
                delete: 1,
                unchanged: 0,
            },
            actions: vec![
                ActionView::Delete {
                    name: "z".into(),
                    revision: "r1".into(),
                },
                ActionView::Update {
                    name: "x".into(),
                    revision: "r2".into(),
                    from_revision: "r1".into(),
                    changes: vec![change("env.A", None, Some("1"))],
                },
                ActionView::Create {
                    name: "y".into(),
                    revision: "r2".into(),
                    changes: vec![change("run", None, Some("python3 main.py"))],
                },
            ],
            unchanged: vec![],
        };
        let text = render_text(&plan, false);
        assert_eq!(
            text,
            "a @ r2: 1 to create, 1 to update, 1 to delete, 0 unchanged\n\
             - z\n\
             ~ x (running r1)\n    env.A: (none) → 1\n\
             + y\n    run: python3 main.py\n"
        );
        assert!(render_text(&plan, true).contains("\x1b[31m- z\x1b[0m"));
    }

    #[test]
    fn a_newer_servers_unknown_action_still_reads() {
        let json = r#"{"namespace":"a","revision":"r","summary":{"create":0,"update":0,"delete":0,"unchanged":0},
            "actions":[{"action":"migrate","name":"x","extra":1}],"unchanged":[],"new_field":true}"#;
        let plan: PlanView = serde_json::from_str(json).unwrap();
        assert_eq!(plan.actions, vec![ActionView::Unknown]);
        assert!(render_text(&plan, false).contains("cannot show"));
    }
}
