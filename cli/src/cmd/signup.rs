//! `micro signup`: an account of your own with a namespace, from an email, a password
//! and the code mailed to that address. Interactive, or in two non-interactive steps:
//! `--email E --password-stdin` (sends the code), then `--email E --code CODE`.

use super::login::{ask, password_from_stdin};
use crate::context::Target;
use anyhow::{Result, bail};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct SignupArgs {
    /// Your email: your login, and where the code goes [prompted when missing]
    #[arg(long)]
    pub email: Option<String>,
    /// Read the password from the first line of standard input, send the code and exit
    #[arg(long, conflicts_with = "code")]
    pub password_stdin: bool,
    /// The code from the mail: finish a sign-up started with --password-stdin
    #[arg(long)]
    pub code: Option<String>,
}

pub async fn run(t: &Target, args: SignupArgs) -> Result<ExitCode> {
    let (home, env_name, mut env) = t.env_only()?;
    let client = micro_api::client::Client::new(&env.url, None);
    let email = match args.email {
        Some(e) => e,
        None => ask("Email: ", true, "--email EMAIL")?,
    };
    let code = match args.code {
        Some(code) => code,
        None => {
            let password = if args.password_stdin {
                password_from_stdin()?
            } else {
                let first = ask(
                    "Password (8 characters or more): ",
                    false,
                    "--password-stdin",
                )?;
                let again = ask("Password again: ", false, "--password-stdin")?;
                if first != again {
                    bail!("the two passwords differ; nothing was sent");
                }
                first
            };
            let said = client.signup(&email, &password).await?;
            eprintln!("{said}");
            if args.password_stdin {
                eprintln!("then: micro signup --email {email} --code CODE");
                return Ok(ExitCode::SUCCESS);
            }
            ask("Code from the mail: ", true, "--code CODE")?
        }
    };
    let done = client.signup_verify(&email, &code).await?;
    env.token = Some(done.token);
    env.email = Some(done.email.clone());
    env.namespace = Some(done.namespace.clone());
    let mut envs = home.load_envs()?;
    envs.envs.insert(env_name.clone(), env);
    home.save_envs(&envs)?;
    eprintln!(
        "Welcome: {} is yours, and this CLI is logged in to {env_name} as {}.",
        done.namespace, done.email
    );
    eprintln!("Next: `micro new hello && micro run ./hello --wait`");
    Ok(ExitCode::SUCCESS)
}
