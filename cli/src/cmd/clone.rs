//! `micro clone [DIR]`: a plain git clone of the namespace's repo whose `git push` just
//! works: git asks `micro` for the token, so it is never written into the checkout.

use crate::context::Target;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

#[derive(clap::Args, Debug)]
pub struct CloneArgs {
    /// Where to clone [default: the namespace's name]
    pub dir: Option<PathBuf>,
}

/// Basic credentials on the first request (what the platform asks for anyway).
const PROACTIVE_AUTH: (&str, &str) = ("http.proactiveAuth", "basic");

/// `git -C DIR config ARGS`, or an error naming the clone.
fn git_config(dir: &std::path::Path, args: &[&str]) -> Result<()> {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .arg("config")
        .args(args)
        .status()?
        .success();
    if !ok {
        bail!("cannot configure {}", dir.display());
    }
    Ok(())
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub async fn run(t: &Target, args: CloneArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&ctx.namespace));
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let exe = std::env::current_exe().context("cannot find the micro binary")?;
    let home = ctx
        .home
        .dir()
        .canonicalize()
        .unwrap_or_else(|_| ctx.home.dir().to_owned());
    // git runs its helpers twice a push (`get`, then `store` on success); only `get` has
    // anything to do, so `store` and `erase` end in the shell without starting micro.
    let helper = format!(
        "!f() {{ test \"$1\" = get || exit 0; MICRO_HOME={} exec {} --env {} credential get; }}; f",
        sh_quote(&home.display().to_string()),
        sh_quote(&exe.display().to_string()),
        sh_quote(&ctx.env_name)
    );
    let url = ctx.client.git_url(&ctx.namespace);
    // git trusts the environment's pinned CA for this clone (and nothing else for it).
    let ca_file = ctx.home.ca_file(&ctx.env_name, ctx.env.ca.as_deref())?;
    let mut git = Command::new("git");
    if let Some(ca) = &ca_file {
        // The variable outranks any configuration, a global GIT_SSL_CAINFO included.
        git.arg("-c")
            .arg(format!("http.sslCAInfo={}", ca.display()))
            .env("GIT_SSL_CAINFO", ca);
    }
    let status = git
        .arg("-c")
        .arg(format!("{}={}", PROACTIVE_AUTH.0, PROACTIVE_AUTH.1))
        .args(["-c", "credential.helper=", "-c"])
        .arg(format!("credential.helper={helper}"))
        .args(["clone", "--quiet", &url])
        .arg(&dir)
        .status()
        .context("cannot run git: is it installed?")?;
    if !status.success() {
        bail!("git clone of {url} failed");
    }
    // The token goes with the first request, not after a 401: one round trip less per
    // fetch and push (git 2.46 and later; older ones ignore it).
    git_config(&dir, &[PROACTIVE_AUTH.0, PROACTIVE_AUTH.1])?;
    // An empty helper first resets any global helper, so no other one stores our token.
    for value in ["", helper.as_str()] {
        git_config(&dir, &["--add", "credential.helper", value])?;
    }
    if let Some(ca) = &ca_file {
        git_config(&dir, &["http.sslCAInfo", &ca.display().to_string()])?;
    }
    eprintln!(
        "Cloned {} into {}: edit, commit and `git push` to deploy",
        ctx.namespace,
        dir.display()
    );
    super::env::warn_git_ca(ca_file.as_deref());
    Ok(ExitCode::SUCCESS)
}
