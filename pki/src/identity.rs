//! Service identities: a short-lived certificate per deployment of a service, from the
//! platform CA, naming the service by a SPIFFE URI (`spiffe://<trust domain>/ns/<ns>/svc/
//! <name>`) and the deployment by its common name. A client presenting one is that
//! deployment of that service, for as long as the platform says the deployment is live.

use crate::{Ca, Issued, PkiError};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
use time::{Duration, OffsetDateTime};

/// Who a service certificate says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub trust_domain: String,
    pub namespace: String,
    pub service: String,
    pub deployment: String,
}

impl Identity {
    pub fn uri(&self) -> String {
        format!(
            "spiffe://{}/ns/{}/svc/{}",
            self.trust_domain, self.namespace, self.service
        )
    }
}

impl Ca {
    /// A certificate and key for `identity`, valid for `lifetime` from now (client and
    /// server use).
    pub fn issue_identity(
        &self,
        identity: &Identity,
        lifetime: std::time::Duration,
    ) -> Result<Issued, PkiError> {
        let now = OffsetDateTime::now_utc();
        let lifetime = Duration::try_from(lifetime)
            .map_err(|e| PkiError::invalid("a certificate lifetime", e))?;
        // A little slack before now for clocks slightly behind ours.
        self.issue_identity_between(identity, now - Duration::minutes(5), now + lifetime)
    }

    pub(crate) fn issue_identity_between(
        &self,
        identity: &Identity,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, identity.deployment.clone());
        params.subject_alt_names = vec![SanType::URI(
            identity
                .uri()
                .try_into()
                .map_err(|e| PkiError::invalid("a service identity", e))?,
        )];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(&params)
    }
}

/// The certificate (DER) a client presented over mTLS, already verified against the
/// platform CA by the handshake: what the listener hands each request.
#[derive(Clone, Debug)]
pub struct ClientCert(pub std::sync::Arc<[u8]>);

impl ClientCert {
    /// The service identity it names in `trust_domain`, if it names one there.
    pub fn identity(&self, trust_domain: &str) -> Option<Identity> {
        identity_of(&self.0).filter(|id| id.trust_domain == trust_domain)
    }
}

/// The identity a (chain-verified) client certificate names, if it names one.
pub fn identity_of(der: &[u8]) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let deployment = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    let sans = cert.subject_alternative_name().ok()??;
    let uri = sans.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => Some(*u),
        _ => None,
    })?;
    let rest = uri.strip_prefix("spiffe://")?;
    let (trust_domain, path) = rest.split_once('/')?;
    let mut parts = path.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("ns"), Some(namespace), Some("svc"), Some(service), None) => Some(Identity {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            deployment,
        }),
        _ => None,
    }
}
