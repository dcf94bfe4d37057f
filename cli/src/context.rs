//! Which platform, token and namespace a command acts on.

use crate::home::{Env, Home};
use anyhow::{Result, anyhow};
use micro_api::client::Client;

pub struct Context {
    pub home: Home,
    pub env_name: String,
    pub env: Env,
    pub client: Client,
    pub namespace: String,
    /// `--branch`: where a write verb pushes instead of the namespace's branch.
    pub branch: Option<String>,
    /// The repo on a forge the namespace follows, when it is linked (resolved only for
    /// commands that write: see [`Target::resolve_writing`]).
    pub link: Option<micro_api::types::LinkView>,
}

/// Flags every command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The environment (platform) to talk to [default: the current one]
    #[arg(long, global = true, env = "MICRO_ENV")]
    pub env: Option<String>,
    /// The namespace to act on [default: your account's own]
    #[arg(long, global = true, env = "MICRO_NAMESPACE")]
    pub namespace: Option<String>,
}

impl Target {
    pub fn env_only(&self) -> Result<(Home, String, Env)> {
        let home = Home::locate()?;
        let envs = home.load_envs()?;
        let name = self
            .env
            .clone()
            .unwrap_or_else(|| envs.current_name().to_owned());
        let env = envs
            .get(&name)
            .ok_or_else(|| anyhow!("no environment named {name:?}; see `micro env`"))?;
        Ok((home, name, env))
    }

    /// Resolves env, token and namespace, asking the platform only when it must.
    pub async fn resolve(&self) -> Result<Context> {
        let (home, env_name, env) = self.env_only()?;
        let token = env.token.clone().ok_or_else(|| {
            if env_name == crate::home::BUILTIN_ENV {
                anyhow!(
                    "not logged in to {env_name} ({}): start `micro server` on this machine (it logs this CLI in), or run `micro login`",
                    env.url
                )
            } else {
                anyhow!("not logged in to {env_name} ({}): run `micro login`", env.url)
            }
        })?;
        let client = crate::tls::client(&env, Some(token))?;
        let namespace = match (&self.namespace, &env.namespace) {
            (Some(ns), _) => ns.clone(),
            (None, Some(ns)) => ns.clone(),
            (None, None) => client.whoami().await?.namespace.ok_or_else(|| {
                anyhow!("your account has no namespace of its own: pass --namespace")
            })?,
        };
        Ok(Context {
            home,
            env_name,
            env,
            client,
            namespace,
            branch: None,
            link: None,
        })
    }

    /// [`Target::resolve`] for a command that commits: also where commits go (the
    /// platform, or the forge repo a linked namespace follows).
    pub async fn resolve_writing(&self, branch: Option<&str>) -> Result<Context> {
        let mut ctx = self.resolve().await?;
        ctx.branch = branch.map(str::to_owned);
        if let Some(branch) = &ctx.branch
            && !git2::Reference::is_valid_name(&format!("refs/heads/{branch}"))
        {
            return Err(anyhow!("--branch {branch:?}: not a branch name"));
        }
        ctx.link = ctx.client.link_of(&ctx.namespace).await?;
        Ok(ctx)
    }
}
