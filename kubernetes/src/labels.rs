//! The labels and annotations the platform puts on what it owns. Prune and observe look
//! only at objects carrying [`MANAGED_BY`] = [`MANAGER`]: nothing else in a namespace is
//! ever touched.

use std::collections::BTreeMap;

/// The server-side apply field manager, and the value of `app.kubernetes.io/managed-by`.
pub const MANAGER: &str = "micro";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const NAME: &str = "app.kubernetes.io/name";
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// The tenant (platform namespace) an object belongs to.
pub const TENANT: &str = "micro/tenant";
/// The service an object belongs to; absent on namespace-wide objects.
pub const SERVICE: &str = "micro/service";

/// Annotations: the revision a Deployment runs, a digest of the config versions it gets
/// (both on the pod template, so a change rolls it out), the model it was applied from
/// and the deployment (service token) it carries.
pub const REVISION: &str = "micro/revision";
pub const CONFIG_DIGEST: &str = "micro/config-digest";
pub const MODEL: &str = "micro/model";
pub const DEPLOYMENT: &str = "micro/deployment";
/// On the pods of a public service behind the cluster's ingress controller: what the
/// namespace's public NetworkPolicy lets the controller reach.
pub const PUBLIC: &str = "micro/public";

/// The label selector of everything the platform owns, for watches and lists.
pub fn owned_selector() -> String {
    format!("{MANAGED_BY}={MANAGER}")
}

/// Labels (or annotations) as the typed objects hold them.
pub type Map = BTreeMap<String, String>;

fn map<const N: usize>(pairs: [(&str, &str); N]) -> Map {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Labels of a tenant's namespace-wide objects.
pub fn tenant_labels(tenant: &str) -> Map {
    map([(MANAGED_BY, MANAGER), (PART_OF, "micro"), (TENANT, tenant)])
}

/// Labels of one service's objects (its pods too).
pub fn service_labels(tenant: &str, service: &str) -> Map {
    map([
        (NAME, service),
        (MANAGED_BY, MANAGER),
        (PART_OF, "micro"),
        (TENANT, tenant),
        (SERVICE, service),
    ])
}

/// What a service's Deployment and Service select its pods by (never changes for a
/// service, as a Deployment's selector cannot).
pub fn pod_selector(service: &str) -> Map {
    map([(SERVICE, service)])
}
