//! Plans on the wire: `micro diff`, and what a reference would change.

use micro_reconciler::plan::{self, Action, FieldChange, Plan};
use micro_tenant::desired::ServiceModel;
use serde::{Deserialize, Serialize};

/// What a revision would change in what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    pub namespace: String,
    /// The revision the plan moves to.
    pub revision: String,
    pub summary: PlanSummary,
    /// In apply order.
    pub actions: Vec<ActionView>,
    pub unchanged: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl std::fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to delete, {} unchanged",
            self.create, self.update, self.delete, self.unchanged
        )
    }
}

/// One step: a service created (every field it sets as a change from nothing), updated
/// (the fields that differ) or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ActionView {
    Create {
        name: String,
        revision: String,
        changes: Vec<FieldChangeView>,
    },
    Update {
        name: String,
        revision: String,
        /// The revision running now.
        from_revision: String,
        changes: Vec<FieldChangeView>,
    },
    Delete {
        name: String,
        /// The revision running now.
        revision: String,
    },
    /// A kind of step this client does not know yet (a newer server).
    #[serde(other)]
    Unknown,
}

/// One field that differs; values as git holds them (config as versions, never values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChangeView {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl From<FieldChange> for FieldChangeView {
    fn from(c: FieldChange) -> Self {
        FieldChangeView {
            field: c.field,
            from: c.from,
            to: c.to,
        }
    }
}

impl PlanView {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

impl From<Plan> for PlanView {
    fn from(p: Plan) -> Self {
        let s = p.summary();
        let summary = PlanSummary {
            create: s.create,
            update: s.update,
            delete: s.delete,
            unchanged: s.unchanged,
        };
        let views = |changes: Vec<FieldChange>| changes.into_iter().map(Into::into).collect();
        let actions = p
            .actions
            .into_iter()
            .map(|a| match a {
                Action::Create { service } => ActionView::Create {
                    changes: views(plan::changes(&ServiceModel::default(), &service.model)),
                    name: service.name,
                    revision: service.revision,
                },
                Action::Update {
                    service,
                    from_revision,
                    changes,
                } => ActionView::Update {
                    name: service.name,
                    revision: service.revision,
                    from_revision,
                    changes: views(changes),
                },
                Action::Delete { name, revision } => ActionView::Delete { name, revision },
            })
            .collect();
        PlanView {
            namespace: p.namespace,
            revision: p.revision,
            summary,
            actions,
            unchanged: p.unchanged,
        }
    }
}
