//! `micro run DIR` and `micro update NAME`: commit a local folder into
//! `services/<name>/` of the namespace's repo and push it.

use super::{source, wait};
use crate::context::{Context, Target};
use crate::home::Deployed;
use anyhow::{Result, anyhow, bail};
use micro_tenant::change::{Change, Edit, Expect, Pushed};
use micro_tenant::spec::{self, SpecError};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A local folder holding service.yaml and its code; a git URL[@REF] (https, http,
    /// file; REF a branch, tag or commit); or a short name resolved against the platform's
    /// source base. A local folder of that name wins.
    pub source: String,
    /// The service name [default: the folder's or repo's name]
    #[arg(long)]
    pub name: Option<String>,
    /// The service's folder inside a git source
    #[arg(long)]
    pub path: Option<String>,
    #[command(flatten)]
    pub how: DeployFlags,
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The service to update (or the folder it was run from)
    #[arg(add = crate::complete::services())]
    pub name: String,
    #[command(flatten)]
    pub how: DeployFlags,
}

/// How `run` and `update` deploy.
#[derive(clap::Args, Clone, Debug)]
pub struct DeployFlags {
    /// Wait until the new version runs (or fails), showing progress
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Overwrite the service even if it was changed in the repo (a `git push`, another
    /// machine) since this folder was last deployed
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub to: super::BranchFlag,
}

impl RunArgs {
    /// `micro run DIR`, as against a git URL or short name (see [`source::run_git`]).
    pub fn is_folder(&self) -> bool {
        Path::new(&self.source).is_dir()
    }
}

/// `micro run DIR`: names the service after the folder unless `--name` says otherwise.
pub async fn run(t: &Target, args: RunArgs) -> Result<ExitCode> {
    let dir = Path::new(&args.source)
        .canonicalize()
        .map_err(|e| anyhow!("cannot resolve {}: {e}", args.source))?;
    let name = match args.name {
        Some(n) => n,
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("cannot name a service after {}: pass --name", dir.display()))?,
    };
    deploy(t, &dir, &name, &args.how).await
}

pub async fn update(t: &Target, args: UpdateArgs) -> Result<ExitCode> {
    let as_dir = Path::new(&args.name);
    if as_dir.is_dir() && as_dir.join("service.yaml").exists() {
        let dir = as_dir.canonicalize()?;
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("cannot name a service after {}", dir.display()))?;
        return deploy(t, &dir, &name, &args.how).await;
    }
    let ctx = t.resolve_writing().await?;
    // A service with a `source` follows its track; one from a folder re-reads the folder.
    let current = tokio::task::block_in_place(|| -> Result<Option<Vec<u8>>> {
        let repo = ctx.tenant_repo()?;
        let head = repo.fetch().map_err(|e| ctx.said(e))?;
        repo.read(head, &format!("services/{}/service.yaml", args.name))
            .map_err(|e| ctx.said(e))
    })?;
    let Some(current) = current else {
        bail!(
            "service {} not found in namespace {}",
            args.name,
            ctx.namespace
        );
    };
    if let Ok(parsed) = spec::parse_service(&args.name, &current)
        && let Some(src) = &parsed.source
    {
        return source::update(&ctx, &args.name, src, args.how.wait, args.how.timeout).await;
    }
    let dir = ctx
        .home
        .source_of(&source_key(&ctx, &args.name))?
        .ok_or_else(|| {
            anyhow!(
                "service {} was not run from a folder on this machine: edit it in `micro clone` and push, or `micro run DIR`",
                args.name
            )
        })?
        .dir;
    if !dir.is_dir() {
        bail!(
            "{} (where {} was run from) no longer exists",
            dir.display(),
            args.name
        );
    }
    deploy(t, &dir, &args.name, &args.how).await
}

fn source_key(ctx: &Context, name: &str) -> String {
    format!("{}/{}/{}", ctx.env_name, ctx.namespace, name)
}

