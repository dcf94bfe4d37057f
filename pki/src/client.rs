//! Clients that trust one pinned CA and nothing else (no system roots, no fallback).

use crate::{PkiError, files};
use std::sync::Arc;

/// A client configuration trusting only the CA(s) in `ca_pem`; TLS 1.2 and 1.3.
pub fn client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let roots = files::roots(ca_pem, "the pinned CA")?;
    let config = rustls::ClientConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration pinned to `ca_pem` that presents a certificate (a service's
/// identity) when the server asks.
pub fn client_config_with_identity(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let roots = files::roots(ca_pem, "the pinned CA")?;
    let config = rustls::ClientConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            files::certs(cert_pem, "the identity's certificate")?,
            files::key(key_pem, "the identity's key")?,
        )?;
    Ok(Arc::new(config))
}

/// Checks a server's certificate (DER; no intermediates) against the pinned CA for
/// `host`, now: for clients that verify on their own (libgit2's certificate callback).
pub fn verify_server_cert(ca_pem: &str, der: &[u8], host: &str) -> Result<(), PkiError> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let roots = files::roots(ca_pem, "the pinned CA")?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        crate::provider(),
    )
    .build()
    .map_err(|e| PkiError::invalid("the pinned CA", e))?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| PkiError::invalid(format!("host {host:?}"), e))?;
    verifier
        .verify_server_cert(
            &CertificateDer::from(der.to_vec()),
            &[],
            &name,
            &[],
            UnixTime::now(),
        )
        .map_err(|e| PkiError::invalid(format!("{host}'s certificate"), e))?;
    Ok(())
}
