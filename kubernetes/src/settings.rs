//! The platform's settings that shape what a tenant becomes on a cluster: names, images,
//! where pods reach the platform. Rendering is a function of these and the desired state.

use serde::{Deserialize, Serialize};

/// The Kubernetes version the rendered objects are written for (the `k8s-openapi`
/// feature) and checked against (`kubernetes-validate -k`).
pub const KUBERNETES_VERSION: &str = "1.34.0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// A tenant `t` lives in the Kubernetes namespace `<prefix>t`.
    pub prefix: String,
    /// The platform's own namespace (its server, its database).
    pub platform_namespace: String,
    /// The platform's image: the `checkout` init container runs `micro checkout` from it.
    pub platform_image: String,
    /// Runs services from source (`build`, then `run`) when a spec has no `image` and
    /// no runner is named for the folder's language.
    pub runner_image: String,
    /// Runners per language (`python`, `node`: what the folder's files say).
    pub runner_images: std::collections::BTreeMap<String, String>,
    /// How pods reach the platform: the API (`MICRO_API`) and its git endpoint.
    pub platform_url: String,
    /// Address ranges of the cluster's pods and services: tenants may not reach them
    /// (other tenants, the database) except through the rules that allow it; everything
    /// else (the outside world) stays reachable.
    pub cluster_cidrs: Vec<String>,
    /// The platform CA (PEM) pods trust for `platform_url`, when the platform serves a
    /// certificate from it: a file in every pod, `SSL_CERT_FILE` and `MICRO_TLS_CA`.
    pub platform_ca: Option<String>,
    /// More address ranges (IPv4) tenants' pods may not reach: the nodes', say
    /// (`--egress-except`). Link-local (cloud metadata) and shared (CGNAT) space never.
    #[serde(default)]
    pub egress_except: Vec<String>,
    /// Pods run in user namespaces of their own (`hostUsers: false`): tenants stop
    /// sharing uid 10001's per-uid kernel limits on a node. Needs Kubernetes 1.30+ with
    /// the feature on, and a runtime that supports it (`--pod-user-namespaces`).
    #[serde(default)]
    pub pod_user_namespaces: bool,
    /// The platform server's ServiceAccount (in `platform_namespace`), which each tenant
    /// namespace's RoleBinding grants the runtime's verbs there.
    #[serde(default = "default_server_account")]
    pub server_account: String,
    /// Variables every build gets (`--build-env`: a package mirror), under the service's
    /// own `env`.
    #[serde(default)]
    pub build_env: Vec<(String, String)>,
    /// Public services are at `<service>-<namespace>.<apps domain>` (`--apps-domain`).
    #[serde(default)]
    pub apps_domain: Option<String>,
    /// The IngressClass public services' Ingresses name (`--ingress-class`); without
    /// it, none is rendered.
    #[serde(default)]
    pub ingress_class: Option<String>,
    /// The Gateway public services' HTTPRoutes attach to, as `NAME` or `NAMESPACE/NAME`
    /// (`--gateway`): routes instead of Ingresses.
    #[serde(default)]
    pub gateway: Option<String>,
    /// cert-manager's ClusterIssuer for their certificates (`--cluster-issuer`).
    #[serde(default)]
    pub cluster_issuer: Option<String>,
    /// Where the ingress controller runs (`--ingress-namespace`): the one namespace whose
    /// pods reach public services' pods besides their own namespace and the platform.
    #[serde(default = "default_ingress_namespace")]
    pub ingress_namespace: String,
}

fn default_ingress_namespace() -> String {
    "ingress-nginx".into()
}

fn default_server_account() -> String {
    "micro-server".into()
}

