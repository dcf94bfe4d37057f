//! TLS for the CLI: API clients and git that trust the environment's pinned CA and
//! nothing else. (The server's TLS is `micro-server`'s.)

use crate::home::Env;
use anyhow::Result;
use micro_api::client::Client;
use std::sync::Arc;

/// An API client for `env` (its pinned CA, if any).
pub fn client(env: &Env, token: Option<String>) -> Result<Client> {
    Ok(Client::pinned(&env.url, token, env.ca.as_deref())?)
}

/// libgit2's certificate check for `env`'s pinned CA, if it has one.
pub fn cert_check(env: &Env) -> Option<micro_tenant::change::CertCheck> {
    let ca = env.ca.clone()?;
    Some(micro_tenant::change::CertCheck(Arc::new(
        move |der: &[u8], host: &str| {
            micro_pki::verify_server_cert(&ca, der, host).map_err(|e| e.to_string())
        },
    )))
}
