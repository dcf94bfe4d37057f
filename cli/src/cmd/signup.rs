//! `micro signup`: an account of your own with a namespace, from an email, a password
//! and the code mailed to that address. Interactive, or in two non-interactive steps:
//! `--email E --password-stdin` (sends the code), then `--email E --code CODE`. On a
//! paid platform the code is followed by Stripe Checkout: the URL is printed and the CLI
//! waits for the payment (or, with `--no-wait`, exits; `micro login` works once paid).

use super::login::{ask, password_from_stdin};
use crate::context::Target;
use anyhow::{Result, bail};
use micro_api::types::{SignupDone, SignupResult};
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
    /// Paid platforms: print where to pay and exit; `micro login` works once it is paid
    #[arg(long)]
    pub no_wait: bool,
    /// Paid platforms: how long to wait for the payment, in seconds
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

pub async fn run(t: &Target, args: SignupArgs) -> Result<ExitCode> {
    let (home, env_name, mut env) = t.env_only()?;
    let client = crate::tls::client(&env, None)?;
    // Nothing is asked of a platform that cannot be reached or takes no sign-ups.
    client.signup_open().await?;
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
    let done = match client.signup_verify(&email, &code).await? {
        SignupResult::Active(done) => done,
        SignupResult::Payment(pay) => {
            eprintln!("Your email is verified. Pay for the developer plan here:");
            println!("{}", pay.checkout_url);
            if args.no_wait {
                eprintln!("Once it is paid: micro login --email {email}");
                return Ok(ExitCode::SUCCESS);
            }
            match wait_for_payment(&client, &pay.claim, args.timeout).await? {
                Some(done) => done,
                None => {
                    eprintln!(
                        "\nThe payment is not confirmed yet. Once it is: micro login --email {email}"
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        SignupResult::Waiting => bail!("the platform answered out of turn; try again"),
    };
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

/// Polls until the payment is confirmed (the account's token) or `timeout` seconds pass,
/// showing that it is still waiting.
async fn wait_for_payment(
    client: &micro_api::client::Client,
    claim: &str,
    timeout: u64,
) -> Result<Option<SignupDone>> {
    use std::io::{IsTerminal, Write};
    let started = std::time::Instant::now();
    let terminal = std::io::stderr().is_terminal();
    eprint!("Waiting for the payment to be confirmed ");
    let mut polls = 0u64;
    loop {
        if let SignupResult::Active(done) = client.signup_claim(claim).await? {
            eprintln!(" confirmed.");
            return Ok(Some(done));
        }
        let waited = started.elapsed().as_secs();
        if waited >= timeout {
            return Ok(None);
        }
        polls += 1;
        if terminal {
            eprint!(
                "\rWaiting for the payment to be confirmed ({}m {:02}s; open the URL above) ",
                waited / 60,
                waited % 60
            );
        } else if polls.is_multiple_of(5) {
            // A log gets a dot every 10 s, not a line of them.
            eprint!(".");
        }
        let _ = std::io::stderr().flush();
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