/// Validates the folder's spec locally, then commits and pushes it, unless the service
/// in the repo changed since this folder last deployed it (work that would be lost).
async fn deploy(t: &Target, dir: &Path, name: &str, how: &DeployFlags) -> Result<ExitCode> {
    let (wait_for, timeout, force) = (how.wait, how.timeout, how.force);
    spec::check_service_name(name).map_err(anyhow::Error::msg)?;
    let spec_path = dir.join("service.yaml");
    let bytes = std::fs::read(&spec_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "{}: missing (every service needs one; see `micro new`)",
                spec_path.display()
            )
        } else {
            anyhow!("{}: {e}", spec_path.display())
        }
    })?;
    // The same validator the server runs, with the error pointing at the local file.
    spec::parse_service(name, &bytes).map_err(|e| {
        anyhow::Error::msg(SpecError {
            file: spec_path.display().to_string(),
            ..e
        })
    })?;
    let ctx = t.resolve_writing().await?;
    if force {
        let shown = tokio::task::block_in_place(|| overwritten(&ctx, name, &bytes))?;
        if !shown.is_empty() {
            eprintln!("--force overwrites what the repo holds for {name}:");
            for line in &shown {
                eprintln!("  {line}");
            }
            if !confirmed()? {
                bail!("nothing changed: {name} was not updated");
            }
        }
    }
    let key = source_key(&ctx, name);
    // What this folder put there last time; another folder's deploy does not count.
    let known = ctx
        .home
        .source_of(&key)?
        .filter(|d| d.dir == dir)
        .and_then(|d| d.tree.zip(d.commit));
    let path = micro_tenant::layout::service_dir(name);
    let (pushed, tree) = tokio::task::block_in_place(|| -> Result<(Pushed, String)> {
        let repo = ctx.tenant_repo()?;
        // The folder's files are read once, whatever the attempts.
        let tree = repo.write_folder(dir).map_err(|e| ctx.said(e))?;
        let expect = match (force, known.clone()) {
            (false, Some((tree, since))) => vec![Expect::Unchanged {
                path: path.clone(),
                tree,
                since,
            }],
            _ => Vec::new(),
        };
        // Replicas are a runtime setting (`micro scale`, as `heroku ps:scale`): a folder
        // that does not set them keeps the repo's. Read before the folder replaces it.
        let spec_file = format!("{path}/service.yaml");
        let kept = std::cell::Cell::new(None::<u32>);
        let replicas_of = |bytes: &[u8]| {
            spec::parse_service(name, bytes)
                .ok()
                .and_then(|s| s.replicas.map(|r| r.value))
        };
        // The folder's own `replicas` count only when it changed them since it last
        // deployed (a skeleton's `replicas: 1` does not undo a scale).
        let before = known
            .as_ref()
            .and_then(|(tree, _)| repo.read_in_tree(tree, "service.yaml"));
        let folder_sets_replicas = match (replicas_of(&bytes), before) {
            (None, _) => false,
            (Some(now), Some(before)) => replicas_of(&before) != Some(now),
            (Some(_), None) => true,
        };
        let change = Change {
            message: format!("Run {name}"),
            edits: vec![
                Edit::Rewrite {
                    path: spec_file.clone(),
                    with: Box::new(|now, _| {
                        kept.set(now.and_then(replicas_of));
                        Ok(now.map(<[u8]>::to_vec).unwrap_or_default())
                    }),
                },
                Edit::Tree { path, tree },
                Edit::Rewrite {
                    path: spec_file,
                    with: Box::new(|folder, _| {
                        let folder = folder.unwrap_or_default();
                        Ok(match (folder_sets_replicas, kept.get()) {
                            (false, Some(n)) => {
                                super::scale::with_replicas(&String::from_utf8_lossy(folder), n)
                                    .into_bytes()
                            }
                            _ => folder.to_vec(),
                        })
                    }),
                },
            ],
            expect,
        };
        let pushed = repo.apply(&change).map_err(|e| ctx.said(e))?;
        Ok((pushed, tree.to_string()))
    })?;
    let commit = match &pushed {
        Pushed::Committed(id) | Pushed::Unchanged(id) => id.to_string(),
    };
    ctx.home.remember_source(
        &key,
        Deployed {
            dir: dir.to_owned(),
            tree: Some(tree),
            commit: Some(commit),
        },
    )?;
    wait::after_push(
        &ctx,
        name,
        pushed,
        "committed and pushed",
        wait_for,
        timeout,
    )
    .await
}

/// The fields of `name`'s spec in the repo that the folder's spec (`folder`) would
/// change, one line each (`env.GREETING: "hi" → "hello"`); its `replicas` are kept, so
/// not among them.
fn overwritten(ctx: &Context, name: &str, folder: &[u8]) -> Result<Vec<String>> {
    let repo = ctx.tenant_repo()?;
    let head = repo.fetch().map_err(|e| ctx.said(e))?;
    let path = format!("{}/service.yaml", micro_tenant::layout::service_dir(name));
    let Some(now) = repo.read(head, &path).map_err(|e| ctx.said(e))? else {
        return Ok(Vec::new());
    };
    let fields = |bytes: &[u8]| -> BTreeMap<String, String> {
        let value: serde_json::Value =
            serde_saphyr::from_slice(bytes).unwrap_or(serde_json::Value::Null);
        let mut out = BTreeMap::new();
        flatten("", &value, &mut out);
        out.remove("replicas");
        out
    };
    let (before, after) = (fields(&now), fields(folder));
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    Ok(keys
        .into_iter()
        .filter_map(|k| match (before.get(k), after.get(k)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!("{k}: {a} → {b}")),
            (Some(a), None) => Some(format!("- {k}: {a}")),
            (None, Some(b)) => Some(format!("+ {k}: {b}")),
            (None, None) => None,
        })
        .collect())
}

/// `value`'s leaves by dotted path (`env.GREETING`), each as JSON.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        other if !prefix.is_empty() => {
            out.insert(prefix.to_owned(), other.to_string());
        }
        _ => {}
    }
}

/// On a terminal, whether the user says yes; elsewhere (a script asked for `--force`),
/// yes.
fn confirmed() -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("Overwrite? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
