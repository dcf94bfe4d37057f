//! Where the public edge serves a service, for `micro status` and `micro describe`.

use micro_reconciler::exposure::Exposure;

/// The edge's apps domain and port (`--apps-domain`, `--edge-address`).
#[derive(Clone, Debug)]
pub struct Apps {
    pub domain: String,
    pub port: u16,
}

impl Apps {
    /// `https://<service>-<namespace>.<domain>[:port]`, when the edge routes that host
    /// to this service now.
    pub fn url(&self, exposure: &Exposure, namespace: &str, service: &str) -> Option<String> {
        let label = micro_tenant::spec::public_label(service, namespace).ok()?;
        let route = exposure.find(&label)?;
        (route.namespace == namespace && route.service == service).then(|| match self.port {
            443 => format!("https://{label}.{}", self.domain),
            port => format!("https://{label}.{}:{port}", self.domain),
        })
    }
}
