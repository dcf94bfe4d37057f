//! Git hosting: the smart-HTTP endpoint at `/git/<namespace>.git` (`endpoint`), which
//! authenticates the caller, checks the namespace and the push rate, and hands the
//! request to the installed `git http-backend` (`cgi`); and the pre-receive hook's logic
//! (`hook`), which `micro hook` runs inside git's process to admit a push.
//!
//! It applies nothing: a branch change reaches the reconciler through the ref watcher.
//! It depends on the store (who may push) and the tenant contract (what a push means),
//! never on a runtime or the reconciler.

mod auth;
mod cgi;
mod endpoint;
pub mod hook;

pub use endpoint::{GitState, Pushed, router};
