//! `micro admin …` (admin-only) and `micro whoami`.

use super::Output;
use crate::context::Target;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub what: AdminWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum AdminWhat {
    /// Namespaces: create or list
    #[command(subcommand)]
    Namespace(NamespaceAction),
}

#[derive(clap::Subcommand, Debug)]
pub enum NamespaceAction {
    /// Create namespace NAME with its repo
    Create { name: String },
    /// List all namespaces
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
}

pub async fn run(t: &Target, args: AdminArgs) -> Result<ExitCode> {
    let (_, _, env) = t.env_only()?;
    let client = micro_api::client::Client::new(&env.url, env.token.clone());
    match args.what {
        AdminWhat::Namespace(NamespaceAction::Create { name }) => {
            client.create_namespace(&name).await?;
            eprintln!("namespace {name} created");
        }
        AdminWhat::Namespace(NamespaceAction::List { output }) => {
            let list = client.list_namespaces().await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                Output::Text => list.iter().for_each(|n| println!("{n}")),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(t: &Target) -> Result<ExitCode> {
    let (_, name, env) = t.env_only()?;
    let client = micro_api::client::Client::new(&env.url, env.token.clone());
    let me = client.whoami().await?;
    println!(
        "{} ({:?}) namespace {} on {name}",
        me.email,
        me.role,
        me.namespace.as_deref().unwrap_or("-")
    );
    Ok(ExitCode::SUCCESS)
}
