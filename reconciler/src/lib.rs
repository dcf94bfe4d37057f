//! The reconciler: turns the desired state in a namespace's git branch into what runs.
//!
//! It owns the tenant repo format (the one parser and validator every writer and reader
//! shares), the plan engine, the work queue, and the runtimes. It knows nothing of HTTP
//! and never talks to users; the API and CLI call into it.

pub mod controller;
pub mod desired;
pub mod metrics;
pub mod plan;
pub mod quantity;
pub mod queue;
pub mod quota;
pub mod render;
pub mod repo;
pub mod runtime;
pub mod sources;
pub mod spec;
pub mod watch;

pub use controller::{Controller, Outcome, ReconcileError};
pub use desired::{DesiredNamespace, DesiredService, ObservedService};
pub use queue::Trigger;
pub use repo::Repos;
pub use runtime::{Runtime, RuntimeError, RuntimeEvent};
