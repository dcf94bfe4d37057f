//! Forges (GitHub, Gitea and Forgejo, GitLab) for namespaces linked to a repo there:
//! their webhooks (`intake`: which forge sent a delivery and whether it is signed,
//! `forge`; what it means, `events`), the follower that fetches linked branches into
//! their namespaces' repos (`follow`), pull-request previews (`pulls`, `preview`), and
//! what is written back through the forges' REST APIs (`report`, `rest`): commit
//! statuses and the plan comment, with the preview environment's section and status
//! (`environments`).
//!
//! It applies nothing: a fetched branch reaches the reconciler through the ref watcher,
//! and plans are the reconciler's. It knows no runtime and no billing.

mod environments;
pub mod events;
pub mod follow;
pub mod forge;
pub mod intake;
pub mod preview;
mod pulls;
mod report;
pub mod rest;

pub use follow::{Follower, Target};
pub use intake::HookState;
