//! What a tenant's desired state becomes on a cluster: a pure function of the desired
//! state, the namespace's quota and the platform's [`Settings`]. The runtime applies
//! exactly these objects and `micro manifests` prints them (with secret values replaced by
//! [`PLACEHOLDER`]), so what an admin reviews is what runs.

mod namespace;
mod public;
pub use public::PUBLIC_POLICY;
mod workload;

pub use namespace::{
    LIMIT_RANGE, NETWORK_POLICY, RESOURCE_QUOTA, ROLE_BINDING, TENANT_ROLE, namespace_objects,
};
pub use workload::{
    CA_KEY, CONFIG_SECRET_SUFFIX, DEFAULT_PORT, IDENTITY_KEYS, ServiceInput, WITH_IDENTITY,
    secret_name, service_objects,
};

use crate::settings::Settings;
use micro_runtime::{Artifact, DEPLOYMENT_VAR, Deployment, Pem, TOKEN_VAR};
use micro_tenant::desired::{DesiredNamespace, DesiredService, ServiceModel};
use micro_tenant::quota::Quota;
use serde_json::Value;
use std::collections::BTreeMap;

/// What `micro manifests` shows instead of a secret value.
pub const PLACEHOLDER: &str = "(secret: not shown)";
/// What it shows for the deployment (token) id, which each apply makes anew.
pub const AT_APPLY: &str = "(set at apply)";

/// The variables a service's Secret holds, as the runtime fills them: its token, its
/// deployment, and one `MICRO_CONFIG_*` per config key it lists.
pub fn secret_keys_of(model: &ServiceModel) -> Vec<String> {
    let mut keys = vec![TOKEN_VAR.to_owned(), DEPLOYMENT_VAR.to_owned()];
    keys.extend(
        model
            .config
            .keys()
            .map(|k| micro_tenant::layout::config_env_name(k)),
    );
    keys
}

/// A deployment's Secret data: its variables, and its certificate and key under
/// [`IDENTITY_KEYS`], which the Deployment mounts as files (never variables).
pub fn secret_of(deployment: &Deployment) -> BTreeMap<String, String> {
    let mut data = deployment.variables();
    if let Some(pem) = &deployment.certificate {
        put_identity(&mut data, pem);
    }
    data
}

/// Puts a certificate and its key into a service's Secret data, under [`IDENTITY_KEYS`].
pub fn put_identity(data: &mut BTreeMap<String, String>, pem: &Pem) {
    let [cert, key] = IDENTITY_KEYS;
    data.insert(cert.to_owned(), pem.cert.clone());
    data.insert(key.to_owned(), pem.key.expose().clone());
}

/// A service's Secret data for review: every key, no value.
pub fn placeholder_secret(service: &DesiredService) -> BTreeMap<String, String> {
    secret_keys_of(&service.model)
        .into_iter()
        .map(|k| {
            let shown = if k == DEPLOYMENT_VAR {
                AT_APPLY
            } else {
                PLACEHOLDER
            };
            (k, shown.to_owned())
        })
        .collect()
}

/// Everything a namespace at one revision becomes, secret values hidden: the
/// namespace-wide objects first, then each service's (optionally only `only`).
pub fn manifests(
    settings: &Settings,
    desired: &DesiredNamespace,
    quota: &Quota,
    only: Option<&str>,
) -> Vec<Value> {
    let mut out = match only {
        Some(_) => Vec::new(),
        None => namespace_objects(settings, &desired.namespace, quota),
    };
    for service in desired.services.values() {
        if only.is_some_and(|name| name != service.name) {
            continue;
        }
        let secret = placeholder_secret(service);
        let artifact = cluster_artifact(&service.name, &service.revision, &service.model);
        out.extend(service_objects(
            settings,
            &ServiceInput::of(
                &desired.namespace,
                service,
                &artifact,
                &secret,
                quota.checkout_bytes,
            ),
        ));
    }
    out
}

/// What a reviewer of `desired`'s objects should know: each service whose language
/// (from its files) has no runner image of its own here, so its build and run would go
/// to the default runner, which may not have that language's tools.
pub fn warnings(settings: &Settings, desired: &DesiredNamespace) -> Vec<String> {
    desired
        .services
        .values()
        .filter(|s| s.model.image.is_none())
        .filter_map(|s| {
            let lang = s.model.toolchain.as_deref()?;
            (!settings.runner_images.contains_key(lang)).then(|| {
                format!(
                    "{}: a {lang} folder, and this platform names no runner image for {lang} (micro server --runner-image {lang}=IMAGE); it would build and run in {}",
                    s.name, settings.runner_image
                )
            })
        })
        .collect()
}

/// What a service's pods fetch or run, made where no artifact is handed in (review, and
/// re-rendering what was applied): a pod clones the namespace's repo by URL and commit,
/// so the server's own path to it and the folder's tree (what the local runtime keeps
/// builds by) are not part of what is rendered.
pub fn cluster_artifact(name: &str, revision: &str, model: &ServiceModel) -> Artifact {
    Artifact::of_model(std::path::Path::new(""), name, revision, "", model)
}

/// An object as the API server takes it (its `apiVersion` and `kind` included).
fn object<K: serde::Serialize>(typed: &K) -> Value {
    // k8s-openapi's objects have string keys only: serialising one cannot fail.
    serde_json::to_value(typed).unwrap_or_default()
}

/// `1500m`, as Kubernetes writes CPU.
pub(crate) fn cpu_quantity(millis: u64) -> String {
    format!("{millis}m")
}

/// `512Mi` when whole mebibytes, else bytes.
pub(crate) fn memory_quantity(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}Mi", bytes >> 20)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests;
