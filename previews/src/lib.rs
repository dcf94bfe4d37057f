//! Preview environments: a pull request's or a branch's head running in a throwaway
//! namespace of its own (`<ns>-pr-<N>`, `<ns>-br-<branch>`), made, rolled and removed
//! like any namespace, within the limits its parent's `previews:` sets (how many at once,
//! for how long, which services, which config) and the admin's previews quota class.
//!
//! [`Previews`] is the one place a preview starts, moves, waits for room or approval,
//! and goes (`lifecycle`); [`phase`] says where one stands from what the store recorded.
//! The reconciler does the rest: a preview is a namespace. This crate must not depend on
//! HTTP, forges or the API: forges and the git host call it and say what it answered.

mod lifecycle;
pub mod phase;

pub use lifecycle::{PreviewError, Previews, Swept};
pub use phase::{Phase, View};