/// Address ranges no tenant pod reaches, whatever the operator adds: link-local (the
/// clouds' metadata services, 169.254.169.254) and shared address space (CGNAT, which
/// some clusters use for nodes and pods).
pub const ALWAYS_EXCEPT: [&str; 2] = ["169.254.0.0/16", "100.64.0.0/10"];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: "micro-".into(),
            platform_namespace: "micro".into(),
            platform_image: format!("micro-platform:{}", env!("CARGO_PKG_VERSION")),
            runner_image: format!("micro-runner-python:{}", env!("CARGO_PKG_VERSION")),
            // One per language detection knows (`images/runner-<lang>`).
            runner_images: ["python", "node", "go", "static"]
                .into_iter()
                .map(|lang| {
                    (
                        lang.to_owned(),
                        format!("micro-runner-{lang}:{}", env!("CARGO_PKG_VERSION")),
                    )
                })
                .collect(),
            platform_url: "https://micro.micro.svc.cluster.local:8081".into(),
            cluster_cidrs: vec![
                "10.0.0.0/8".into(),
                "172.16.0.0/12".into(),
                "192.168.0.0/16".into(),
            ],
            platform_ca: None,
            egress_except: Vec::new(),
            pod_user_namespaces: false,
            server_account: default_server_account(),
            build_env: Vec::new(),
            apps_domain: None,
            ingress_class: None,
            gateway: None,
            cluster_issuer: None,
            ingress_namespace: default_ingress_namespace(),
        }
    }
}

impl Settings {
    /// The Kubernetes namespace of a tenant.
    pub fn namespace_of(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.prefix)
    }

    /// The tenant a Kubernetes namespace belongs to, if it is one of ours.
    pub fn tenant_of<'a>(&self, namespace: &'a str) -> Option<&'a str> {
        namespace
            .strip_prefix(self.prefix.as_str())
            .filter(|t| !t.is_empty())
    }

    /// What tenants' pods may not reach beyond their cluster's own ranges.
    pub fn egress_denied(&self) -> Vec<String> {
        let mut all: Vec<String> = self.cluster_cidrs.clone();
        all.extend(ALWAYS_EXCEPT.map(str::to_owned));
        for cidr in &self.egress_except {
            if !all.contains(cidr) {
                all.push(cidr.clone());
            }
        }
        all
    }

    /// The runner for a folder built with `toolchain`.
    pub fn runner_for(&self, toolchain: Option<&str>) -> &str {
        toolchain
            .and_then(|t| self.runner_images.get(t))
            .unwrap_or(&self.runner_image)
    }

    /// The runner a service's pods use: the one named for the interpreter its spec pins
    /// (`--runner-image python3.12=IMAGE`), else its language's.
    pub fn runner_of(&self, model: &micro_tenant::desired::ServiceModel) -> &str {
        model
            .runtime
            .as_deref()
            .and_then(|r| self.runner_images.get(r))
            .map_or_else(
                || self.runner_for(model.toolchain.as_deref()),
                String::as_str,
            )
    }

    /// The interpreters services may pin: those with a runner image named for them.
    pub fn runtimes(&self) -> micro_tenant::toolchain::Runtimes {
        self.runner_images
            .keys()
            .filter_map(|k| micro_tenant::toolchain::Runtime::parse(k))
            .fold(micro_tenant::toolchain::Runtimes::default(), |all, r| {
                all.with(r)
            })
    }

    /// Where a pod clones its tenant's repo from.
    pub fn repo_url(&self, tenant: &str) -> String {
        format!(
            "{}/git/{}",
            self.platform_url.trim_end_matches('/'),
            micro_tenant::layout::repo_dir_name(tenant)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_round_trip() {
        let s = Settings::default();
        assert_eq!(s.namespace_of("team"), "micro-team");
        assert_eq!(s.tenant_of("micro-team"), Some("team"));
        assert_eq!(s.tenant_of("micro-"), None);
        assert_eq!(s.tenant_of("kube-system"), None);
        assert_eq!(s.runner_for(Some("python")), s.runner_image);
        assert_eq!(s.runner_for(Some("cobol")), s.runner_image);
        assert_eq!(s.runner_for(None), s.runner_image);
        assert_eq!(
            s.repo_url("team"),
            "https://micro.micro.svc.cluster.local:8081/git/team.git"
        );
    }
}
