//! The fake API server's objects: one resourceVersion counter, an event log for watches,
//! defaults filled in as the real API server would, and Deployments "rolled out" by a
//! pretend controller.

use super::apply::{self, Conflict, Ownership};
use super::resources::Resource;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `(resource plural, namespace or "", name)`.
pub type Key = (String, String, String);

pub(super) struct Stored {
    pub(super) object: Value,
    pub(super) owners: Ownership,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub rv: u64,
    pub plural: &'static str,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
}

#[derive(Default)]
pub struct Store {
    pub(super) rv: u64,
    pub(super) objects: BTreeMap<Key, Stored>,
    /// Each pod's log lines (`<RFC 3339 time> <text>`).
    pub(super) logs: BTreeMap<(String, String), Vec<String>>,
    pub events: Vec<Event>,
    /// What the pretend controller does with a Deployment's new template.
    pub rollouts: Rollouts,
    /// Namespaces whose writes fail (an admission webhook down, etcd out of space).
    pub refused: std::collections::HashSet<String>,
}

/// What happens to a Deployment's new template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Rollouts {
    /// Every replica ready at once.
    #[default]
    Ready,
    /// Never ready, not failed yet (pods still pulling or starting).
    Hold,
    /// Failed: the progress deadline passed with this message (an image that cannot be
    /// pulled, a quota that rejects the pods); what ran before keeps running.
    Fail(String),
    /// The new pods start and crash, again and again, with this exit code.
    Crash(i32),
}

#[derive(Debug)]
pub enum StoreError {
    NotFound,
    Conflict(Vec<Conflict>),
    Invalid(String),
}

/// Does `labels` satisfy a selector like `a=b,c!=d,e,!f`?
pub fn matches(selector: Option<&str>, labels: &Value) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| {
        let term = term.trim();
        let label = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
        if let Some((k, v)) = term.split_once("!=") {
            label(k) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            label(k) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            label(k).is_none()
        } else {
            label(term).is_some()
        }
    })
}

impl Store {
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A pod's log lines from `from` on; `None` once the pod is gone.
    pub fn log_lines(&self, ns: &str, pod: &str, from: usize) -> Option<Vec<String>> {
        self.logs
            .get(&(ns.to_owned(), pod.to_owned()))
            .map(|l| l.iter().skip(from).cloned().collect())
    }

    pub fn get(&self, r: &Resource, ns: &str, name: &str) -> Option<Value> {
        let key = (r.plural.to_owned(), ns.to_owned(), name.to_owned());
        self.objects.get(&key).map(|s| s.object.clone())
    }

