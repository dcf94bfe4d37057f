//! What the public edge may route to: each namespace's public services as its last
//! reconcile read them, found by their host's first label (`<service>-<namespace>`).
//! Filled by the controller, read by the edge; no I/O.

use std::collections::{BTreeSet, HashMap};
use std::sync::{PoisonError, RwLock};

/// A host label's service, and whether its namespace is suspended (the edge says so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub namespace: String,
    pub service: String,
    pub suspended: bool,
    /// The largest request body the edge passes on to it, in bytes.
    pub body_limit: u64,
    /// Callers show one of the namespace's API keys.
    pub auth_key: bool,
    /// Whose API keys open it: the namespace's own, or a preview's parent's.
    pub key_namespace: String,
}

/// One public service as a reconcile read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposed {
    pub service: String,
    /// Bytes; 0 for the default.
    pub body_limit: u64,
    pub auth_key: bool,
}

#[derive(Default)]
struct Table {
    /// Host label → its route. A label two namespaces could both form (`a-b` of `c`,
    /// `a` of `b-c`) belongs to whichever claimed it first.
    by_label: HashMap<String, Route>,
    /// Namespace → the labels it holds.
    held: HashMap<String, BTreeSet<String>>,
}

/// The table the controller writes and the edge reads.
#[derive(Default)]
pub struct Exposure {
    table: RwLock<Table>,
}

impl Exposure {
    /// `namespace` now exposes exactly `services` (suspended or not). Returns the
    /// services whose host another namespace already holds: not routed.
    pub fn set(
        &self,
        namespace: &str,
        services: impl IntoIterator<Item = Exposed>,
        suspended: bool,
    ) -> Vec<String> {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let Table { by_label, held } = &mut *table;
        for label in held.remove(namespace).unwrap_or_default() {
            by_label.remove(&label);
        }
        let mut taken = Vec::new();
        let mut mine = BTreeSet::new();
        for Exposed {
            service,
            body_limit,
            auth_key,
        } in services
        {
            let Ok(label) = micro_tenant::spec::public_label(&service, namespace) else {
                continue; // refused at admission; never routed
            };
            if by_label.contains_key(&label) {
                taken.push(service);
                continue;
            }
            by_label.insert(
                label.clone(),
                Route {
                    namespace: namespace.to_owned(),
                    service,
                    suspended,
                    body_limit: match body_limit {
                        0 => micro_tenant::spec::DEFAULT_BODY_LIMIT,
                        n => n,
                    },
                    auth_key,
                    key_namespace: micro_tenant::preview::parent_of(namespace)
                        .unwrap_or(namespace)
                        .to_owned(),
                },
            );
            mine.insert(label);
        }
        if !mine.is_empty() {
            held.insert(namespace.to_owned(), mine);
        }
        taken
    }

    /// The namespace is gone: none of its hosts route any more.
    pub fn remove(&self, namespace: &str) {
        self.set(namespace, [], false);
    }

    /// The route of a host's first label, if a public service holds it.
    pub fn find(&self, label: &str) -> Option<Route> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.by_label.get(label).cloned()
    }

    /// Every host label routed now.
    pub fn labels(&self) -> Vec<String> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.by_label.keys().cloned().collect()
    }

    /// The route of `service` of `namespace`, if it is public and routed (a custom
    /// domain's).
    pub fn find_service(&self, namespace: &str, service: &str) -> Option<Route> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table
            .held
            .get(namespace)?
            .iter()
            .filter_map(|label| table.by_label.get(label))
            .find(|route| route.service == service)
            .cloned()
    }
}

/// The edge's apps domain and port (`--apps-domain`, `--edge-address`): where a public
/// service is reached from outside.
#[derive(Clone, Debug)]
pub struct Apps {
    pub domain: String,
    pub port: u16,
}

impl Apps {
    /// `https://<service>-<namespace>.<domain>[:port]`, when the edge routes that host
    /// to this service now.
    pub fn url(&self, exposure: &Exposure, namespace: &str, service: &str) -> Option<String> {
        let label = micro_tenant::spec::public_label(service, namespace).ok()?;
        let route = exposure.find(&label)?;
        (route.namespace == namespace && route.service == service).then(|| match self.port {
            443 => format!("https://{label}.{}", self.domain),
            port => format!("https://{label}.{}:{port}", self.domain),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(names: &[&str]) -> Vec<Exposed> {
        names
            .iter()
            .map(|n| Exposed {
                service: (*n).to_owned(),
                body_limit: 0,
                auth_key: false,
            })
            .collect()
    }

    #[test]
    fn a_namespace_holds_the_hosts_of_its_public_services_until_it_stops() {
        let e = Exposure::default();
        assert!(e.set("shop", public(&["web", "api"]), false).is_empty());
        let web = e.find("web-shop").unwrap();
        assert_eq!(
            (web.namespace.as_str(), web.service.as_str()),
            ("shop", "web")
        );
        assert!(e.find("api-shop").is_some());
        assert_eq!(e.find("web"), None);
        // A reconcile that no longer exposes `api` takes its host away.
        e.set("shop", public(&["web"]), true);
        assert_eq!(e.find("api-shop"), None);
        let web = e.find("web-shop").unwrap();
        assert!(web.suspended);
        assert_eq!(web.body_limit, micro_tenant::spec::DEFAULT_BODY_LIMIT);
        e.remove("shop");
        assert_eq!(e.find("web-shop"), None);
    }

    #[test]
    fn a_preview_is_opened_by_its_parents_keys_and_no_other_namespace_by_theirs() {
        let e = Exposure::default();
        e.set("shop", public(&["web"]), false);
        e.set("shop-pr-7", public(&["web"]), false);
        assert_eq!(e.find("web-shop").unwrap().key_namespace, "shop");
        let preview = e.find("web-shop-pr-7").unwrap();
        assert_eq!(
            (preview.namespace.as_str(), preview.key_namespace.as_str()),
            ("shop-pr-7", "shop")
        );
    }

    #[test]
    fn a_host_two_namespaces_could_form_stays_with_the_first() {
        let e = Exposure::default();
        assert!(e.set("c", public(&["a-b"]), false).is_empty());
        assert_eq!(e.set("b-c", public(&["a"]), false), vec!["a".to_owned()]);
        assert_eq!(e.find("a-b-c").unwrap().namespace, "c");
        // Once the first lets it go, the other's next reconcile takes it.
        e.remove("c");
        assert!(e.set("b-c", public(&["a"]), false).is_empty());
        assert_eq!(e.find("a-b-c").unwrap().namespace, "b-c");
    }
}
