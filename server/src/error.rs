//! Why the server cannot start: one line naming what is wrong and what to do next.

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServerError(String);

impl ServerError {
    pub fn new(message: impl Into<String>) -> Self {
        ServerError(message.into())
    }
}

pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Says what the server was doing when something failed, as the error's first words.
pub(crate) trait Context<T> {
    fn context(self, what: impl Display) -> Result<T>;
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| ServerError(format!("{what}: {e}")))
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| ServerError(format!("{}: {e}", what())))
    }
}

/// What the libraries the server wires fail with, passed on as they say it.
macro_rules! passed_on {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for ServerError {
            fn from(e: $error) -> Self {
                ServerError(e.to_string())
            }
        })*
    };
}

passed_on!(
    std::io::Error,
    micro_store::StoreError,
    micro_tenant::repo::RepoError,
    micro_runtime::RuntimeError,
    micro_pki::PkiError,
    micro_kubernetes::ConnectError,
    micro_forge::rest::RestError,
    micro_billing::stripe::StripeError,
    tokio::task::JoinError,
    serde_json::Error,
);