    /// Objects of a kind, in one namespace (or all: `None`), matching a label selector.
    pub fn list(&self, r: &Resource, ns: Option<&str>, selector: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((plural, n, _), s)| {
                plural == r.plural
                    && ns.is_none_or(|ns| ns == n)
                    && matches(selector, &s.object["metadata"]["labels"])
            })
            .map(|(_, s)| s.object.clone())
            .collect()
    }

    /// Server-side apply of `config` by `manager`.
    pub fn apply(
        &mut self,
        r: &Resource,
        ns: &str,
        name: &str,
        manager: &str,
        config: &Value,
        force: bool,
    ) -> Result<Value, StoreError> {
        if config["kind"] != r.kind || config["apiVersion"] != r.api_version {
            return Err(StoreError::Invalid(format!(
                "the body is a {} {}, not a {} {}",
                config["apiVersion"], config["kind"], r.api_version, r.kind
            )));
        }
        if config["metadata"]["name"] != name {
            return Err(StoreError::Invalid(
                "metadata.name does not match the path".into(),
            ));
        }
        let key = (r.plural.to_owned(), ns.to_owned(), name.to_owned());
        let (live, mut owners) = match self.objects.get(&key) {
            Some(s) => (Some(s.object.clone()), s.owners.clone()),
            None => (None, Ownership::new()),
        };
        let mut object = apply::apply(live.as_ref(), &mut owners, manager, config, force)
            .map_err(StoreError::Conflict)?;
        object["metadata"]["name"] = json!(name);
        super::defaults::fill(r, &mut object);
        Ok(self.write(r, ns, name, live, object, owners))
    }

    /// A change by hand (`kubectl edit`): `edit` gets the live object to change.
    pub fn edit(
        &mut self,
        r: &Resource,
        ns: &str,
        name: &str,
        manager: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, StoreError> {
        let key = (r.plural.to_owned(), ns.to_owned(), name.to_owned());
        let stored = self.objects.get(&key).ok_or(StoreError::NotFound)?;
        let (old, mut owners) = (stored.object.clone(), stored.owners.clone());
        let mut new = old.clone();
        edit(&mut new);
        apply::update(&mut owners, manager, &old, &new);
        super::defaults::fill(r, &mut new);
        Ok(self.write(r, ns, name, Some(old), new, owners))
    }

    pub fn delete(&mut self, r: &Resource, ns: &str, name: &str) -> Result<Value, StoreError> {
        let key = (r.plural.to_owned(), ns.to_owned(), name.to_owned());
        let stored = self.objects.remove(&key).ok_or(StoreError::NotFound)?;
        if r.plural == "pods" {
            self.logs.remove(&(ns.to_owned(), name.to_owned()));
        }
        self.rv += 1;
        let mut object = stored.object;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.event(r, ns, "DELETED", object.clone());
        if r.plural == "namespaces" {
            // Everything in a deleted namespace goes with it.
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|(_, n, _)| n == name)
                .cloned()
                .collect();
            for (plural, n, obj) in inside {
                if let Some(r) = super::resources::by_plural(&plural) {
                    let _ = self.delete(r, &n, &obj);
                }
            }
        }
        Ok(object)
    }

    /// Stores `object` as the new state (a no-op when nothing changed, as the real API
    /// server: no new resourceVersion, no event).
    fn write(
        &mut self,
        r: &Resource,
        ns: &str,
        name: &str,
        live: Option<Value>,
        mut object: Value,
        owners: Ownership,
    ) -> Value {
        let key = (r.plural.to_owned(), ns.to_owned(), name.to_owned());
        object["apiVersion"] = json!(r.api_version);
        object["kind"] = json!(r.kind);
        object["metadata"]["name"] = json!(name);
        if r.namespaced {
            object["metadata"]["namespace"] = json!(ns);
        }
        let spec_of = |v: &Value| {
            let mut v = v.clone();
            if let Some(map) = v.as_object_mut() {
                map.remove("metadata");
                map.remove("status");
            }
            v
        };
        let generation = match &live {
            None => 1,
            Some(old) => {
                let was = old["metadata"]["generation"].as_i64().unwrap_or(1);
                if spec_of(old) == spec_of(&object) {
                    was
                } else {
                    was + 1
                }
            }
        };
        for field in ["uid", "creationTimestamp", "resourceVersion"] {
            if let Some(v) = live.as_ref().map(|l| l["metadata"][field].clone()) {
                object["metadata"][field] = v;
            }
        }
        object["metadata"]["generation"] = json!(generation);
        object["metadata"]["managedFields"] = apply::managed_fields(&owners, r.api_version);
        if live.as_ref() == Some(&object) {
            return object;
        }
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if live.is_none() {
            object["metadata"]["uid"] = json!(format!("uid-{}", self.rv));
            object["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        let kind = if live.is_some() { "MODIFIED" } else { "ADDED" };
        self.objects.insert(
            key.clone(),
            Stored {
                object: object.clone(),
                owners,
            },
        );
        self.event(r, ns, kind, object.clone());
        if r.plural == "deployments" {
            self.roll_out(&key);
        }
        object
    }

    pub(super) fn event(&mut self, r: &Resource, ns: &str, kind: &'static str, object: Value) {
        self.events.push(Event {
            rv: self.rv,
            plural: r.plural,
            namespace: ns.to_owned(),
            kind,
            object,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let labels = json!({"a": "1", "b": "2"});
        assert!(matches(Some("a=1,b"), &labels));
        assert!(matches(Some("a==1,!c,b!=3"), &labels));
        assert!(!matches(Some("a=2"), &labels));
        assert!(!matches(Some("c"), &labels));
        assert!(matches(None, &labels));
    }
}
