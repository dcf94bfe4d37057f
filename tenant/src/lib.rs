//! The tenant repo contract: what a namespace's git repository holds and means. The spec
//! model and its parser (every error at `file:line:col`), `config.yaml`, the naming rules,
//! where repos live and which branch is the desired state, the desired state read at a
//! revision, quotas, the one admission of a commit (`admit`), the marks kept beside each
//! repo (`marks`), preview environments' names, settings and scope (`preview`), the
//! forges and what differs between them (`forge`), and writing changes: a change as data,
//! committed, pushed and retried in one place (`change`), and fetches of sources and
//! linked repos through git's own transports.
//!
//! The CLI, the pre-receive hook, the server and the reconciler all read tenant repos
//! through this crate, so they can never disagree on what a push means. It must not do
//! I/O beyond git, the filesystem and git's network transports: no tokio, no HTTP
//! client of its own, no SQL.

pub mod admit;
pub mod change;
pub mod desired;
pub mod detect;
pub mod folder;
pub mod forge;
pub mod layout;
pub mod linked;
pub mod marks;
pub mod pin;
pub mod preview;
pub mod quantity;
pub mod quota;
pub mod render;
pub mod repo;
pub mod sources;
pub mod spec;
pub mod toolchain;
pub mod user_git;

pub use desired::{DesiredNamespace, DesiredService, ObservedService, ServiceModel};
pub use repo::Repos;
