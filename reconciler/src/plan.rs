//! The plan: what must change so that what runs matches what a commit wants, down to the
//! field. Pure (no I/O): the same code serves reconcile, `micro diff` and previews.

use micro_tenant::desired::{DesiredNamespace, DesiredService, ObservedService, ServiceModel};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One field that differs; values are what git holds (never config values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Not running yet.
    Create { service: DesiredService },
    /// Running with other values: replace it.
    Update {
        service: DesiredService,
        from_revision: String,
        changes: Vec<FieldChange>,
    },
    /// Running, owned by the platform, and no longer wanted.
    Delete { name: String, revision: String },
}

impl Action {
    pub fn name(&self) -> &str {
        match self {
            Action::Create { service } | Action::Update { service, .. } => &service.name,
            Action::Delete { name, .. } => name,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub namespace: String,
    /// The revision the plan moves to.
    pub revision: String,
    /// In apply order: deletes first (they free ports and memory), then creates and
    /// updates, each group by name.
    pub actions: Vec<Action>,
    pub unchanged: Vec<String>,
}

/// Counts, for history and one-line reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.create, self.update, self.delete, self.unchanged
        )
    }
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            unchanged: self.unchanged.len(),
            ..Summary::default()
        };
        for a in &self.actions {
            match a {
                Action::Create { .. } => s.create += 1,
                Action::Update { .. } => s.update += 1,
                Action::Delete { .. } => s.delete += 1,
            }
        }
        s
    }
}

/// What one action does, as people read it: its kind, the service, and every field it
/// sets or changes (a create's from nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub name: String,
    /// For an update: the revision running now.
    pub from_revision: Option<String>,
    pub changes: Vec<FieldChange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    Create,
    Update,
    Delete,
}

impl Plan {
    /// The actions as [`Step`]s, in apply order.
    pub fn steps(&self) -> Vec<Step> {
        self.actions
            .iter()
            .map(|a| match a {
                Action::Create { service } => Step {
                    kind: StepKind::Create,
                    name: service.name.clone(),
                    from_revision: None,
                    changes: changes(&ServiceModel::default(), &service.model),
                },
                Action::Update {
                    service,
                    from_revision,
                    changes,
                } => Step {
                    kind: StepKind::Update,
                    name: service.name.clone(),
                    from_revision: Some(from_revision.clone()),
                    changes: changes.clone(),
                },
                Action::Delete { name, .. } => Step {
                    kind: StepKind::Delete,
                    name: name.clone(),
                    from_revision: None,
                    changes: Vec::new(),
                },
            })
            .collect()
    }

