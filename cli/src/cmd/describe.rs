//! `micro describe NAME` (also `micro status NAME -o wide`): one service in full, like
//! `kubectl describe`: the commit it runs, its replicas, config keys and versions (never
//! values), and its recent events.

use super::{Output, ago, rfc3339, short};
use crate::context::{Context, Target};
use anyhow::Result;
use micro_api::types::ServiceDescription;
use micro_store::now_millis;
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The service
    #[arg(add = crate::complete::services())]
    pub name: String,
    /// How to print it: text (a table for people), json or yaml
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// The description with its times in RFC 3339.
#[derive(Serialize)]
struct Described<'a> {
    #[serde(flatten)]
    service: &'a ServiceDescription,
    updated: String,
    events: Vec<Event<'a>>,
}

#[derive(Serialize)]
struct Event<'a> {
    at: String,
    what: &'a str,
}

pub async fn run(t: &Target, args: DescribeArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    show(&ctx, &args.name, args.output).await
}

pub async fn show(ctx: &Context, name: &str, output: Output) -> Result<ExitCode> {
    let d = ctx.client.describe(&ctx.namespace, name).await?;
    let events = d
        .events
        .iter()
        .map(|e| Event {
            at: rfc3339(e.at_ms),
            what: &e.what,
        })
        .collect();
    let described = Described {
        service: &d,
        updated: rfc3339(d.status.updated_at),
        events,
    };
    if output.data(&described)? {
        return Ok(ExitCode::SUCCESS);
    }
    let s = &d.status;
    let now = now_millis();
    println!("Name:       {}", s.name);
    println!("Namespace:  {}", s.namespace);
    println!(
        "Revision:   {}  {}",
        short(&s.revision),
        d.subject.as_deref().unwrap_or("")
    );
    if let Some(author) = &d.author {
        println!("Author:     {author}");
    }
    println!("Source:     {}", s.source);
    if let Some(url) = &s.url {
        println!("URL:        {url}");
    }
    for (i, line) in d.detected.iter().enumerate() {
        let label = if i == 0 { "Detected:" } else { "" };
        println!("{label:<11} {line}");
    }
    if let Some(t) = &d.traffic {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
        println!(
            "Traffic:    {:.1} requests/min, p50 ≤ {}, p99 ≤ {} (the edge, last 5 minutes)",
            t.requests_per_minute,
            ms(t.p50_ms),
            ms(t.p99_ms)
        );
    }
    println!(
        "Status:     {} {}/{}  (updated {})",
        s.status,
        s.ready,
        s.desired,
        ago(now - s.updated_at)
    );
    if !s.message.is_empty() {
        println!("Message:    {}", s.message);
    }
    if let Some(old) = &d.serving {
        println!("Serving:    {old} (until this revision is ready)");
    }
    println!("Replicas:");
    if d.replicas.is_empty() {
        println!("  (none running)");
    }
    for r in &d.replicas {
        let mut line = format!("  {}  {:<9} restarts {}", r.replica, r.state, r.restarts);
        if let Some(endpoint) = &r.endpoint {
            line.push_str(&format!("  at {endpoint}"));
        }
        if let Some(exit) = &r.last_exit {
            line.push_str(&format!("  last exit: {exit}"));
        }
        if !r.message.is_empty() && r.last_exit.as_deref() != Some(&r.message) {
            line.push_str(&format!("  ({})", r.message));
        }
        println!("{line}");
    }
    println!("Config:");
    if d.config.is_empty() {
        println!("  (none)");
    }
    for (key, version) in &d.config {
        println!("  {key}  v{version}");
    }
    println!("Events:");
    if d.events.is_empty() {
        println!("  (none since the server started)");
    }
    for e in &d.events {
        println!(
            "  {}  {:<8}  {}",
            rfc3339(e.at_ms),
            ago(now - e.at_ms),
            e.what
        );
    }
    Ok(ExitCode::SUCCESS)
}
