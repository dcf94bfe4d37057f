//! `micro login` and `micro logout`: email + password for a token kept in `$MICRO_HOME`.

use crate::context::Target;
use anyhow::{Context as _, Result, anyhow, bail};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Your account's email [prompted when missing]
    #[arg(long)]
    pub email: Option<String>,
    /// Your password [prompted, without echo, when missing]
    #[arg(long)]
    pub password: Option<String>,
}

/// Reads a line: from the terminal (echoing only if `echo`), else from standard input.
pub fn ask(prompt: &str, echo: bool) -> Result<String> {
    if std::io::stdin().is_terminal() {
        if !echo {
            return rpassword::prompt_password(prompt).context("cannot read the password");
        }
        eprint!("{prompt}");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("{} is required", prompt.trim().trim_end_matches(':'));
    }
    Ok(line)
}

pub async fn login(t: &Target, args: LoginArgs) -> Result<ExitCode> {
    let (home, env_name, mut env) = t.env_only()?;
    let email = match args.email {
        Some(e) => e,
        None => ask("Email: ", true)?,
    };
    let password = match args.password {
        Some(p) => p,
        None => ask("Password: ", false)?,
    };
    let client = micro_api::client::Client::new(&env.url, None);
    let reply = client.login(&email, &password).await?;
    env.token = Some(reply.token);
    env.email = Some(reply.email.clone());
    env.namespace = reply.namespace.clone();
    let mut envs = home.load_envs()?;
    envs.envs.insert(env_name.clone(), env);
    home.save_envs(&envs)?;
    eprintln!(
        "Logged in to {env_name} as {} (namespace {})",
        reply.email,
        reply.namespace.as_deref().unwrap_or("-")
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(t: &Target) -> Result<ExitCode> {
    let (home, env_name, mut env) = t.env_only()?;
    let token = env
        .token
        .take()
        .ok_or_else(|| anyhow!("not logged in to {env_name}"))?;
    let client = micro_api::client::Client::new(&env.url, Some(token));
    // Revoke on the platform; forget locally even if it cannot be reached.
    if let Err(e) = client.logout().await {
        eprintln!("warning: the token could not be revoked on the platform: {e}");
    }
    env.email = None;
    env.namespace = None;
    let mut envs = home.load_envs()?;
    envs.envs.insert(env_name.clone(), env);
    home.save_envs(&envs)?;
    eprintln!("Logged out of {env_name}");
    Ok(ExitCode::SUCCESS)
}
