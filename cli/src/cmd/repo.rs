//! `micro repo link/show/unlink`: the namespace follows a branch of a repo on GitHub,
//! Gitea (Forgejo) or GitLab instead of its platform-hosted repo.

use super::{Output, ago, rfc3339, short};
use crate::context::Target;
use anyhow::{Context as _, Result, bail};
use micro_api::types::{LinkRequest, LinkView};
use micro_tenant::forge::Forge;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct RepoArgs {
    #[command(subcommand)]
    pub command: RepoCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RepoCommand {
    /// Follow URL's branch instead of the platform-hosted repo; prints the webhook URL
    /// and secret to set on the forge (the secret is shown once)
    Link(LinkArgs),
    /// Where the namespace follows: URL, branch, forge, last fetch and last delivery
    Show {
        /// How to print it: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Stop following; the platform-hosted repo, at what was last fetched, takes pushes again
    Unlink,
}

#[derive(clap::Args, Debug)]
pub struct LinkArgs {
    /// The repo's https:// URL (http:// and file:// only where the platform allows)
    pub url: String,
    /// The branch whose head the namespace runs
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// github, gitea (also Forgejo) or gitlab [default: guessed from the URL]
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Forge::ALL.map(Forge::name)))]
    pub forge: Option<String>,
    /// The forge's REST API, for GitHub Enterprise or a self-hosted Gitea or GitLab
    /// [default: derived from the URL]
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// A file holding a forge token (for pull-request comments, commit statuses and
    /// fetching a private repo); stored like a secret, never shown again
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Push the namespace's repo to the branch first (it must not exist yet, or be
    /// empty), with your own git: how a namespace moves to a new forge repo
    #[arg(long)]
    pub seed: bool,
    /// How to print the result: text, json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// Before linking: the forge's branch must hold a namespace's repo (its `micro.yaml`),
/// or be empty and `--seed` given, when the namespace's repo is pushed there first.
/// Checked with the user's own git (their credentials for the forge).
fn check_or_seed(ctx: &crate::context::Context, args: &LinkArgs) -> Result<()> {
    use micro_tenant::user_git::{BranchHolds, branch_holds, push};
    let scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
    // What this machine's git cannot read (a private repo it has no credentials for, a
    // URL the platform will refuse anyway) is left to the platform, which refuses a
    // branch that is not a namespace's repo when it fetches it.
    let holds = match branch_holds(&scratch.path().join("probe.git"), &args.url, &args.branch) {
        Ok(holds) => holds,
        Err(e) if !args.seed => {
            tracing::debug!(error = %e, "the branch could not be read here");
            return Ok(());
        }
        Err(e) => bail!("cannot read {} to seed it ({e})", args.url),
    };
    match (holds, args.seed) {
        (BranchHolds::Namespace, false) => Ok(()),
        (BranchHolds::Namespace, true) => bail!(
            "--seed pushes to an empty branch only; {}'s branch {} holds a namespace's repo already: link it without --seed",
            args.url,
            args.branch
        ),
        (BranchHolds::Other, _) => bail!(
            "{}'s branch {} is not a namespace's repo (it has no micro.yaml at its top); nothing was linked. Link an empty branch with --seed, or push your namespace's repo there (`micro clone`, then `git push URL main:{}`)",
            args.url,
            args.branch,
            args.branch
        ),
        (BranchHolds::Nothing, false) => bail!(
            "{} has no branch {}: `micro repo link {} --seed` pushes your namespace's repo there first",
            args.url,
            args.branch,
            args.url
        ),
        (BranchHolds::Nothing, true) => {
            let repo = ctx.tenant_repo()?;
            let head = repo.fetch().map_err(|e| ctx.said(e))?;
            let refspec = format!("{head}:refs/heads/{}", args.branch);
            if let Some(why) = push(repo.git_dir(), &args.url, &refspec).map_err(|e| ctx.said(e))? {
                bail!("the forge refused the seed: {why}");
            }
            eprintln!(
                "seeded {} (branch {}) with {} at {}",
                args.url,
                args.branch,
                ctx.namespace,
                super::short(&head.to_string())
            );
            Ok(())
        }
    }
}

pub async fn run(t: &Target, args: RepoArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    match args.command {
        RepoCommand::Link(args) => {
            let token = match &args.token_file {
                Some(file) => Some(
                    std::fs::read_to_string(file)
                        .with_context(|| format!("cannot read {}", file.display()))?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            if token.as_deref() == Some("") {
                bail!("--token-file is empty");
            }
            tokio::task::block_in_place(|| check_or_seed(&ctx, &args))?;
            let request = LinkRequest {
                url: args.url,
                branch: Some(args.branch),
                forge: args.forge,
                api: args.api,
                token,
            };
            let created = ctx.client.link(&ctx.namespace, &request).await?;
            if args.output.data(&created)? {
                return Ok(ExitCode::SUCCESS);
            }
            let link = &created.link;
            println!(
                "{} now follows {} (branch {}).",
                link.namespace, link.url, link.branch
            );
            println!("Add a webhook on the forge ({}):", link.forge);
            println!("  URL:          {}", link.webhook_url);
            println!("  Secret:       {}", created.webhook_secret);
            println!("  Content type: application/json");
            println!("  Events:       pushes and pull (merge) requests");
            println!(
                "The secret is shown this once. Pushes now go to the forge, not the platform."
            );
        }
        RepoCommand::Show { output } => {
            let Some(link) = ctx.client.link_of(&ctx.namespace).await? else {
                if !output.data(&serde_json::Value::Null)? {
                    println!(
                        "{} is not linked: it runs the platform-hosted repo (`micro clone`)",
                        ctx.namespace
                    );
                }
                return Ok(ExitCode::SUCCESS);
            };
            if !output.data(&link)? {
                print_link(&link);
            }
        }
        RepoCommand::Unlink => {
            ctx.client.unlink(&ctx.namespace).await?;
            eprintln!(
                "{}: unlinked; the platform-hosted repo takes pushes again (`micro clone`)",
                ctx.namespace
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_link(link: &LinkView) {
    println!("URL:       {}", link.url);
    println!("Branch:    {}", link.branch);
    match link.api.as_str() {
        "" => println!(
            "Forge:     {} (no API: a local repo; --api names one)",
            link.forge
        ),
        api => println!("Forge:     {} ({api})", link.forge),
    }
    println!("Webhook:   {}", link.webhook_url);
    println!("Token:     {}", if link.has_token { "set" } else { "none" });
    let fetched = match (&link.fetched_revision, link.fetched_at) {
        (Some(rev), Some(at)) => format!("{} ({}, {})", short(rev), rfc3339(at), ago(now() - at)),
        _ => "not yet".into(),
    };
    println!("Fetched:   {fetched}");
    if let Some(error) = &link.fetch_error {
        println!("Error:     {error}");
    }
    match &link.last_delivery {
        Some(d) => println!(
            "Delivery:  {} → {} ({})",
            d.event,
            d.result,
            ago(now() - d.at)
        ),
        None => println!("Delivery:  none yet"),
    }
}

fn now() -> i64 {
    micro_store::now_millis()
}
