//! `micro manifests [REF]`: the Kubernetes objects the platform would apply for the
//! namespace at REF, for review; secret values never shown.

use crate::context::Target;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ManifestsArgs {
    /// A branch, tag or commit of the namespace's repo on the platform [default: the
    /// branch head]
    pub reference: Option<String>,
    /// Only this service's objects
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// How to print them: yaml (one document per object, for `kubectl apply -f -`) or
    /// json (a v1 List)
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Yaml,
    Json,
}

pub async fn run(t: &Target, args: ManifestsArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let reference = args
        .reference
        .as_deref()
        .unwrap_or(micro_tenant::layout::BRANCH);
    let mut list = ctx
        .client
        .manifests(&ctx.namespace, reference, args.service.as_deref())
        .await?;
    // Said on stderr: what is printed stays a list kubectl takes.
    if let Some(warnings) = list.as_object_mut().and_then(|l| l.remove("warnings")) {
        for warning in warnings.as_array().into_iter().flatten() {
            eprintln!("warning: {}", warning.as_str().unwrap_or_default());
        }
    }
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        Format::Yaml => {
            for item in list["items"].as_array().into_iter().flatten() {
                print!("---\n{}", serde_saphyr::to_string(item)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
