//! `micro config set/get/del/list`: values go to the store (versioned, behind the
//! namespace's ACL), the version in use goes into `config.yaml` as a commit.

use super::{Output, short};
use crate::context::{Context, Target};
use anyhow::{Context as _, Result, anyhow, bail};
use micro_tenant::change::{Change, Edit, Head, Pushed};
use micro_tenant::repo::CONFIG_FILE;
use micro_tenant::spec::{self, ConfigEntry, ConfigSpec};
use std::process::ExitCode;

/// Largest value `micro config set` accepts, as JSON text (the server enforces it too).
const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum ConfigAction {
    /// Store VALUE (JSON if it parses, else a string) as a new version of KEY
    Set {
        /// The config key (1-253 of A-Za-z0-9 . _ -)
        key: String,
        /// The value; leave it out with --stdin (so it stays out of shell history)
        value: Option<String>,
        /// Read the value from standard input (one trailing newline is dropped)
        #[arg(long)]
        stdin: bool,
        /// Mask it on read
        #[arg(long)]
        secret: bool,
        #[command(flatten)]
        to: super::BranchFlag,
    },
    /// Print KEY's value at the version config.yaml names
    Get {
        /// The config key
        /// The config key
        key: String,
        /// Print a secret's value instead of [secret]
        #[arg(long)]
        secret: bool,
        /// Another stored version
        #[arg(long)]
        version: Option<u64>,
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove KEY from config.yaml (stored versions stay, for reverts)
    Del {
        /// The config key
        key: String,
        #[command(flatten)]
        to: super::BranchFlag,
    },
    /// Keys, versions and whether each is secret (never values)
    List {
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
}

fn check_key(key: &str) -> Result<()> {
    if spec::is_config_key(key) {
        Ok(())
    } else {
        bail!("config key {key:?} must be 1-253 of [A-Za-z0-9._-]")
    }
}

pub async fn run(t: &Target, args: ConfigArgs) -> Result<ExitCode> {
    let ctx = match &args.action {
        ConfigAction::Set { to, .. } | ConfigAction::Del { to, .. } => {
            t.writing_to(to).resolve_writing().await?
        }
        _ => t.resolve().await?,
    };
    match args.action {
        ConfigAction::Set {
            key,
            value,
            stdin,
            secret,
            ..
        } => {
            let value = match (value, stdin) {
                (Some(_), true) => bail!("give the value or --stdin, not both"),
                (None, false) => {
                    bail!(
                        "no value: give it after the key, or --stdin to read it from standard input"
                    )
                }
                (Some(v), false) => v,
                (None, true) => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .context("cannot read the value from standard input")?;
                    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
                    trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
                }
            };
            set(&ctx, &key, &value, secret).await
        }
        ConfigAction::Get {
            key,
            secret,
            version,
            output,
        } => {
            check_key(&key)?;
            let info = ctx
                .client
                .get_config(&ctx.namespace, &key, version, secret)
                .await?;
            if !output.data(&info)? {
                match info.value {
                    Some(serde_json::Value::String(s)) => println!("{s}"),
                    Some(v) => println!("{v}"),
                    None => println!("[secret]"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigAction::Del { key, .. } => {
            check_key(&key)?;
            let pushed = edit(&ctx, &format!("Config: remove {key}"), |config, head| {
                if let Some(user) = listed_by(head, &key) {
                    bail!(
                        "config key {key} is listed by services/{user}/service.yaml (`config:`): remove it there first"
                    );
                }
                if config.remove(&key).is_none() {
                    bail!("config key {key} not found in namespace {}", ctx.namespace);
                }
                Ok(())
            })?;
            report(&ctx, &key, "removed", pushed).await;
            Ok(ExitCode::SUCCESS)
        }
        ConfigAction::List { output } => {
            let list = ctx.client.list_config(&ctx.namespace).await?;
            if !output.data(&list)? {
                {
                    println!("{:<40} {:>7}  SECRET", "KEY", "VERSION");
                    for e in list {
                        println!(
                            "{:<40} {:>7}  {}",
                            e.key,
                            e.version,
                            if e.secret { "yes" } else { "no" }
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn set(ctx: &Context, key: &str, raw: &str, secret: bool) -> Result<ExitCode> {
    check_key(key)?;
    let value = serde_json::from_str::<serde_json::Value>(raw)
        .unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
    let size = value.to_string().len();
    if size > MAX_VALUE_BYTES {
        bail!("config value is {size} bytes; the limit is {MAX_VALUE_BYTES}");
    }
    let version = ctx
        .client
        .set_config(&ctx.namespace, key, value, secret)
        .await?;
    // Another `set` may land first: the commit is redone on the new head. Versions are
    // handed out in order, so a head already at a newer version of the key keeps it: a
    // slower writer never takes the key back below what another was told is in effect.
    let pushed = edit(
        ctx,
        &format!("Config: {key} to version {version}"),
        |config, _| {
            if config
                .get(key)
                .is_none_or(|at_head| at_head.version < version)
            {
                config.insert(key.to_owned(), ConfigEntry { version, secret });
            }
            Ok(())
        },
    )?;
    let newer = match &pushed {
        Pushed::Unchanged(head) => tokio::task::block_in_place(|| {
            let config = ctx
                .tenant_repo()?
                .read(*head, CONFIG_FILE)
                .map_err(|e| ctx.said(e))?;
            let config = config_of(config.as_deref())?;
            Ok::<_, anyhow::Error>(config.get(key).map(|e| e.version).filter(|v| *v > version))
        })?,
        Pushed::Committed(_) => None,
    };
    match newer {
        Some(v) => eprintln!(
            "{key}: stored as version {version}; version {v}, set after it, is already in effect"
        ),
        None => report(ctx, key, &format!("version {version}"), pushed).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn report(ctx: &Context, key: &str, what: &str, pushed: Pushed) {
    match pushed {
        Pushed::Committed(id) => {
            eprintln!("{key}: {what} ({})", short(&id.to_string()));
            super::wait::delivered(ctx, key).await;
        }
        Pushed::Unchanged(_) => eprintln!("{key}: {what} (no change)"),
    }
}

/// The first service at the head whose spec lists config `key`.
fn listed_by(head: &Head<'_>, key: &str) -> Option<String> {
    head.folders("services").into_iter().find(|name| {
        head.read(&format!("services/{name}/service.yaml"))
            .and_then(|bytes| spec::parse_service(name, &bytes).ok())
            .is_some_and(|parsed| parsed.config.iter().any(|k| k.value == key))
    })
}

/// `config.yaml` as its bytes say (none: no keys yet).
fn config_of(bytes: Option<&[u8]>) -> Result<ConfigSpec> {
    match bytes {
        Some(bytes) => Ok(spec::parse_yaml::<Option<ConfigSpec>>(CONFIG_FILE, bytes)
            .map_err(|e| anyhow!("{e}"))?
            .unwrap_or_default()),
        None => Ok(ConfigSpec::default()),
    }
}

/// Changes `config.yaml` at the head in one commit, made again on a moved head; `change`
/// also gets the head, to see which services list a key.
fn edit(
    ctx: &Context,
    message: &str,
    change: impl Fn(&mut ConfigSpec, &Head<'_>) -> Result<()>,
) -> Result<Pushed> {
    let rewrite = |bytes: Option<&[u8]>, head: &Head<'_>| {
        let mut config = config_of(bytes)?;
        change(&mut config, head)?;
        Ok(spec::write_config(&config).into_bytes())
    };
    let change = Change {
        message: message.to_owned(),
        edits: vec![Edit::Rewrite {
            path: CONFIG_FILE.to_owned(),
            with: Box::new(|bytes, head| rewrite(bytes, head).map_err(|e: anyhow::Error| e.into())),
        }],
        expect: Vec::new(),
    };
    tokio::task::block_in_place(|| ctx.commit(&change))
}
