//! What the platform fetches over the network on a tenant's behalf, under one address
//! policy ([`micro_tenant::sources::SourcePolicy`]): git over smart HTTP (sources and
//! linked repos) and the forges' REST APIs (with [`http`], which Stripe's client
//! shares). The platform makes these requests from inside the operator's network to
//! addresses a tenant chose, so:
//! - no redirect is ever followed (a "public" host answering 302 to `127.0.0.1` made
//!   libgit2 fetch from the platform's own loopback);
//! - every address a name resolves to is checked where the connection is made
//!   ([`CheckedResolver`]), and only checked addresses are connected to: no second DNS
//!   lookup an attacker's name server could answer differently;
//! - connections and reads time out.
//!
//! libgit2's own HTTP transport allows neither the check nor the pin, so fetches go through
//! a transport of our own ([`register`]), the smart protocol over reqwest. Depends on
//! `micro-tenant` (the policy) only; nothing of the platform's runtime or API.

pub mod http;
mod resolve;
mod transport;

pub use resolve::CheckedResolver;
pub use transport::{Exchange, describe, register};

/// How long a connection may take to open, and a read to come.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
