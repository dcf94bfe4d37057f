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
    Remote {
        url: ctx.client.git_url(&ctx.namespace),
        token: ctx.env.token.clone(),
        email: ctx
            .env
            .email
            .clone()
            .unwrap_or_else(|| "micro@localhost".into()),
    }
}

impl<'a> TenantRepo<'a> {
    pub fn open(ctx: &'a Context) -> Result<Self> {
        let remote = remote(ctx);
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
