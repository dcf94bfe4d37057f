//! Services whose code lives in another git repo: `micro run URL[@REF]`, short names,
//! and `micro update` following the branch or tag the service tracks.

use super::{short, wait};
use crate::cmd::run::RunArgs;
use crate::context::{Context, Target};
use anyhow::{Result, anyhow, bail};
use micro_tenant::change::{Change, Edit};
use micro_tenant::pin::{Pin, PinError, pin_spec};
use micro_tenant::sources::{self, Resolved, SourceCache};
use micro_tenant::spec::{self, SourceSpec};
use std::process::ExitCode;
use std::time::Duration;

/// What `micro run` was asked to run from git.
pub struct GitSource {
    pub url: String,
    pub reference: Option<String>,
    pub path: Option<String>,
}

/// `URL[@REF]`: the ref follows the last `@` after the URL's path starts.
pub fn split_ref(s: &str) -> (String, Option<String>) {
    match s.rsplit_once('@') {
        Some((url, r))
            if !r.is_empty()
                && !r.contains('/')
                && url.contains("://")
                && url.split("://").nth(1).is_some_and(|p| p.contains('/')) =>
        {
            (url.to_owned(), Some(r.to_owned()))
        }
        _ => (s.to_owned(), None),
    }
}

/// The service name a URL (and path) suggests: the last path part, without `.git`.
pub fn default_name(src: &GitSource) -> Option<String> {
    let from = src.path.as_deref().unwrap_or(&src.url);
    let last = from.trim_end_matches('/').rsplit('/').next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty()).then(|| name.to_owned())
}

fn cache(ctx: &Context) -> SourceCache {
    SourceCache::new(ctx.home.dir().join("sources"))
}

/// The source repo's `service.yaml` at the resolved commit, with the pin appended.
fn pinned_spec(ctx: &Context, name: &str, src: &GitSource, resolved: &Resolved) -> Result<Vec<u8>> {
    let at = format!("{}@{}", src.url, short(&resolved.commit.to_string()));
    let bytes = cache(ctx)
        .read_file(
            &src.url,
            resolved.commit,
            src.path.as_deref(),
            "service.yaml",
        )?
        .ok_or_else(|| {
            anyhow!(
                "{at}: no service.yaml in {}",
                src.path.as_deref().unwrap_or("the repo's top folder")
            )
        })?;
    let commit = resolved.commit.to_string();
    let pin = Pin {
        url: &src.url,
        commit: &commit,
        track: resolved.track.as_deref(),
        path: src.path.as_deref(),
    };
    // A spec that does not validate says so in its own words (file:line:col).
    pin_spec(name, &bytes, &pin).map_err(|e| match e {
        PinError::Invalid(e) => anyhow!("{at}: {e}"),
        other => anyhow!("{at}: {other}"),
    })
}

/// `micro run URL[@REF]`, or a short name for `<source base>/<name>`.
pub async fn run_git(t: &Target, args: RunArgs) -> Result<ExitCode> {
    let (what, reference) = split_ref(&args.source);
    let is_short = !what.contains("://") && !what.contains('/');
    let (short_name, reference) = match (is_short, reference) {
        (true, None) => match args.source.split_once('@') {
            Some((n, r)) => (n.to_owned(), Some(r.to_owned())),
            None => (what.clone(), None),
        },
        (_, r) => (what.clone(), r),
    };
    if !what.contains("://") && !is_short {
        bail!(
            "{}: no such folder (create one with `micro new NAME`)",
            args.source
        );
    }
    let ctx = t.resolve_writing().await?;
    let url = if is_short {
        if spec::check_service_name(&short_name).is_err() {
            bail!(
                "{}: no such folder (create one with `micro new NAME`)",
                args.source
            );
        }
        match ctx.client.source_base().await? {
            Some(base) => format!("{base}/{short_name}"),
            None => bail!(
                "{short_name}: no folder of that name here, and the platform has no source base for short names (start the server with MICRO_SOURCE_BASE)"
            ),
        }
    } else {
        what
    };
    let src = GitSource {
        url,
        reference,
        path: args.path,
    };
    run(&ctx, args.name, src, args.how.wait, args.how.timeout).await
}

