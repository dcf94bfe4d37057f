//! Custom domains as the edge serves them: each proven host and the service it leads
//! to, replaced whole by the server whenever the claims change; and the answer to an
//! ACME CA's HTTP-01 challenge, which proves a host points here.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The key authorization for an HTTP-01 token, while its order is under way.
pub type ChallengeAnswer = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Proven custom domains: host → (namespace, service).
#[derive(Debug, Default)]
pub struct CustomHosts(RwLock<HashMap<String, (String, String)>>);

impl CustomHosts {
    /// From now on, exactly `hosts` are served.
    pub fn replace(&self, hosts: HashMap<String, (String, String)>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = hosts;
    }

    /// The namespace and service `host` leads to, if it is served.
    pub fn get(&self, host: &str) -> Option<(String, String)> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
    }
}
