//! The platform CA: one self-signed ECDSA P-256 certificate, made on first start under
//! `<data dir>/tls/` (`ca.pem`, and `ca.key` readable by the owner only), valid ten years.
//! The CLI pins it; it issues the server's certificate.

use crate::{PkiError, files};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// A certificate and its key, both PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// The platform's certificate authority.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
}

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";

impl Ca {
    /// The CA in `dir`, made there first if it is not.
    pub fn load_or_create(dir: &Path) -> Result<Ca, PkiError> {
        let io = |source| PkiError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
        if cert.exists() && key.exists() {
            let ca = Ca {
                cert_pem: files::read(&cert)?,
                key_pem: files::read(&key)?,
            };
            // A damaged file is said at start, not at the first handshake.
            ca.issuer()?;
            return Ok(ca);
        }
        let signing = KeyPair::generate()?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        // Named after its own key, so two platforms' CAs never share a name.
        let id: String = signing
            .public_key_raw()
            .iter()
            .rev()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("micro platform CA {id}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        let made = params.self_signed(&signing)?;
        let ca = Ca {
            cert_pem: made.pem(),
            key_pem: signing.serialize_pem(),
        };
        // The key first: a certificate without its key would be "complete" next start.
        files::write(&key, &ca.key_pem, true)?;
        files::write(&cert, &ca.cert_pem, false)?;
        tracing::info!(dir = %dir.display(), "made the platform CA");
        Ok(ca)
    }

    /// The CA certificate (what clients pin).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&self.key_pem)
            .map_err(|e| PkiError::invalid("the platform CA's key", e))?;
        Issuer::from_ca_cert_pem(&self.cert_pem, key)
            .map_err(|e| PkiError::invalid("the platform CA's certificate", e))
    }

    /// A server certificate for `names` (host names and IP addresses), valid `days`.
    pub fn issue_server(&self, names: &[String], days: i64) -> Result<Issued, PkiError> {
        let now = OffsetDateTime::now_utc();
        self.issue(names, now - Duration::hours(1), now + Duration::days(days))
    }

    /// A client certificate for a user named `common_name`, valid `days`: what a
    /// database's certificate authentication (PostgreSQL's `cert`) checks.
    pub fn issue_client(&self, common_name: &str, days: i64) -> Result<Issued, PkiError> {
        self.issue_client_with(common_name, Vec::new(), days)
    }

    /// A client certificate for `common_name` with `names` as its alternative names.
    pub(crate) fn issue_client_with(
        &self,
        common_name: &str,
        names: Vec<rcgen::SanType>,
        days: i64,
    ) -> Result<Issued, PkiError> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name.to_owned());
        params.subject_alt_names = names;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(days);
        self.sign(&params)
    }

    /// A new key and its certificate as `params` describe, signed by this CA.
    pub(crate) fn sign(&self, params: &CertificateParams) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    pub(crate) fn issue(
        &self,
        names: &[String],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_else(|| "micro".into()),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(&params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_kept_private_and_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let first = Ca::load_or_create(&tls).unwrap();
        let mode = std::fs::metadata(tls.join(CA_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's alone");
        let again = Ca::load_or_create(&tls).unwrap();
        assert_eq!(first.cert_pem(), again.cert_pem());
        std::fs::write(tls.join(CA_KEY), "not a key").unwrap();
        let err = Ca::load_or_create(&tls).err().unwrap().to_string();
        assert!(err.contains("the platform CA's key"), "{err}");
    }
}
