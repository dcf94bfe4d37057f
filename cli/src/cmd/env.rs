//! `micro env`: which platform the CLI talks to.

use crate::context::Target;
use crate::home::{BUILTIN_ENV, Env, Home};
use anyhow::{Result, bail};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    #[command(subcommand)]
    pub action: Option<EnvAction>,
    /// How to list the environments
    #[arg(long, short, value_enum, default_value_t)]
    pub output: super::Output,
}

#[derive(clap::Subcommand, Debug)]
pub enum EnvAction {
    /// Make NAME the current environment
    Set {
        /// The environment
        name: String,
    },
    /// Add an environment NAME at URL
    Add {
        /// A name for it
        name: String,
        /// The platform's address, like https://micro.example.com
        url: String,
        /// Trust only this CA (PEM) for the platform's certificate: its own CA, made on
        /// its first start (`<data dir>/tls/ca.pem`) [default: the system's roots]
        #[arg(long)]
        ca_file: Option<std::path::PathBuf>,
    },
    /// Delete environment NAME
    Del {
        /// The environment
        name: String,
    },
}

pub fn run(_t: &Target, args: EnvArgs) -> Result<ExitCode> {
    let home = Home::locate()?;
    let mut envs = home.load_envs()?;
    match args.action {
        None => {
            let current = envs.current_name().to_owned();
            // Never the tokens: only where each environment points and who is logged in.
            let listed: Vec<serde_json::Value> = envs
                .all()
                .iter()
                .map(|(name, env)| {
                    serde_json::json!({
                        "name": name,
                        "url": env.url,
                        "current": *name == current,
                        "logged_in": env.token.is_some(),
                        "email": env.email,
                    })
                })
                .collect();
            if args.output.data(&listed)? {
                return Ok(ExitCode::SUCCESS);
            }
            for (name, env) in envs.all() {
                let mark = if name == current { "*" } else { " " };
                println!("{mark} {name:<12} {}", env.url);
            }
        }
        Some(EnvAction::Set { name }) => {
            if envs.get(&name).is_none() {
                bail!("no environment named {name:?}; see `micro env`");
            }
            envs.current = Some(name);
            home.save_envs(&envs)?;
        }
        Some(EnvAction::Add { name, url, ca_file }) => {
            if name == BUILTIN_ENV {
                bail!("{BUILTIN_ENV} is built in (this machine's platform); pick another name");
            }
            if envs.get(&name).is_some() {
                bail!("environment {name:?} already exists");
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("{url}: an environment URL starts with http:// or https://");
            }
            let ca = match ca_file {
                Some(path) => {
                    let pem = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
                    micro_pki::client_config(&pem)
                        .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
                    if url.starts_with("http://") {
                        bail!("--ca-file pins a CA for https: {url} is plain http");
                    }
                    Some(pem)
                }
                None => None,
            };
            envs.envs.insert(
                name,
                Env {
                    url,
                    ca,
                    ..Env::default()
                },
            );
            home.save_envs(&envs)?;
        }
        Some(EnvAction::Del { name }) => {
            // The built-in env holds the token `micro server` wrote for this machine:
            // deleting it would lock the user out of their own platform.
            if name == BUILTIN_ENV {
                bail!(
                    "{BUILTIN_ENV} is built in (this machine's platform) and cannot be deleted; `micro env set NAME` switches to another"
                );
            }
            if envs.envs.remove(&name).is_none() {
                bail!("no environment named {name:?}");
            }
            if envs.current.as_deref() == Some(&name) {
                envs.current = None;
                eprintln!("deleted the current environment; now using {BUILTIN_ENV}");
            }
            home.save_envs(&envs)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
