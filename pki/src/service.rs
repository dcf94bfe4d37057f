//! The platform calling a service that serves TLS with its identity: the platform
//! presents its own client certificate (`spiffe://<trust domain>/platform`) and takes
//! the service only if its certificate comes from the platform CA and names exactly the
//! service called. Services are named by URI, not by host: the address is the runtime's.

use crate::{Ca, Identity, Issued, PkiError, files};
use rcgen::SanType;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;

/// The URI the platform's own client certificate names: a service that serves TLS sees
/// it on every call the platform forwards (`micro call`, a sibling's call).
pub fn platform_uri(trust_domain: &str) -> String {
    format!("spiffe://{trust_domain}/platform")
}

impl Ca {
    /// The platform's client certificate, valid `days`.
    pub fn issue_platform_client(&self, trust_domain: &str, days: i64) -> Result<Issued, PkiError> {
        let uri = platform_uri(trust_domain)
            .try_into()
            .map_err(|e| PkiError::invalid("the platform's identity", e))?;
        self.issue_client_with("micro platform", vec![SanType::URI(uri)], days)
    }
}

/// The platform as a client of services that serve TLS: its own certificate, made once,
/// and per service a configuration presenting it that takes only that service.
pub struct PlatformClient {
    ca_pem: String,
    client: Issued,
    trust_domain: String,
}

impl std::fmt::Debug for PlatformClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never prints.
        f.debug_struct("PlatformClient")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl PlatformClient {
    /// The platform's client certificate from `ca`, valid `days`.
    pub fn new(ca: &Ca, trust_domain: &str, days: i64) -> Result<Self, PkiError> {
        Ok(PlatformClient {
            ca_pem: ca.cert_pem().to_owned(),
            client: ca.issue_platform_client(trust_domain, days)?,
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// How to call `service` of `namespace`: taking only its certificate.
    pub fn config_for(
        &self,
        namespace: &str,
        service: &str,
    ) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let identity = Identity {
            trust_domain: self.trust_domain.clone(),
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            deployment: String::new(),
        };
        client_config_for_service(&self.ca_pem, &self.client, &identity)
    }
}

/// A client presenting `client` (PEM) that takes only a server whose certificate
/// chains to `ca_pem` and names `service` (its SPIFFE URI); the host name is not checked.
pub fn client_config_for_service(
    ca_pem: &str,
    client: &Issued,
    service: &Identity,
) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let provider = crate::provider();
    let verifier = ServiceVerifier {
        roots: Arc::new(files::roots(ca_pem, "the platform CA")?),
        uri: service.uri(),
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(
            files::certs(&client.cert_pem, "the platform's client certificate")?,
            files::key(&client.key_pem, "the platform's client key")?,
        )?;
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct ServiceVerifier {
    roots: Arc<rustls::RootCertStore>,
    /// The one identity taken.
    uri: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for ServiceVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match crate::identity_of(end_entity) {
            Some(id) if id.uri() == self.uri => Ok(ServerCertVerified::assertion()),
            Some(id) => Err(rustls::Error::General(format!(
                "the service's certificate names {}, not {}",
                id.uri(),
                self.uri
            ))),
            None => Err(rustls::Error::General(format!(
                "the service's certificate names no service, not {}",
                self.uri
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
