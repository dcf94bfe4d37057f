//! Inbound events: the git smart-HTTP endpoint at `/git/<namespace>.git`, which
//! authenticates the caller, checks the namespace, and hands the request to the installed
//! `git http-backend` (pushes are validated by the repo's pre-receive hook); and, for the
//! forges' webhooks (`intake.rs`: which forge sent a delivery and whether it is signed,
//! `forge.rs`; what it means, `events.rs`), which queue fetches of linked repos into
//! their namespaces' repos (`follow.rs`).
//!
//! Stripe's billing events (`billing.rs`, checked and read in `stripe.rs`) become account
//! events the server applies.
//!
//! It applies nothing: a branch change reaches the reconciler through the ref watcher.

mod auth;
pub mod billing;
mod cgi;
pub mod events;
pub mod follow;
pub mod forge;
mod git_http;
pub mod intake;
pub mod preview;
mod pulls;
mod report;
pub mod rest;
pub mod stripe;
#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the report
pub mod testing;

pub use follow::{Follower, Target};
pub use git_http::{GitState, router};
pub use intake::HookState;
