//! A runtime that runs nothing: it records what it is asked to apply, like an API server
//! with no nodes. For controller tests and benchmarks ("specs only, no processes").

use crate::desired::{DesiredService, ObservedService};
use crate::runtime::{ConfigEnv, LogStream, Runtime, RuntimeError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// One namespace: its generation and what it "runs".
type Namespace = (u64, BTreeMap<String, ObservedService>);

#[derive(Default)]
pub struct MemoryRuntime {
    state: Mutex<HashMap<String, Namespace>>,
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

    /// Removes a service behind the reconciler's back, as a person might.
    pub fn forget(&self, namespace: &str, name: &str) {
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
        _artifact: &crate::runtime::Artifact,
        service: &DesiredService,
        _config: &ConfigEnv,
    ) -> Result<(), RuntimeError> {
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

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
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
        _query: crate::runtime::LogQuery,
    ) -> Result<LogStream, RuntimeError> {
        Err(RuntimeError::NotFound(name.to_owned()))
    }

    async fn shutdown(&self) {}
}
