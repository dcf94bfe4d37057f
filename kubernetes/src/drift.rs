//! Drift: whether what runs on the cluster is still what was applied, comparing only the
//! fields the platform sets (and, for Secrets, keys and a digest of the values applied).

use crate::compare::contains;
use crate::labels;
use crate::render::{self, ServiceInput};
use crate::shared::{Shared, kind_and_name};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use micro_runtime::DEPLOYMENT_VAR;
use micro_tenant::desired::ServiceModel;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

impl Shared {
    /// Why a service's objects on the cluster are not what we applied, if they are not.
    pub(crate) fn service_drift(&self, tenant: &str, service: &str) -> Option<String> {
        let ns = self.settings.namespace_of(tenant);
        let Some(live) = self.cache.get("Deployment", &ns, service) else {
            return Some(format!("its Deployment {service} was deleted"));
        };
        let Some((model, revision)) = applied_model(&live) else {
            return Some("its Deployment lost the platform's annotations".into());
        };
        let deployment = live["spec"]["template"]["metadata"]["annotations"][labels::DEPLOYMENT]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut secret: BTreeMap<String, String> = render::secret_keys_of(&model)
            .into_iter()
            .map(|k| (k, String::new()))
            .collect();
        secret.insert(DEPLOYMENT_VAR.to_owned(), deployment);
        // Whether the deployment has a certificate identity is the controller's choice:
        // rendered as applied (files and variables follow it).
        if let Some(live_secret) = self.cache.get("Secret", &ns, &render::secret_name(service)) {
            for k in render::WITH_IDENTITY {
                if live_secret["data"].get(k).is_some() {
                    secret.insert(k.to_owned(), String::new());
                }
            }
        }
        let artifact = render::cluster_artifact(service, &revision, &model);
        let input = ServiceInput {
            tenant,
            name: service,
            model: &model,
            revision: &revision,
            artifact: &artifact,
            secret: &secret,
            storage_bytes: self.storage_of(tenant),
        };
        let key = (tenant.to_owned(), service.to_owned());
        for want in render::service_objects(&self.settings, &input) {
            let (kind, name) = kind_and_name(&want);
            let Some(have) = self.cache.get(kind, &ns, name) else {
                return Some(format!("its {kind} {name} was deleted"));
            };
            let same = if kind == "Secret" {
                let applied = self.state().secrets.get(&key).cloned();
                secret_keys_match(&have, &want)
                    && applied.is_none_or(|digest| digest == live_secret_digest(&have))
            } else {
                contains(Some(&have), &want)
            };
            if !same {
                return Some(format!("its {kind} {name} was changed by hand"));
            }
        }
        None
    }

    /// Remembers what a Secret was applied with (a digest, the platform CA included), so
    /// a hand's edit of it shows as drift and our own apply does not.
    pub(crate) fn note_applied_secret(&self, key: &crate::shared::Key, secret: &Value) {
        let data: BTreeMap<String, String> =
            serde_json::from_value(secret["stringData"].clone()).unwrap_or_default();
        self.state()
            .secrets
            .insert(key.clone(), secret_digest(&data));
    }

    /// Whether the tenant's namespace-wide objects are as rendered (for its last quota).
    pub(crate) fn namespace_in_place(&self, tenant: &str, ns: &str) -> bool {
        let Some(quota) = self.state().quotas.get(tenant).copied() else {
            // Not applied by this server yet: its first reconcile will.
            return true;
        };
        render::namespace_objects(&self.settings, tenant, &quota)
            .iter()
            .all(|want| {
                let (kind, name) = kind_and_name(want);
                let ns = if kind == "Namespace" { "" } else { ns };
                contains(self.cache.get(kind, ns, name).as_ref(), want)
            })
    }
}

/// The model and revision a Deployment was applied from (its annotations).
pub(crate) fn applied_model(deployment: &Value) -> Option<(ServiceModel, String)> {
    let annotations = &deployment["metadata"]["annotations"];
    let model = serde_json::from_str(annotations[labels::MODEL].as_str()?).ok()?;
    Some((model, annotations[labels::REVISION].as_str()?.to_owned()))
}

/// [`applied_model`] from a Deployment's metadata alone.
pub(crate) fn applied_model_of(meta: &ObjectMeta) -> Option<(ServiceModel, String)> {
    let annotations = meta.annotations.as_ref()?;
    let model = serde_json::from_str(annotations.get(labels::MODEL)?).ok()?;
    Some((model, annotations.get(labels::REVISION)?.clone()))
}

pub(crate) fn secret_digest(data: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The digest of a live Secret's data, decoded as `secret_digest` hashes what we apply.
fn live_secret_digest(secret: &Value) -> String {
    secret_digest(&decoded_data(secret))
}

/// A live Secret's data, decoded.
pub(crate) fn decoded_data(secret: &Value) -> BTreeMap<String, String> {
    use base64::Engine;
    secret["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            (k.clone(), String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

/// Whether a live Secret has the keys of the rendered one. A deployment's identity keys
/// are the controller's to give or not: their values count in the digest, not here.
fn secret_keys_match(secret: &Value, want: &Value) -> bool {
    let keys = |data: &Value| -> std::collections::BTreeSet<String> {
        data.as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .filter(|k| !render::WITH_IDENTITY.contains(&k.as_str()))
            .collect()
    };
    keys(&secret["data"]) == keys(&want["stringData"])
}
