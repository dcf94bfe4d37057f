//! The reconciler: turns the desired state in a namespace's git branch into what runs.
//!
//! It owns the plan engine, the work queue, quotas and the runtimes; what a tenant repo
//! means is `micro-tenant`'s (re-exported here for the crates above). It knows nothing of
//! HTTP and never talks to users; the API and CLI call into it.

pub mod blocking;
pub mod controller;
pub mod metrics;
pub mod plan;
pub mod queue;
pub mod quota;
pub mod runtime;
#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the report
pub mod testing;
pub mod watch;

pub use micro_tenant::{
    change, desired, layout, linked, quantity, render, repo, sources, spec, suspended,
};

pub use controller::{Controller, Outcome, ReconcileError};
pub use desired::{DesiredNamespace, DesiredService, ObservedService};
pub use queue::Trigger;
pub use repo::Repos;
pub use runtime::{Runtime, RuntimeError, RuntimeEvent};
