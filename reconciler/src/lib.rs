//! The reconciler: turns the desired state in a namespace's git branch into what runs.
//!
//! It owns the controller, the plan engine, the work queue (generic over its key, with
//! the platform's one retry policy), the ref watch and the metrics; it drives a runtime only through `micro-runtime`'s contract and reads tenant
//! repos only through `micro-tenant`. It knows nothing of HTTP, clusters or processes.

pub mod blocking;
pub mod controller;
pub mod exposure;
pub mod metrics;
pub mod plan;
pub mod queue;
#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the report
pub mod testing;
pub mod watch;

pub use controller::{Controller, Outcome, ReconcileError};
