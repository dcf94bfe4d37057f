//! Renewing a running deployment's certificate identity: its Secret applied again with
//! the two identity keys new, so the kubelet refreshes the files mounted from it. The
//! Deployment is not touched: no pod restarts, and no drift is seen.

use crate::drift::{applied_model, decoded_data};
use crate::render::{self, CA_KEY, IDENTITY_KEYS, ServiceInput};
use crate::shared::{Shared, Written, kind_and_name};
use micro_runtime::{DEPLOYMENT_VAR, Pem, RuntimeError};

impl Shared {
    pub(crate) async fn renew_identity(
        &self,
        tenant: &str,
        service: &str,
        deployment: &str,
        pem: &Pem,
    ) -> Result<bool, RuntimeError> {
        self.ready().await?;
        let ns = self.settings.namespace_of(tenant);
        let (Some(live), Some(workload)) = (
            self.cache.get("Secret", &ns, &render::secret_name(service)),
            self.cache.get("Deployment", &ns, service),
        ) else {
            return Ok(false);
        };
        let Some((model, revision)) = applied_model(&workload) else {
            return Ok(false);
        };
        let mut secret = decoded_data(&live);
        // Only the deployment the Secret is for, and only one that has an identity.
        let has_identity = IDENTITY_KEYS.iter().all(|k| secret.contains_key(*k));
        if !has_identity || secret.get(DEPLOYMENT_VAR).map(String::as_str) != Some(deployment) {
            return Ok(false);
        }
        // What the render adds itself.
        secret.remove(CA_KEY);
        render::put_identity(&mut secret, pem);
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
        let Some(object) = render::service_objects(&self.settings, &input)
            .into_iter()
            .find(|o| kind_and_name(o).0 == "Secret")
        else {
            return Ok(false);
        };
        // As in an apply: what is half-applied is not drift, and the digest is noted
        // before anyone may look again.
        let key = (tenant.to_owned(), service.to_owned());
        self.state().applying.insert(key.clone());
        let before = self.cached_version(&object);
        let applied = self.apply_object(&object, false).await;
        if let Ok(Some(secret)) = &applied {
            self.note_applied_secret(&key, &object);
            let after = secret.metadata.resource_version.clone();
            self.until_cached(&[Written {
                object: &object,
                before,
                after,
            }])
            .await;
        }
        self.state().applying.remove(&key);
        applied.map(|_| true)
    }
}
