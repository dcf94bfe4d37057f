//! Test doubles and fixtures, for tests and benchmarks only (a dev-dependency, never a
//! dependency): stand-ins that answer in the documented shapes for what cannot run here
//! (an in-process fake Kubernetes API server, `kubernetes`; recorders of the SaaS APIs
//! the platform calls: a forge's REST API, `forge`, and Stripe's, `stripe`), a throwaway
//! PostgreSQL server from the installed binaries (`postgres`), and one way to commit
//! files into a repo (`commit_files`).
//!
//! No production crate may depend on it; it depends on `micro-kubernetes` only for the
//! label names the fake's pretend controller and field managers share with the runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the report

mod forge;
mod git;
pub mod kubernetes;
pub mod postgres;
mod serve;
mod stripe;

pub use forge::{Recorded, Recorder};
pub use git::{commit_files, commit_to_namespace};
pub use postgres::{PgTls, TempPostgres};
pub use stripe::{StripeRecorder, StripeSession};
