//! `micro server`'s Kubernetes flags: where the cluster is (`--runtime kubernetes`) and
//! what tenants become there (also what `micro manifests` renders, whatever the runtime).

use anyhow::{Result, bail};
use micro_kubernetes::Settings;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// The kubeconfig file for `--runtime kubernetes` [default: KUBECONFIG, then
    /// ~/.kube/config, then the in-cluster service account]
    #[arg(long, env = "MICRO_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use [default: its current context]
    #[arg(long, env = "MICRO_KUBE_CONTEXT")]
    pub kube_context: Option<String>,
    /// Tenant `t` lives in the Kubernetes namespace `<prefix>t`
    #[arg(long, env = "MICRO_NAMESPACE_PREFIX", default_value = "micro-")]
    pub namespace_prefix: String,
    /// How tenant pods reach the platform's API and git endpoint [default: the in-cluster
    /// Service of `manifests/`, http://micro.micro.svc.cluster.local:8081]
    #[arg(long, env = "MICRO_PLATFORM_URL")]
    pub platform_url: Option<String>,
    /// The image that builds and runs services from source (a spec without `image:`)
    /// [default: micro-runner-python:<version>]
    #[arg(long, env = "MICRO_RUNNER_IMAGE")]
    pub runner_image: Option<String>,
    /// The platform's own image, whose `micro checkout` fetches a service's code into
    /// its pod [default: micro-platform:<version>]
    #[arg(long, env = "MICRO_PLATFORM_IMAGE")]
    pub platform_image: Option<String>,
}

impl ClusterArgs {
    pub fn settings(&self) -> Result<Settings> {
        let prefix = &self.namespace_prefix;
        let dns_label = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if prefix.is_empty() || prefix.len() > 20 || !dns_label(prefix) || prefix.starts_with('-') {
            bail!(
                "--namespace-prefix {prefix:?}: 1-20 lower-case letters, digits and '-', not starting with '-'"
            );
        }
        let mut s = Settings {
            prefix: prefix.clone(),
            ..Settings::default()
        };
        if let Some(url) = &self.platform_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("--platform-url {url}: must be an http:// or https:// URL");
            }
            s.platform_url = url.trim_end_matches('/').to_owned();
        }
        if let Some(image) = &self.runner_image {
            s.runner_image = image.clone();
        }
        if let Some(image) = &self.platform_image {
            s.platform_image = image.clone();
        }
        Ok(s)
    }
}
