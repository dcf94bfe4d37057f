//! `micro status [NAME] [-w] [-o wide|json|yaml]`: what runs, as a table or data;
//! `-w` keeps watching and prints each service whose state changes, like `kubectl get -w`.

use super::{Output, ago, rfc3339, short};
use crate::context::Target;
use anyhow::{Result, bail};
use micro_api::types::ServiceView;
use micro_store::now_millis;
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Only this service
    #[arg(add = crate::complete::services())]
    pub name: Option<String>,
    /// How to print it: text (a table for people), json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: StatusOutput,
    /// Keep watching: print each service again when its state changes (Ctrl-C ends)
    #[arg(long, short)]
    pub watch: bool,
}

/// `--output` of `micro status`: `wide` is `micro describe` of each service.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusOutput {
    /// A table
    #[default]
    Text,
    /// Each service in full, as `micro describe` shows it
    Wide,
    /// JSON
    Json,
    /// YAML
    Yaml,
}

impl StatusOutput {
    fn data(self) -> Output {
        match self {
            StatusOutput::Json => Output::Json,
            StatusOutput::Yaml => Output::Yaml,
            StatusOutput::Text | StatusOutput::Wide => Output::Text,
        }
    }
}

#[derive(Clone, Serialize)]
struct Row<'a> {
    name: &'a str,
    revision: &'a str,
    source: &'a str,
    status: &'a str,
    replicas: String,
    ready: u32,
    desired: u32,
    /// RFC 3339.
    updated: String,
    #[serde(skip)]
    updated_ms: i64,
    message: &'a str,
    /// Where the public edge serves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

impl<'a> From<&'a ServiceView> for Row<'a> {
    fn from(s: &'a ServiceView) -> Self {
        Row {
            name: &s.name,
            revision: &s.revision,
            source: &s.source,
            status: s.status.as_str(),
            replicas: format!("{}/{}", s.ready, s.desired),
            ready: s.ready,
            desired: s.desired,
            updated: rfc3339(s.updated_at),
            updated_ms: s.updated_at,
            message: &s.message,
            url: s.url.as_deref(),
        }
    }
}

pub async fn run(t: &Target, args: StatusArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let report = ctx.client.status(&ctx.namespace).await?;
    let services: Vec<&ServiceView> = report
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
    if let Some(error) = &report.fetch_error {
        eprintln!("warning: {error}");
    }
    if let Some(line) = &report.suspended {
        eprintln!("warning: {line}");
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
    if args.output == StatusOutput::Wide {
        let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                println!();
            }
            super::describe::show(&ctx, name, Output::Text).await?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Row<'_>> = services.into_iter().map(Row::from).collect();
    if !args.watch {
        if !args.output.data().data(&rows)? {
            print_table(&rows, true);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut seen = std::collections::BTreeMap::new();
    show_changes(&rows, &mut seen, args.output.data(), true)?;
    drop(rows);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let report = ctx.client.status(&ctx.namespace).await?;
        let rows: Vec<Row<'_>> = report
            .services
            .iter()
            .filter(|s| args.name.as_ref().is_none_or(|n| *n == s.name))
            .map(Row::from)
            .collect();
        show_changes(&rows, &mut seen, args.output.data(), false)?;
    }
}

/// Prints the rows whose state differs from what was printed last (all, the first
/// time); a service that is gone shows as `removed`. As data, one JSON object per line.
fn show_changes(
    rows: &[Row<'_>],
    seen: &mut std::collections::BTreeMap<String, String>,
    output: Output,
    first: bool,
) -> Result<()> {
    let state = |r: &Row<'_>| format!("{} {} {} {}", r.revision, r.status, r.replicas, r.message);
    let changed: Vec<&Row<'_>> = rows
        .iter()
        .filter(|r| seen.get(r.name) != Some(&state(r)))
        .collect();
    let gone: Vec<String> = seen
        .keys()
        .filter(|name| !rows.iter().any(|r| r.name == name.as_str()))
        .cloned()
        .collect();
    for r in &changed {
        seen.insert(r.name.to_owned(), state(r));
    }
    for name in &gone {
        seen.remove(name);
    }
    match output {
        Output::Text => {
            let changed: Vec<Row<'_>> = changed.iter().map(|r| (*r).clone()).collect();
            if !changed.is_empty() || first {
                print_table(&changed, first);
            }
            for name in gone {
                println!("{name}  removed");
            }
        }
        Output::Json | Output::Yaml => {
            for r in changed {
                println!("{}", serde_json::to_string(r)?);
            }
            for name in gone {
                println!("{}", serde_json::json!({"name": name, "status": "removed"}));
            }
        }
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    Ok(())
}

fn print_table(rows: &[Row<'_>], header: bool) {
    let now = now_millis();
    // Public services' URLs get a column, when there are any.
    let urls = rows.iter().any(|r| r.url.is_some());
    let mut table: Vec<Vec<String>> = Vec::new();
    if header {
        let mut names = vec![
            "NAME", "REVISION", "SOURCE", "STATUS", "REPLICAS", "UPDATED", "MESSAGE",
        ];
        if urls {
            names.insert(6, "URL");
        }
        table.push(names.into_iter().map(String::from).collect());
    }
    for r in rows {
        let mut row = vec![
            r.name.to_owned(),
            short(r.revision).to_owned(),
            r.source.to_owned(),
            r.status.to_owned(),
            r.replicas.clone(),
            ago(now - r.updated_ms),
            r.message.to_owned(),
        ];
        if urls {
            row.insert(6, r.url.unwrap_or("-").to_owned());
        }
        table.push(row);
    }
    let columns = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
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