/// Resolves, pins and commits a service from another repo.
pub async fn run(
    ctx: &Context,
    name: Option<String>,
    src: GitSource,
    wait_for: bool,
    timeout: u64,
) -> Result<ExitCode> {
    if !spec::is_source_url(&src.url) {
        bail!(
            "{}: only https://, http:// and file:// git URLs are supported",
            src.url
        );
    }
    if let Some(p) = &src.path
        && !spec::is_source_path(p)
    {
        bail!("--path {p:?} must be a folder inside the repo");
    }
    let name = match name.or_else(|| default_name(&src)) {
        Some(n) => n,
        None => bail!("cannot name a service after {}: pass --name", src.url),
    };
    spec::check_service_name(&name).map_err(|e| anyhow!("{e} (pass --name)"))?;
    let resolved =
        tokio::task::block_in_place(|| sources::resolve(&src.url, src.reference.as_deref()))?;
    let content = tokio::task::block_in_place(|| pinned_spec(ctx, &name, &src, &resolved))?;
    let message = format!(
        "Run {name} from {}@{}",
        src.url,
        short(&resolved.commit.to_string())
    );
    commit_spec(ctx, &name, &message, &content, wait_for, timeout).await
}

/// `micro update NAME` for a service with a `source`: resolve `track` again.
pub async fn update(
    ctx: &Context,
    name: &str,
    source: &SourceSpec,
    wait_for: bool,
    timeout: u64,
) -> Result<ExitCode> {
    let pinned = &source.reference.value;
    let Some(track) = &source.track else {
        bail!(
            "{name} is pinned to commit {}: run it again with {}@BRANCH or @TAG to follow one",
            short(pinned),
            source.git.value
        );
    };
    let src = GitSource {
        url: source.git.value.clone(),
        reference: Some(track.clone()),
        path: source.path.as_ref().map(|p| p.value.clone()),
    };
    let resolved = tokio::task::block_in_place(|| sources::resolve(&src.url, Some(track)))?;
    if resolved.commit.to_string() == *pinned {
        eprintln!("{name}: up to date at {} ({track})", short(pinned));
        if wait_for {
            let head = tokio::task::block_in_place(|| {
                ctx.tenant_repo()?.fetch().map_err(|e| ctx.said(e))
            })?;
            return wait::until_running(
                ctx,
                name,
                &head.to_string(),
                false,
                Duration::from_secs(timeout),
            )
            .await;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let content = tokio::task::block_in_place(|| pinned_spec(ctx, name, &src, &resolved))?;
    let message = format!(
        "Update {name} to {} ({track})",
        short(&resolved.commit.to_string())
    );
    commit_spec(ctx, name, &message, &content, wait_for, timeout).await
}

async fn commit_spec(
    ctx: &Context,
    name: &str,
    message: &str,
    content: &[u8],
    wait_for: bool,
    timeout: u64,
) -> Result<ExitCode> {
    let change = Change {
        message: message.to_owned(),
        edits: vec![Edit::SpecOnly {
            path: micro_tenant::layout::service_dir(name),
            spec: content.to_vec(),
        }],
        expect: Vec::new(),
    };
    let pushed = tokio::task::block_in_place(|| ctx.commit(&change))?;
    wait::after_push(ctx, name, pushed, message, wait_for, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_split_from_urls() {
        let f = |s: &str| split_ref(s);
        assert_eq!(
            f("https://h/acme/greeter@v1.4.0"),
            ("https://h/acme/greeter".into(), Some("v1.4.0".into()))
        );
        assert_eq!(
            f("https://h/acme/greeter"),
            ("https://h/acme/greeter".into(), None)
        );
        assert_eq!(
            f("https://user@h/acme/greeter"),
            ("https://user@h/acme/greeter".into(), None)
        );
        assert_eq!(
            f("file:///srv/g.git@main"),
            ("file:///srv/g.git".into(), Some("main".into()))
        );
    }

    #[test]
    fn names_come_from_the_path_or_the_url() {
        let src = |url: &str, path: Option<&str>| GitSource {
            url: url.into(),
            reference: None,
            path: path.map(Into::into),
        };
        assert_eq!(
            default_name(&src("https://h/acme/greeter.git", None)).as_deref(),
            Some("greeter")
        );
        assert_eq!(
            default_name(&src("https://h/acme/mono", Some("cmd/api"))).as_deref(),
            Some("api")
        );
    }
}
