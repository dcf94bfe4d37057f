//! Clients that trust one pinned CA and nothing else (no system roots, no fallback).

use crate::{PkiError, files};
use std::sync::Arc;

/// A client configuration trusting only the CA(s) in `ca_pem`; TLS 1.2 and 1.3.
pub fn client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in files::certs(ca_pem, "the pinned CA")? {
        roots
            .add(cert)
            .map_err(|e| PkiError::invalid("the pinned CA", e))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
