//! A git credential helper: hands git the token of a micro env, so a `micro clone`
//! checkout can push without the token ever being written into its config.

use crate::context::Target;
use std::io::Read;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CredentialArgs {
    /// get, store or erase (git's protocol)
    pub action: String,
}

pub fn run(t: &Target, args: &CredentialArgs) -> anyhow::Result<ExitCode> {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    if args.action != "get" {
        return Ok(ExitCode::SUCCESS); // we never store what git hands back
    }
    let (_, _, env) = t.env_only()?;
    if let Some(token) = env.token {
        println!("username=micro\npassword={token}");
    }
    Ok(ExitCode::SUCCESS)
}
