//! `micro server`'s Kubernetes flags: where the cluster is (`--runtime kubernetes`) and
//! what tenants become there (also what `micro manifests` renders, whatever the runtime).

use crate::error::Result;
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
    /// Service of `manifests/`, https://micro.micro.svc.cluster.local:8081]
    #[arg(long, env = "MICRO_PLATFORM_URL")]
    pub platform_url: Option<String>,
    /// The image that builds and runs services from source (a spec without `image:`):
    /// `IMAGE` for every language, `LANG=IMAGE` for one (`python`, `node`: what the
    /// folder's files say); repeat it, or comma-separate in the variable
    /// [default: micro-runner-python:<version>]
    #[arg(
        long,
        env = "MICRO_RUNNER_IMAGE",
        value_delimiter = ',',
        value_name = "[LANG=]IMAGE"
    )]
    pub runner_image: Vec<String>,
    /// The platform's own image, whose `micro checkout` fetches a service's code into
    /// its pod [default: micro-platform:<version>]
    #[arg(long, env = "MICRO_PLATFORM_IMAGE")]
    pub platform_image: Option<String>,
    /// An IPv4 range (CIDR) tenants' pods may not reach, besides the cluster's private
    /// ranges, link-local (cloud metadata) and shared (CGNAT) space: your nodes', say
    /// (repeatable, or comma-separated)
    #[arg(
        long,
        env = "MICRO_EGRESS_EXCEPT",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub egress_except: Vec<String>,
    /// Run tenants' pods in user namespaces of their own (`hostUsers: false`; Kubernetes
    /// 1.30+ with the feature on, and a container runtime that supports it)
    #[arg(long, env = "MICRO_POD_USER_NAMESPACES")]
    pub pod_user_namespaces: bool,
    /// Give each public service an Ingress of this IngressClass, for
    /// `<service>-<namespace>.<--apps-domain>` (none without it)
    #[arg(long, env = "MICRO_INGRESS_CLASS")]
    pub ingress_class: Option<String>,
    /// Give each public service a Gateway API HTTPRoute attached to this Gateway
    /// (`NAME`, or `NAMESPACE/NAME`) instead of an Ingress
    #[arg(long, env = "MICRO_GATEWAY", value_name = "[NAMESPACE/]NAME")]
    pub gateway: Option<String>,
    /// cert-manager's ClusterIssuer for public services' certificates (their Ingresses
    /// get its annotation and a TLS section)
    #[arg(long, env = "MICRO_CLUSTER_ISSUER")]
    pub cluster_issuer: Option<String>,
    /// The namespace the ingress controller runs in: the only one whose pods reach public
    /// services' pods from outside their namespace
    #[arg(long, env = "MICRO_INGRESS_NAMESPACE", default_value = "ingress-nginx")]
    pub ingress_namespace: String,
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
        // A tenant must never land in a namespace of the cluster's own (`kube-system`).
        if prefix.starts_with("kube-") {
            bail!("--namespace-prefix {prefix:?}: `kube-` namespaces belong to Kubernetes");
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
        // Whichever order they come in: the default first, then languages named apart.
        let (named, default): (Vec<&String>, Vec<&String>) =
            self.runner_image.iter().partition(|e| e.contains('='));
        for entry in default {
            if entry.is_empty() {
                bail!("--runner-image: an image is missing");
            }
            // The default for every language, unless one is named apart.
            s.runner_image = entry.clone();
            s.runner_images.clear();
        }
        for entry in named {
            let (lang, image) = entry.split_once('=').unwrap_or_default();
            let named_right = !lang.is_empty() && lang.chars().all(|c| c.is_ascii_lowercase())
                || micro_tenant::toolchain::Runtime::parse(lang).is_some();
            if !named_right || image.is_empty() {
                bail!(
                    "--runner-image {entry}: LANG=IMAGE with a lower-case language or an interpreter (python3.12, node20), or IMAGE"
                );
            }
            s.runner_images.insert(lang.to_owned(), image.to_owned());
        }
        if let Some(image) = &self.platform_image {
            s.platform_image = image.clone();
        }
        for cidr in &self.egress_except {
            match cidr.parse::<ipnet::IpNet>() {
                Ok(ipnet::IpNet::V4(net)) => s.egress_except.push(net.trunc().to_string()),
                _ => bail!(
                    "--egress-except {cidr}: an IPv4 range like 10.20.0.0/16 (tenants' pods reach no IPv6 address beyond their own)"
                ),
            }
        }
        s.pod_user_namespaces = self.pod_user_namespaces;
        s.ingress_class.clone_from(&self.ingress_class);
        s.cluster_issuer.clone_from(&self.cluster_issuer);
        s.gateway.clone_from(&self.gateway);
        s.ingress_namespace.clone_from(&self.ingress_namespace);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(runner: &[&str]) -> ClusterArgs {
        ClusterArgs {
            kubeconfig: None,
            kube_context: None,
            namespace_prefix: "micro-".into(),
            platform_url: None,
            runner_image: runner.iter().map(|s| (*s).to_owned()).collect(),
            platform_image: None,
            egress_except: Vec::new(),
            pod_user_namespaces: false,
            ingress_class: None,
            gateway: None,
            cluster_issuer: None,
            ingress_namespace: "ingress-nginx".into(),
        }
    }

    #[test]
    fn runner_images_by_language_whatever_their_order() {
        let s = args(&["node=n:1", "base:2", "python=p:3"])
            .settings()
            .unwrap();
        assert_eq!(s.runner_for(Some("node")), "n:1");
        assert_eq!(s.runner_for(Some("python")), "p:3");
        assert_eq!(s.runner_for(None), "base:2");
        // A pinned interpreter's own runner, where one is named; the language's else.
        let mut pinned = micro_tenant::desired::ServiceModel {
            toolchain: Some("python".into()),
            runtime: Some("python3.12".into()),
            ..Default::default()
        };
        assert_eq!(s.runner_of(&pinned), "p:3");
        let s = args(&["python=p:3", "python3.12=p:3.12"])
            .settings()
            .unwrap();
        assert_eq!(s.runner_of(&pinned), "p:3.12");
        assert_eq!(
            s.runtimes().list(),
            [micro_tenant::toolchain::Runtime::Python(12)]
        );
        pinned.runtime = Some("python3.13".into());
        assert_eq!(s.runner_of(&pinned), "p:3");
        let s = args(&["base:2"]).settings().unwrap();
        assert_eq!(s.runner_for(Some("python")), "base:2");
        for bad in ["=x", "Py=x", "node=", ""] {
            assert!(args(&[bad]).settings().is_err(), "{bad}");
        }
        let mut kube = args(&[]);
        kube.namespace_prefix = "kube-".into();
        assert!(
            kube.settings().is_err(),
            "tenant `system` would be kube-system"
        );
    }

    #[test]
    fn egress_exceptions_are_ipv4_ranges() {
        let mut a = args(&[]);
        a.egress_except = vec!["10.20.0.5/16".into(), "192.0.2.7/32".into()];
        assert_eq!(
            a.settings().unwrap().egress_except,
            ["10.20.0.0/16", "192.0.2.7/32"]
        );
        for bad in ["fd00::/8", "nope", "10.0.0.0/33"] {
            a.egress_except = vec![bad.into()];
            let err = a.settings().unwrap_err().to_string();
            assert!(err.contains("--egress-except"), "{err}");
        }
    }
}
