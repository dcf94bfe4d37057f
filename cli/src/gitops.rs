//! The CLI's side of changing a tenant repo: which remote and credentials (from the
//! environment), and errors in the CLI's words. The change itself is `micro-tenant`'s.

use crate::context::Context;
use anyhow::{Result, anyhow};
use git2::{Oid, Repository, Tree};
use micro_tenant::change::{ChangeError, Remote, RemoteRepo};

pub use micro_tenant::change::{Pushed, has_service, last_change, spec_only_tree};

/// [`micro_tenant::change::set_path`] for edits that speak `anyhow`.
pub fn set_path(
    repo: &Repository,
    tree: Option<&Tree<'_>>,
    path: &[&str],
    value: Option<(Oid, i32)>,
) -> Result<Oid> {
    Ok(micro_tenant::change::set_path(repo, tree, path, value)?)
}

pub struct TenantRepo<'a> {
    ctx: &'a Context,
    inner: RemoteRepo,
}

/// The namespace's repo on the platform, with this environment's token.
pub fn remote(ctx: &Context) -> Remote {
    let mut remote = Remote::platform(
        ctx.client.git_url(&ctx.namespace),
        ctx.env.token.clone(),
        email(ctx),
    );
    remote.cert_check = crate::tls::cert_check(&ctx.env);
    remote
}

fn email(ctx: &Context) -> String {
    ctx.env
        .email
        .clone()
        .unwrap_or_else(|| "micro@localhost".into())
}

/// Where a write verb commits: the forge repo of a linked namespace (with the user's own
/// git and credentials), else the platform; to `--branch` when given.
pub fn writable(ctx: &Context) -> Remote {
    let mut remote = match &ctx.link {
        Some(link) => Remote {
            url: link.url.clone(),
            token: None,
            email: email(ctx),
            base: link.branch.clone(),
            target: link.branch.clone(),
            user_git: true,
            cert_check: None,
        },
        None => remote(ctx),
    };
    if let Some(branch) = &ctx.branch {
        remote.target.clone_from(branch);
    }
    remote
}

/// Where a commit went, as the user reads it; `None` for the branch the namespace runs.
pub fn elsewhere(ctx: &Context) -> Option<String> {
    let remote = writable(ctx);
    if remote.target == remote.base {
        return None;
    }
    Some(match &ctx.link {
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

impl<'a> TenantRepo<'a> {
    pub fn open(ctx: &'a Context) -> Result<Self> {
        let remote = writable(ctx);
        let path = ctx.home.push_cache(&ctx.env_name, &ctx.namespace);
        let inner = RemoteRepo::open(&path, remote).map_err(|e| said(ctx, e))?;
        Ok(TenantRepo { ctx, inner })
    }

    /// Fetches the namespace's branch and returns its head.
    pub fn fetch(&self) -> Result<Oid> {
        self.inner.fetch().map_err(|e| said(self.ctx, e))
    }

    /// The bytes of `path` at `commit`, if it is a file there.
    pub fn read(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read(commit, path).map_err(|e| said(self.ctx, e))
    }

    /// Applies `edit` to the head tree, commits and pushes, retrying on a moved head.
    pub fn change(
        &self,
        message: &str,
        edit: impl Fn(&Repository, &Tree<'_>) -> Result<Oid>,
    ) -> Result<Pushed> {
        self.inner
            .change(message, |r, t| edit(r, t).map_err(Into::into))
            .map_err(|e| said(self.ctx, e))
    }
}

/// A change's failure as the CLI tells it: which namespace, platform or environment.
fn said(ctx: &Context, e: ChangeError) -> anyhow::Error {
    match e {
        ChangeError::Edit(e) => anyhow!(e),
        ChangeError::NotFound => anyhow!("namespace {} not found", ctx.namespace),
        ChangeError::Unreachable => anyhow!(
            "cannot reach the platform at {}: is `micro server` running?",
            ctx.env.url
        ),
        ChangeError::Unauthorized => anyhow!(
            "not logged in to {}: the token is missing or no longer valid; run `micro login`",
            ctx.env_name
        ),
        other => anyhow!(other),
    }
}
