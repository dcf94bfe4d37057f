//! Which platform, token and namespace a command acts on, and where its commits go.

use crate::home::{Env, Home};
use anyhow::{Result, anyhow};
use micro_api::client::Client;
use micro_tenant::change::{Change, ChangeError, Pushed, Remote, RemoteRepo};

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
    /// `--branch` of a command that commits, set by [`Target::writing_to`] before the
    /// command runs, so that where it writes is decided once.
    #[arg(skip)]
    pub branch: Option<String>,
}

impl Target {
    /// This target for a command that commits, to `--branch` when given.
    pub fn writing_to(&self, to: &crate::cmd::BranchFlag) -> Target {
        Target {
            branch: to.branch.clone(),
            ..self.clone()
        }
    }

    pub fn env_only(&self) -> Result<(Home, String, Env)> {
        let home = Home::locate()?;
        let envs = home.load_envs()?;
        let name = self
            .env
            .clone()
            .unwrap_or_else(|| envs.current_name().to_owned());
        let mut env = envs
            .get(&name)
            .ok_or_else(|| anyhow!("no environment named {name:?}; see `micro env`"))?;
        // The built-in `platform`: its CA pinned on first use, by the fingerprint this
        // CLI was built with.
        if env.ca.is_none()
            && let Some(fingerprint) = env.ca_fingerprint.clone()
        {
            let url = env.url.clone();
            let pinned = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(crate::cmd::env::trust_on_first_use(
                    &url,
                    Some(&fingerprint),
                ))
            })?;
            if pinned.is_some() {
                env.ca = pinned;
                let mut envs = envs;
                envs.envs.insert(name.clone(), env.clone());
                home.save_envs(&envs)?;
            }
        }
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
    pub async fn resolve_writing(&self) -> Result<Context> {
        let mut ctx = self.resolve().await?;
        ctx.branch.clone_from(&self.branch);
        ctx.link = ctx.client.link_of(&ctx.namespace).await?;
        Ok(ctx)
    }
}

impl Context {
    /// The namespace's repo on the platform, with this environment's token.
    pub fn platform_remote(&self) -> Remote {
        let mut remote = Remote::platform(
            self.client.git_url(&self.namespace),
            self.env.token.clone(),
            self.email(),
        );
        remote.cert_check = crate::tls::cert_check(&self.env);
        remote
    }

    fn email(&self) -> String {
        self.env
            .email
            .clone()
            .unwrap_or_else(|| "micro@localhost".into())
    }

    /// Where a write verb commits: the forge repo of a linked namespace (with the user's
    /// own git and credentials), else the platform; to `--branch` when given.
    fn writable(&self) -> Remote {
        let mut remote = match &self.link {
            Some(link) => Remote {
                url: link.url.clone(),
                token: None,
                email: self.email(),
                base: link.branch.clone(),
                target: link.branch.clone(),
                user_git: true,
                cert_check: None,
            },
            None => self.platform_remote(),
        };
        if let Some(branch) = &self.branch {
            remote.target.clone_from(branch);
        }
        remote
    }

    /// Where a commit went, as the user reads it; `None` for the branch the namespace
    /// runs.
    pub fn elsewhere(&self) -> Option<String> {
        let remote = self.writable();
        if remote.target == remote.base {
            return None;
        }
        Some(match &self.link {
            Some(link) => format!(
                "pushed to branch {} of {}: open a pull request from it; its preview appears there and in `micro previews`",
                remote.target, link.url
            ),
            None => format!(
                "pushed to branch {}: `micro diff {}` and `micro previews` show what it would change",
                remote.target, remote.target
            ),
        })
    }

    /// This environment's cache of the namespace's repo, where write verbs commit.
    pub fn tenant_repo(&self) -> Result<RemoteRepo> {
        let path = self.home.push_cache(&self.env_name, &self.namespace);
        RemoteRepo::open(&path, self.writable()).map_err(|e| self.said(e))
    }

    /// Commits and pushes `change` where this command writes, made again on a moved
    /// head (git is synchronous: call it on the blocking pool).
    pub fn commit(&self, change: &Change<'_>) -> Result<Pushed> {
        let mut repo = self.tenant_repo()?;
        // A commit on its way to a linked repo's forge is admitted by the platform first
        // (validation, quota), as a push to it would be: one that can never apply is not
        // committed there.
        if self.link.is_some() && self.branch.is_none() {
            let (remote, client, namespace) = (
                self.platform_remote(),
                self.client.clone(),
                self.namespace.clone(),
            );
            let runtime = tokio::runtime::Handle::current();
            repo = repo.with_check(Box::new(move |cache, commit| {
                let preview = format!(
                    "{}{:016x}",
                    micro_tenant::change::PREVIEW_REFS,
                    rand::random::<u64>()
                );
                micro_tenant::change::publish(cache, &remote, commit, &preview)?;
                let admitted = runtime.block_on(client.admit_ref(&namespace, &preview));
                let _ = micro_tenant::change::unpublish(cache, &remote, &preview);
                admitted.map_err(|e| match e {
                    micro_api::client::ClientError::Api { message, .. } => {
                        ChangeError::Rejected(message)
                    }
                    other => ChangeError::Rejected(other.to_string()),
                })
            }));
        }
        repo.apply(change).map_err(|e| self.said(e))
    }

    /// A change's failure as the CLI tells it: which namespace, platform or environment,
    /// and the way out.
    pub fn said(&self, e: ChangeError) -> anyhow::Error {
        match e {
            ChangeError::Edit(e) => anyhow!(e),
            ChangeError::NotFound => anyhow!("namespace {} not found", self.namespace),
            ChangeError::Unreachable => anyhow!(
                "cannot reach the platform at {}: is `micro server` running?",
                self.env.url
            ),
            ChangeError::Unauthorized => anyhow!(
                "not logged in to {}: the token is missing or no longer valid; run `micro login`",
                self.env_name
            ),
            ChangeError::ChangedSince { path, since, by } => {
                let name = path.strip_prefix("services/").unwrap_or(&path);
                let by = by.map_or_else(
                    || "a later commit".to_owned(),
                    |c| format!("{} {:?}", crate::cmd::short(&c.commit), c.subject),
                );
                anyhow!(
                    "{path} changed in {} since {} deployed it from this folder (by {by}): `micro update {name} --force` overwrites that change; or `micro clone`, pull, merge and push",
                    self.namespace,
                    crate::cmd::short(&since),
                )
            }
            other => anyhow!(other),
        }
    }
}
