//! The platform's HTTP API: what the CLI and tenant services talk to (whoami, status,
//! logs, call, admin), and a typed client for it.
//!
//! Every handler authorises the caller against the namespace in its path before it
//! touches anything; a namespace the caller may not see is a 404, like a missing one.
//! It never reads git or runs processes itself: it asks the reconciler and the store.

pub mod billing;
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
pub mod suspension;
pub mod sweep;
pub mod trace;
pub mod types;

pub use error::{ApiError, ERROR_HEADER};
pub use routes::quota::publish as publish_quota;
pub use routes::{forwarding_client, router};
pub use state::{ApiState, FetchLink, RenderManifests, Shared};