    /// What the plan does, as a digest of its steps without revisions: a preview of a
    /// pull request's head and the plan applied for its merge commit are equal exactly
    /// when they change the same fields of the same services the same way.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for step in self.steps() {
            h.update(format!("{:?} {}\n", step.kind, step.name));
            for c in &step.changes {
                h.update(format!("{}={:?}>{:?}\n", c.field, c.from, c.to));
            }
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// Diffs desired against observed.
pub fn plan(desired: &DesiredNamespace, observed: &[ObservedService]) -> Plan {
    let running: BTreeMap<&str, &ObservedService> =
        observed.iter().map(|o| (o.name.as_str(), o)).collect();
    let mut out = Plan {
        namespace: desired.namespace.clone(),
        revision: desired.revision.clone(),
        ..Plan::default()
    };
    for (name, have) in &running {
        if !desired.services.contains_key(*name) {
            out.actions.push(Action::Delete {
                name: (*name).to_owned(),
                revision: have.revision.clone(),
            });
        }
    }
    for (name, want) in &desired.services {
        match running.get(name.as_str()) {
            None => out.actions.push(Action::Create {
                service: want.clone(),
            }),
            Some(have) if have.model != want.model || have.drift.is_some() => {
                let mut changes = changes(&have.model, &want.model);
                if let Some(why) = &have.drift {
                    changes.push(FieldChange {
                        field: "(deployment)".into(),
                        from: Some(why.clone()),
                        to: Some("deployed again".into()),
                    });
                }
                out.actions.push(Action::Update {
                    service: want.clone(),
                    from_revision: have.revision.clone(),
                    changes,
                });
            }
            Some(_) => out.unchanged.push(name.clone()),
        }
    }
    out
}

/// Field-level differences between two models, in a stable order.
pub fn changes(old: &ServiceModel, new: &ServiceModel) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut field = |name: &str, from: Option<String>, to: Option<String>| {
        if from != to {
            out.push(FieldChange {
                field: name.to_owned(),
                from,
                to,
            });
        }
    };
    let code = |m: &ServiceModel| {
        (!m.code.is_empty()).then(|| m.code.get(..12).unwrap_or(&m.code).to_owned())
    };
    field("code", code(old), code(new));
    field("run", old.run.clone(), new.run.clone());
    field("build", old.build.clone(), new.build.clone());
    field("toolchain", old.toolchain.clone(), new.toolchain.clone());
    field("runtime", old.runtime.clone(), new.runtime.clone());
    field("image", old.image.clone(), new.image.clone());
    let source = |m: &ServiceModel| {
        m.source.as_ref().map(|s| {
            let mut text = format!("{}@{}", s.git, s.commit.get(..12).unwrap_or(&s.commit));
            if let Some(p) = &s.path {
                text.push_str(&format!(" path {p}"));
            }
            text
        })
    };
    field("source", source(old), source(new));
    field(
        "port",
        old.port.map(|p| p.to_string()),
        new.port.map(|p| p.to_string()),
    );
    let replicas = |m: &ServiceModel| (m.replicas > 0).then(|| m.replicas.to_string());
    field("replicas", replicas(old), replicas(new));
    let keys: BTreeSet<&String> = old.env.keys().chain(new.env.keys()).collect();
    for k in keys {
        field(
            &format!("env.{k}"),
            old.env.get(k).cloned(),
            new.env.get(k).cloned(),
        );
    }
    let keys: BTreeSet<&String> = old.config.keys().chain(new.config.keys()).collect();
    for k in keys {
        let v = |m: &ServiceModel| m.config.get(k).map(|v| format!("v{v}"));
        field(&format!("config.{k}"), v(old), v(new));
    }
    field("resources.cpu", old.cpu.clone(), new.cpu.clone());
    field("resources.memory", old.memory.clone(), new.memory.clone());
    field(
        "readiness.path",
        old.ready_path.clone(),
        new.ready_path.clone(),
    );
    // The default is not shown, so a spec without `readiness` plans as it always did.
    let timeout = |m: &ServiceModel| {
        (m.ready_timeout > 0 && m.ready_timeout != micro_tenant::spec::DEFAULT_READY_TIMEOUT_SECS)
            .then(|| format!("{}s", m.ready_timeout))
    };
    field("readiness.timeout", timeout(old), timeout(new));
    let build_timeout =
        |m: &ServiceModel| (m.build_timeout > 0).then(|| format!("{}s", m.build_timeout));
    field("build_timeout", build_timeout(old), build_timeout(new));
    let tls = |m: &ServiceModel| m.tls.then(|| "true".to_owned());
    field("tls", tls(old), tls(new));
    let public = |m: &ServiceModel| m.public.then(|| "true".to_owned());
    field("public", public(old), public(new));
    let auth = |m: &ServiceModel| m.auth_key.then(|| "key".to_owned());
    field("auth", auth(old), auth(new));
    let body = |m: &ServiceModel| (m.body_limit > 0).then(|| format!("{} bytes", m.body_limit));
    field("limits.body", body(old), body(new));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ServiceModel {
        ServiceModel {
            code: "c1".into(),
            run: Some("python3 main.py".into()),
            replicas: 1,
            ..ServiceModel::default()
        }
    }

    fn svc(name: &str, model: ServiceModel) -> DesiredService {
        DesiredService {
            name: name.into(),
            model,
            tree: "t".into(),
            revision: "r2".into(),
        }
    }

