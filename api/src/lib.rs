//! The platform's HTTP API: what the CLI and tenant services talk to (whoami, status,
//! logs, call, config, store, admin, sign-up), its connection limits (`serve`), and a
//! typed client for it.
//!
//! Every handler authorises the caller against the namespace in its path before it
//! touches anything; a namespace the caller may not see is a 404, like a missing one.
//! It reads and writes tenant repos only through `micro-tenant` (on the blocking pool),
//! and reaches what runs only through the reconciler: it depends on no runtime, no
//! cluster client and no process.

pub mod apps;
mod blocking;
pub mod client;
mod error;
mod extract;
pub mod limiter;
pub mod mail;
mod names;
pub mod namespaces;
mod routes;
pub mod serve;
pub mod service_tls;
mod state;
pub mod sweep;
pub mod trace;
pub mod types;

pub use error::{ApiError, ERROR_HEADER};
pub use routes::quota::publish as publish_quota;
pub use routes::router;
pub use state::{ApiState, FetchLink, MakeBackup, RenderManifests, Rendered, Shared};
