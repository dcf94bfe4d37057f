//! The platform's side of calls to services that serve TLS (`tls: true`): per service, a
//! client presenting the platform's own certificate (`spiffe://<trust domain>/platform`)
//! that takes only that service's certificate from the platform CA, whatever address
//! the runtime gives for it.

use micro_edge::upstream::TlsUpstream;
use micro_pki::PlatformClient;
use micro_runtime::Runtime;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub struct ServiceTls {
    platform: Arc<PlatformClient>,
    /// Where replicas are connected to.
    runtime: Arc<dyn Runtime>,
    /// One per (namespace, service), so calls to a service reuse their connections.
    clients: Mutex<HashMap<(String, String), TlsUpstream>>,
}

impl ServiceTls {
    pub fn new(platform: Arc<PlatformClient>, runtime: Arc<dyn Runtime>) -> Self {
        ServiceTls {
            platform,
            runtime,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for calls to `service` of `namespace`.
    pub fn client(&self, namespace: &str, service: &str) -> Result<TlsUpstream, String> {
        let key = (namespace.to_owned(), service.to_owned());
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let config = self
            .platform
            .config_for(namespace, service)
            .map_err(|e| e.to_string())?;
        let client = micro_edge::upstream::tls_client(self.runtime.clone(), (*config).clone());
        clients.insert(key, client.clone());
        Ok(client)
    }
}
