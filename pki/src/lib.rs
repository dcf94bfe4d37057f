//! The platform's certificates: its CA (made on first start, kept in the data dir), the
//! server's certificate for the names it answers to (or the operator's own files,
//! reloaded when they change), and the rustls configurations of both ends: servers that
//! speak TLS 1.3 (1.2 on request), clients that trust one pinned CA and nothing else.
//!
//! It knows nothing of HTTP, git, SQL or runtimes and depends on no sibling crate; the
//! crypto is ring's, passed explicitly, so no process-wide provider is needed.

mod ca;
mod client;
mod error;
mod files;
mod identity;
mod server;
mod service;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use ca::{Ca, Issued};
pub use client::{client_config, client_config_with_identity, verify_server_cert};
pub use error::PkiError;
pub use identity::{ClientCert, Identity, identity_of};
pub use server::{CertSource, HostCerts, server_config, server_config_with_hosts};
pub use service::{PlatformClient, client_config_for_service, platform_uri};

use std::sync::Arc;

/// The crypto every configuration here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's provider too, for libraries that ask the process (reqwest
/// without a configuration of ours). Harmless when one is installed already.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SHA-256 fingerprint of the first certificate in `pem` (a CA's), as `micro env add
/// --ca-fingerprint` takes it and users compare it: `SHA256:` and 64 hex digits.
pub fn fingerprint(pem: &str) -> Result<String, PkiError> {
    let certs = files::certs(pem, "a certificate")?;
    let first = certs
        .first()
        .ok_or_else(|| PkiError::invalid("a certificate", "no certificate in it"))?;
    let sum = sha2_256(first.as_ref());
    Ok(format!(
        "SHA256:{}",
        sum.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

fn sha2_256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
