//! Test doubles, for tests and benchmarks only (a dev-dependency, never a dependency):
//! stand-ins that answer in the documented shapes for what cannot run here. An
//! in-process fake Kubernetes API server (`kubernetes`), and recorders of the SaaS APIs
//! the platform calls: a forge's REST API (`forge`) and Stripe's (`stripe`).
//!
//! No production crate may depend on it; it depends on `micro-kubernetes` only for the
//! label names the fake's pretend controller and field managers share with the runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the report

mod forge;
pub mod kubernetes;
mod serve;
mod stripe;

pub use forge::{Recorded, Recorder};
pub use stripe::{StripeRecorder, StripeSession};