    fn seen(name: &str, model: ServiceModel) -> ObservedService {
        ObservedService {
            name: name.into(),
            model,
            revision: "r1".into(),
            drift: None,
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

    fn change(field: &str, from: Option<&str>, to: Option<&str>) -> FieldChange {
        FieldChange {
            field: field.into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    #[test]
    fn creates_updates_deletes_in_order_and_leaves_the_rest() {
        let mut changed = model();
        changed.replicas = 2;
        let want = ns(&[
            svc("new", model()),
            svc("same", model()),
            svc("changed", changed.clone()),
        ]);
        let have = [
            seen("same", model()),
            seen("changed", model()),
            seen("gone", model()),
        ];
        let p = plan(&want, &have);
        let names: Vec<&str> = p.actions.iter().map(Action::name).collect();
        assert_eq!(names, vec!["gone", "changed", "new"]);
        assert!(matches!(p.actions[0], Action::Delete { .. }));
        assert_eq!(
            p.actions[1],
            Action::Update {
                service: svc("changed", changed),
                from_revision: "r1".into(),
                changes: vec![change("replicas", Some("1"), Some("2"))],
            }
        );
        assert!(matches!(p.actions[2], Action::Create { .. }));
        assert_eq!(p.unchanged, vec!["same".to_owned()]);
        assert_eq!(
            p.summary(),
            Summary {
                create: 1,
                update: 1,
                delete: 1,
                unchanged: 1
            }
        );
    }

    #[test]
    fn drift_redeploys_an_unchanged_model_and_says_why() {
        let desired = ns(&[svc("x", model())]);
        let mut running = seen("x", model());
        running.drift = Some("its checkout was deleted".into());
        let p = plan(&desired, &[running]);
        let Action::Update { changes, .. } = &p.actions[0] else {
            panic!("{p:?}");
        };
        assert_eq!(
            changes,
            &[change(
                "(deployment)",
                Some("its checkout was deleted"),
                Some("deployed again")
            )]
        );
    }

    #[test]
    fn the_same_model_at_another_revision_is_no_change() {
        // A commit that touches only other services (or the README) restarts nothing.
        let want = ns(&[svc("a", model())]);
        let p = plan(&want, &[seen("a", model())]);
        assert!(p.is_empty());
        assert_eq!(p.unchanged, vec!["a".to_owned()]);
    }

    #[test]
    fn each_field_shows_as_its_own_change() {
        let old = model();
        let mut new = model();
        new.code = "c2".into();
        new.run = Some("python3 -u main.py".into());
        new.build = Some("make".into());
        new.port = Some(8080);
        new.env.insert("GREETING".into(), "hi".into());
        new.cpu = Some("200m".into());
        let fields: Vec<String> = changes(&old, &new).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec![
                "code",
                "run",
                "build",
                "port",
                "env.GREETING",
                "resources.cpu"
            ]
        );
        // Removing a field shows it going away.
        let back = changes(&new, &old);
        assert!(back.contains(&change("env.GREETING", Some("hi"), None)));
        assert!(back.contains(&change("port", Some("8080"), None)));
    }

    #[test]
    fn config_changes_show_versions_never_values() {
        let mut old = model();
        old.config.insert("db.password".into(), 3);
        let mut new = old.clone();
        new.config.insert("db.password".into(), 4);
        new.config.insert("api.key".into(), 1);
        assert_eq!(
            changes(&old, &new),
            vec![
                change("config.api.key", None, Some("v1")),
                change("config.db.password", Some("v3"), Some("v4")),
            ]
        );
    }

    #[test]
    fn exposure_shows_as_a_change_like_any_field() {
        let old = model();
        let mut new = old.clone();
        new.public = true;
        assert_eq!(
            changes(&old, &new),
            vec![change("public", None, Some("true"))]
        );
        let p = plan(&ns(&[svc("x", new)]), &[seen("x", old)]);
        assert_eq!(p.actions.len(), 1, "{p:?}");
    }

    #[test]
    fn json_round_trips() {
        let mut changed = model();
        changed.env.insert("A".into(), "1".into());
        let p = plan(
            &ns(&[svc("x", changed), svc("y", model())]),
            &[seen("x", model()), seen("z", model())],
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["actions"][0]["action"], "delete");
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
