//! Inbound events: the git smart-HTTP endpoint at `/git/<namespace>.git`, which
//! authenticates the caller, checks the namespace, and hands the request to the installed
//! `git http-backend` (pushes are validated by the repo's pre-receive hook); and, for the
//! forges' webhooks, which forge sent a delivery and whether it is signed (`forge.rs`).
//!
//! It applies nothing: a branch change reaches the reconciler through the ref watcher.

mod auth;
mod cgi;
pub mod events;
pub mod forge;
mod git_http;

pub use git_http::{GitState, router};
