//! The runtime-neutral desired model rendered from a commit.

use crate::spec::ServiceSpec;
use std::collections::BTreeMap;

/// Everything a namespace wants running at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredNamespace {
    pub namespace: String,
    /// The commit this was read from.
    pub revision: String,
    pub services: BTreeMap<String, DesiredService>,
}

/// One service as a commit wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredService {
    pub name: String,
    pub spec: ServiceSpec,
    /// Tree id of `services/<name>/`: the code and spec together.
    pub tree: String,
    /// The commit being applied when this service (re)starts.
    pub revision: String,
}

impl DesiredService {
    /// What identifies a deployment of this service: a change here means a restart.
    /// The folder's tree id covers both the code and `service.yaml`.
    pub fn fingerprint(&self) -> &str {
        &self.tree
    }

    /// Where the code comes from, as `micro status` shows it.
    pub fn source(&self) -> String {
        match &self.spec.source {
            Some(s) => s.git.clone(),
            None => "repo".to_owned(),
        }
    }
}

/// What the runtime reports running for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedService {
    pub name: String,
    pub fingerprint: String,
    pub revision: String,
}
