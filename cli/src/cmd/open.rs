//! `micro open NAME`: the URL the public edge serves a service at, opened in a browser
//! when there is a desktop to open it on.

use crate::context::Target;
use anyhow::{Result, bail};
use std::process::{ExitCode, Stdio};

#[derive(clap::Args, Debug)]
pub struct OpenArgs {
    /// The service
    #[arg(add = crate::complete::services())]
    pub name: String,
    /// Only print the URL
    #[arg(long)]
    pub print: bool,
}

pub async fn run(t: &Target, args: OpenArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let d = ctx.client.describe(&ctx.namespace, &args.name).await?;
    let Some(url) = d.status.url else {
        bail!(
            "service {} has no public URL: add `public: true` to its service.yaml (the platform serves public services when its server runs with --apps-domain)",
            args.name
        );
    };
    println!("{url}");
    if !args.print {
        in_browser(&url);
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens `url` in a browser when there is a desktop to open it on (best effort: the URL
/// is printed either way).
pub fn in_browser(url: &str) {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if desktop {
        let _ = std::process::Command::new("xdg-open")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}
