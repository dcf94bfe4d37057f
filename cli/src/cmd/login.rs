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
    /// Your password [prompted, without echo, when missing]; prefer --password-stdin,
    /// which keeps it out of shell history and the process list
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input (scripts, CI)
    #[arg(long)]
    pub password_stdin: bool,
}

/// Reads a line: from the terminal (echoing only if `echo`), else from standard input.
/// Without a terminal and without input, the error names `flag`, the way to pass it.
pub fn ask(prompt: &str, echo: bool, flag: &str) -> Result<String> {
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
        let what = prompt.trim().trim_end_matches(':');
        if std::io::stdin().is_terminal() {
            bail!("{what} is required");
        }
        bail!("{what} is required and there is no terminal to ask on: pass {flag}");
    }
    Ok(line)
}

/// `--password-stdin`: the first line of standard input.
pub fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("--password-stdin: standard input had no password");
    }
    Ok(line)
}

pub async fn login(t: &Target, args: LoginArgs) -> Result<ExitCode> {
    let (home, env_name, mut env) = t.env_only()?;
    let email = match args.email {
        Some(e) => e,
        None => ask("Email: ", true, "--email EMAIL")?,
    };
    let password = match args.password {
        Some(p) => p,
        None if args.password_stdin => password_from_stdin()?,
        None => ask(
            "Password: ",
            false,
            "--password-stdin (and the password on standard input)",
        )?,
    };
    let client = crate::tls::client(&env, None)?;
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
    let client = crate::tls::client(&env, Some(token))?;
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
