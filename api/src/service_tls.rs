//! The platform's side of calls to services that serve TLS (`tls: true`): per service, a
//! client presenting the platform's own certificate (`spiffe://<trust domain>/platform`)
//! that takes only that service's certificate from the platform CA, whatever address
//! the runtime gives for it.

use micro_pki::{Ca, Identity, Issued, PkiError};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Days the platform's client certificate is valid; each start makes a new one.
const CLIENT_CERT_DAYS: i64 = 397;

pub struct ServiceTls {
    ca_pem: String,
    client: Issued,
    trust_domain: String,
    /// One per (namespace, service), so calls to a service reuse their connections.
    clients: Mutex<HashMap<(String, String), reqwest::Client>>,
}

impl ServiceTls {
    pub fn new(ca: &Ca, trust_domain: &str) -> Result<Self, PkiError> {
        Ok(ServiceTls {
            ca_pem: ca.cert_pem().to_owned(),
            client: ca.issue_platform_client(trust_domain, CLIENT_CERT_DAYS)?,
            trust_domain: trust_domain.to_owned(),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The client for calls to `service` of `namespace`.
    pub fn client(&self, namespace: &str, service: &str) -> Result<reqwest::Client, String> {
        let key = (namespace.to_owned(), service.to_owned());
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let identity = Identity {
            trust_domain: self.trust_domain.clone(),
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            deployment: String::new(),
        };
        let config = micro_pki::client_config_for_service(&self.ca_pem, &self.client, &identity)
            .map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured((*config).clone())
            .build()
            .map_err(|e| e.to_string())?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}
