//! The plan: what must change so that what runs matches what a commit wants. Pure: no I/O.

use crate::desired::{DesiredNamespace, DesiredService, ObservedService};
use std::collections::BTreeMap;

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Not running yet.
    Create(DesiredService),
    /// Running a different fingerprint (code or spec changed): replace it.
    Update {
        desired: DesiredService,
        from_revision: String,
    },
    /// Running but no longer wanted.
    Delete { name: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Deletes first (they free ports and memory), then creates and updates, each by name.
    pub actions: Vec<Action>,
    pub unchanged: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Diffs desired against observed.
pub fn plan(desired: &DesiredNamespace, observed: &[ObservedService]) -> Plan {
    let running: BTreeMap<&str, &ObservedService> =
        observed.iter().map(|o| (o.name.as_str(), o)).collect();
    let mut out = Plan::default();
    for name in running.keys() {
        if !desired.services.contains_key(*name) {
            out.actions.push(Action::Delete {
                name: (*name).to_owned(),
            });
        }
    }
    for (name, want) in &desired.services {
        match running.get(name.as_str()) {
            None => out.actions.push(Action::Create(want.clone())),
            Some(have) if have.fingerprint != want.fingerprint() => {
                out.actions.push(Action::Update {
                    desired: want.clone(),
                    from_revision: have.revision.clone(),
                })
            }
            Some(_) => out.unchanged.push(name.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ServiceSpec;

    fn svc(name: &str, tree: &str) -> DesiredService {
        DesiredService {
            name: name.into(),
            spec: ServiceSpec::default(),
            tree: tree.into(),
            revision: "r2".into(),
        }
    }

    fn seen(name: &str, fp: &str) -> ObservedService {
        ObservedService {
            name: name.into(),
            fingerprint: fp.into(),
            revision: "r1".into(),
        }
    }

    fn ns(services: &[DesiredService]) -> DesiredNamespace {
        DesiredNamespace {
            namespace: "a".into(),
            revision: "r2".into(),
            services: services
                .iter()
                .map(|s| (s.name.clone(), s.clone()))
                .collect(),
        }
    }

    #[test]
    fn creates_updates_deletes_and_leaves_the_rest() {
        let want = ns(&[svc("new", "t1"), svc("same", "t2"), svc("changed", "t3")]);
        let have = [
            seen("same", "t2"),
            seen("changed", "old"),
            seen("gone", "t4"),
        ];
        let p = plan(&want, &have);
        assert_eq!(
            p.actions,
            vec![
                Action::Delete {
                    name: "gone".into()
                },
                Action::Update {
                    desired: svc("changed", "t3"),
                    from_revision: "r1".into()
                },
                Action::Create(svc("new", "t1")),
            ]
        );
        assert_eq!(p.unchanged, vec!["same".to_owned()]);
    }

    #[test]
    fn matching_state_plans_nothing() {
        let want = ns(&[svc("a", "t1"), svc("b", "t2")]);
        let p = plan(&want, &[seen("b", "t2"), seen("a", "t1")]);
        assert!(p.is_empty());
        assert_eq!(p.unchanged.len(), 2);
    }
}
