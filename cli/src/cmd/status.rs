//! `micro status [NAME]`: what runs, as a table or JSON.

use super::{Output, ago, short};
use crate::context::Target;
use anyhow::{Result, bail};
use micro_store::{ServiceStatus, now_millis};
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Only this service
    pub name: Option<String>,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    revision: &'a str,
    source: &'a str,
    status: &'a str,
    replicas: String,
    ready: u32,
    desired: u32,
    updated: i64,
    message: &'a str,
}

impl<'a> From<&'a ServiceStatus> for Row<'a> {
    fn from(s: &'a ServiceStatus) -> Self {
        Row {
            name: &s.name,
            revision: &s.revision,
            source: &s.source,
            status: s.status.as_str(),
            replicas: format!("{}/{}", s.ready, s.desired),
            ready: s.ready,
            desired: s.desired,
            updated: s.updated_at,
            message: &s.message,
        }
    }
}

pub async fn run(t: &Target, args: StatusArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let report = ctx.client.status(&ctx.namespace).await?;
    let services: Vec<&ServiceStatus> = report
        .services
        .iter()
        .filter(|s| args.name.as_ref().is_none_or(|n| *n == s.name))
        .collect();
    if let Some(ns) = &report.namespace
        && let Some(error) = &ns.error
    {
        let running = ns.applied.as_deref().map(short).unwrap_or("nothing");
        eprintln!(
            "warning: revision {} of {} is not applied (still running {running}): {error}",
            short(&ns.head),
            ctx.namespace
        );
    }
    if let Some(branch) = &report.branch
        && report
            .namespace
            .as_ref()
            .is_none_or(|ns| ns.head != *branch)
    {
        eprintln!(
            "note: revision {} was just pushed to {} and is being taken up",
            short(branch),
            ctx.namespace
        );
    }
    if let Some(name) = &args.name
        && services.is_empty()
    {
        bail!("service {name} not found in namespace {}", ctx.namespace);
    }
    let rows: Vec<Row<'_>> = services.into_iter().map(Row::from).collect();
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Text => print_table(&rows),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[Row<'_>]) {
    let now = now_millis();
    let mut table = vec![
        [
            "NAME", "REVISION", "SOURCE", "STATUS", "REPLICAS", "UPDATED", "MESSAGE",
        ]
        .map(String::from),
    ];
    for r in rows {
        table.push([
            r.name.to_owned(),
            short(r.revision).to_owned(),
            r.source.to_owned(),
            r.status.to_owned(),
            r.replicas.clone(),
            ago(now - r.updated),
            r.message.to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
