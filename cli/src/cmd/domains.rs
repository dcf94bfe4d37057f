//! `micro domains add|list|remove`: custom domains for the namespace's public services.
//! A host is served once proven: the ACME CA reaches it over HTTP (its DNS points at
//! the platform), or a TXT record `_micro-challenge.<host>` holds the token `add`
//! prints; its certificate comes from the platform's ACME CA.

use super::{Output, ago};
use crate::context::Target;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DomainsArgs {
    #[command(subcommand)]
    pub what: DomainsWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum DomainsWhat {
    /// Claim HOST for a public service (one host belongs to one namespace)
    Add {
        /// The host, such as www.example.com
        host: String,
        /// The service it leads to (its spec must say `public: true`)
        #[arg(long)]
        service: String,
        /// How to print it: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// The namespace's domains, and why any is not live yet
    List {
        /// How to print them: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Give a domain up: it is no longer served, and its certificate is deleted
    Remove {
        /// The host
        host: String,
    },
}

pub async fn run(t: &Target, args: DomainsArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    match args.what {
        DomainsWhat::Add {
            host,
            service,
            output,
        } => {
            let added = ctx
                .client
                .add_domain(&ctx.namespace, &host, &service)
                .await?;
            if !output.data(&added)? {
                println!("{} → {} of {}", added.host, added.service, ctx.namespace);
                println!(
                    "prove it: point its DNS (A/AAAA, or a CNAME) at this platform, and the certificate follows;"
                );
                println!(
                    "or, before that, add a TXT record _micro-challenge.{} with {}",
                    added.host, added.token
                );
                println!("then: micro domains list");
            }
        }
        DomainsWhat::List { output } => {
            let domains = ctx.client.domains(&ctx.namespace).await?;
            if !output.data(&domains)? {
                let now = micro_store::now_millis();
                println!(
                    "{:<32} {:<20} {:<9} {:<12} WHY",
                    "HOST", "SERVICE", "STATE", "CLAIMED"
                );
                for d in domains {
                    let why = if d.message.is_empty() {
                        match d.state.as_str() {
                            "pending" => format!(
                                "not proven yet: DNS to this platform, or TXT _micro-challenge.{} = {}",
                                d.host, d.token
                            ),
                            _ => String::new(),
                        }
                    } else {
                        d.message.clone()
                    };
                    println!(
                        "{:<32} {:<20} {:<9} {:<12} {}",
                        d.host,
                        d.service,
                        d.state,
                        ago(now - d.created_at),
                        why
                    );
                }
            }
        }
        DomainsWhat::Remove { host } => {
            ctx.client.remove_domain(&ctx.namespace, &host).await?;
            eprintln!("domain {host} of {} removed", ctx.namespace);
        }
    }
    Ok(ExitCode::SUCCESS)
}
