//! `micro keys create|list|revoke`: the namespace's API keys, for its services with
//! `auth: key` (callers send `Authorization: Bearer KEY` to the public edge).

use super::{Output, ago, rfc3339};
use crate::context::Target;
use anyhow::Result;
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub what: KeysWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysWhat {
    /// Make a key and print it (the only time it is shown)
    Create {
        /// Its name (lowercase letters, digits, '-')
        name: String,
        /// How to print it: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// The keys by name (never the keys themselves)
    List {
        /// How to print them: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Revoke a key: refused from the next request on
    Revoke {
        /// Its name
        name: String,
    },
}

#[derive(Serialize)]
struct Listed {
    name: String,
    /// RFC 3339.
    created: String,
}

pub async fn run(t: &Target, args: KeysArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    match args.what {
        KeysWhat::Create { name, output } => {
            let made = ctx.client.create_key(&ctx.namespace, &name).await?;
            if !output.data(&made)? {
                println!("{}", made.key);
                eprintln!(
                    "key {} of {}: keep it now, it is not shown again; callers send `Authorization: Bearer <key>` to services with `auth: key`",
                    made.name, ctx.namespace
                );
            }
        }
        KeysWhat::List { output } => {
            let keys = ctx.client.keys(&ctx.namespace).await?;
            let listed: Vec<Listed> = keys
                .iter()
                .map(|k| Listed {
                    name: k.name.clone(),
                    created: rfc3339(k.created_at),
                })
                .collect();
            if !output.data(&listed)? {
                let now = micro_store::now_millis();
                println!("{:<32} CREATED", "NAME");
                for k in keys {
                    println!("{:<32} {}", k.name, ago(now - k.created_at));
                }
            }
        }
        KeysWhat::Revoke { name } => {
            ctx.client.revoke_key(&ctx.namespace, &name).await?;
            eprintln!("key {name} of {} revoked", ctx.namespace);
        }
    }
    Ok(ExitCode::SUCCESS)
}
