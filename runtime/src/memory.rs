//! A runtime that runs nothing: it records what it is asked to apply, like an API server
//! with no nodes. For controller tests and benchmarks ("specs only, no processes").

use crate::{Artifact, Deployment, LogQuery, LogStream, Pem, Runtime, RuntimeError};
use micro_tenant::desired::{DesiredService, ObservedService};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// One namespace: its generation and what it "runs".
type Namespace = (u64, BTreeMap<String, ObservedService>);
/// Per (namespace, service): the deployment applied, its certificate identity as
/// renewed since.
type Identities = HashMap<(String, String), (Deployment, Option<Pem>)>;

#[derive(Default)]
pub struct MemoryRuntime {
    state: Mutex<HashMap<String, Namespace>>,
    identities: Mutex<Identities>,
}

impl MemoryRuntime {
    fn with<T>(
        &self,
        ns: &str,
        f: impl FnOnce(&mut (u64, BTreeMap<String, ObservedService>)) -> T,
    ) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(state.entry(ns.to_owned()).or_default())
    }

    /// The deployment of a service applied last, as it was handed over.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        self.identities()
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|(deployment, _)| deployment.clone())
    }

    /// The certificate identity the running deployment of a service holds now.
    pub fn identity(&self, namespace: &str, name: &str) -> Option<Pem> {
        self.identities()
            .get(&(namespace.to_owned(), name.to_owned()))
            .and_then(|(_, pem)| pem.clone())
    }

    fn identities(&self) -> std::sync::MutexGuard<'_, Identities> {
        self.identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes a service behind the reconciler's back, as a person might.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.identities()
            .remove(&(namespace.to_owned(), name.to_owned()));
        self.with(namespace, |(generation, services)| {
            services.remove(name);
            *generation += 1;
        });
    }
}

#[async_trait::async_trait]
impl Runtime for MemoryRuntime {
    async fn observe(&self, namespace: &str) -> Result<Vec<ObservedService>, RuntimeError> {
        Ok(self.with(namespace, |(_, services)| {
            services.values().cloned().collect()
        }))
    }

    fn generation(&self, namespace: &str) -> u64 {
        self.with(namespace, |(generation, _)| *generation)
    }

    async fn apply(
        &self,
        namespace: &str,
        _artifact: &Artifact,
        service: &DesiredService,
        deployment: &Deployment,
    ) -> Result<(), RuntimeError> {
        self.identities().insert(
            (namespace.to_owned(), service.name.clone()),
            (deployment.clone(), deployment.certificate.clone()),
        );
        self.with(namespace, |(generation, services)| {
            services.insert(
                service.name.clone(),
                ObservedService {
                    name: service.name.clone(),
                    model: service.model.clone(),
                    revision: service.revision.clone(),
                    drift: None,
                },
            );
            *generation += 1;
        });
        Ok(())
    }

    async fn renew_identity(
        &self,
        namespace: &str,
        name: &str,
        deployment: &str,
        identity: &Pem,
    ) -> Result<bool, RuntimeError> {
        let mut identities = self.identities();
        match identities.get_mut(&(namespace.to_owned(), name.to_owned())) {
            Some((applied, pem)) if applied.id == deployment => {
                *pem = Some(identity.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
        self.identities()
            .remove(&(namespace.to_owned(), name.to_owned()));
        self.with(namespace, |(generation, services)| {
            if services.remove(name).is_some() {
                *generation += 1;
            }
        });
        Ok(())
    }

    fn restart(&self, namespace: &str, name: &str) -> bool {
        self.with(namespace, |(generation, services)| {
            let Some(s) = services.get_mut(name) else {
                return false;
            };
            s.drift = Some("a restart was asked for".into());
            *generation += 1;
            true
        })
    }

    fn endpoints(&self, _namespace: &str, _name: &str) -> Vec<String> {
        Vec::new()
    }

    async fn logs(
        &self,
        _namespace: &str,
        name: &str,
        _query: LogQuery,
    ) -> Result<LogStream, RuntimeError> {
        Err(RuntimeError::NotFound(name.to_owned()))
    }

    async fn shutdown(&self) {}
}
