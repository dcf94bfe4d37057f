//! Servers: TLS 1.3 (1.2 on request), HTTP/1.1, with a certificate the platform CA issued
//! or the operator's own files, which are read again when they change (checked at most
//! every two seconds, at a handshake), so a renewed certificate needs no restart.

use crate::{Issued, PkiError, files};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Where the server's certificate comes from.
pub enum CertSource {
    /// Issued by the platform CA at start.
    Issued(Issued),
    /// The operator's PEM files (`--tls-cert`, `--tls-key`).
    Files { cert: PathBuf, key: PathBuf },
}

/// A chain and its key, as rustls serves them; not checked against each other.
fn unchecked(cert_pem: &str, key_pem: &str, what: &str) -> Result<CertifiedKey, PkiError> {
    let chain = files::certs(cert_pem, what)?;
    let key = files::key(key_pem, what)?;
    let signing = crate::provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| PkiError::invalid(what, e))?;
    Ok(CertifiedKey::new(chain, signing))
}

fn certified(cert_pem: &str, key_pem: &str, what: &str) -> Result<Arc<CertifiedKey>, PkiError> {
    let certified = unchecked(cert_pem, key_pem, what)?;
    // The key must be the certificate's, or every handshake would fail later.
    certified
        .keys_match()
        .map_err(|e| PkiError::invalid(what, e))?;
    Ok(Arc::new(certified))
}

/// The current certificate, and the files it came from (if any) with their times.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
    files: Option<(PathBuf, PathBuf)>,
    /// When the files were last looked at, and their modification times then.
    checked: Mutex<(Instant, Option<SystemTime>, Option<SystemTime>)>,
}

pub(crate) const RECHECK: Duration = Duration::from_secs(2);

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Resolver {
    fn reload_if_changed(&self) {
        let Some((cert, key)) = &self.files else {
            return;
        };
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked.0.elapsed() < RECHECK {
            return;
        }
        let times = (modified(cert), modified(key));
        checked.0 = Instant::now();
        if (checked.1, checked.2) == times {
            return;
        }
        let loaded = files::read(cert).and_then(|c| {
            files::read(key).and_then(|k| certified(&c, &k, &cert.display().to_string()))
        });
        match loaded {
            Ok(new) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = new;
                (checked.1, checked.2) = times;
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
            }
            // Half-written files (a renewal in progress): keep serving the old pair.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the old one")
            }
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.reload_if_changed();
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Certificates for single hosts (the edge's custom domains), chosen by the name a
/// client asks for (SNI) before the server's own certificate.
#[derive(Debug, Default)]
pub struct HostCerts {
    by_host: RwLock<std::collections::HashMap<String, Arc<CertifiedKey>>>,
    /// TLS-ALPN-01 answers (RFC 8737), given only to handshakes offering `acme-tls/1`.
    challenges: RwLock<std::collections::HashMap<String, Arc<CertifiedKey>>>,
}

/// The ALPN protocol of an ACME CA checking a host (RFC 8737).
const ACME_TLS: &[u8] = b"acme-tls/1";

impl HostCerts {
    /// Serves `cert_pem` (leaf first) with `key_pem` for `host` from the next handshake on.
    pub fn set(&self, host: &str, cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
        let certified = certified(cert_pem, key_pem, host)?;
        self.by_host
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_ascii_lowercase(), certified);
        Ok(())
    }

    /// Answers `acme-tls/1` handshakes for `host` with `cert_pem` until removed.
    pub fn set_challenge(&self, host: &str, cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
        // Not checked against its key as the others are: the check parses the certificate
        // with webpki, which refuses its critical acmeIdentifier extension (made here,
        // with that key, a moment ago).
        let certified = Arc::new(unchecked(cert_pem, key_pem, host)?);
        self.challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_ascii_lowercase(), certified);
        Ok(())
    }

    /// `host`'s order is over.
    pub fn remove_challenge(&self, host: &str) {
        self.challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&host.to_ascii_lowercase());
    }

    /// Keeps only the hosts `keep` says to.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.by_host
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|host, _| keep(host));
    }

    /// Whether `host` has a certificate here.
    pub fn has(&self, host: &str) -> bool {
        self.get(host).is_some()
    }

    fn get(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.by_host
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&host.to_ascii_lowercase())
            .cloned()
    }
}

/// A host's own certificate if it has one, else the server's.
#[derive(Debug)]
struct ByHost {
    hosts: Arc<HostCerts>,
    fallback: Resolver,
}

impl ResolvesServerCert for ByHost {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // An ACME CA checking a host gets that host's challenge certificate or nothing.
        if hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS))
        {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self
                .hosts
                .challenges
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&name)
                .cloned();
        }
        if let Some(cert) = hello.server_name().and_then(|name| self.hosts.get(name)) {
            return Some(cert);
        }
        self.fallback.resolve(hello)
    }
}

/// A server configuration: TLS 1.3, and 1.2 too with `allow_tls12`; HTTP/1.1. With
/// `client_ca`, clients may present a certificate (a service identity), which must then
/// chain to that CA and be valid now; clients without one are let through to other
/// authentication.
pub fn server_config(
    source: CertSource,
    allow_tls12: bool,
    client_ca: Option<&str>,
) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let resolver = resolver(source)?;
    let builder = builder(allow_tls12, client_ca)?;
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The edge's configuration: TLS 1.3, HTTP/2 or HTTP/1.1, each host of `hosts` with its own
/// certificate and every other name with `source`'s.
pub fn server_config_with_hosts(
    source: CertSource,
    hosts: Arc<HostCerts>,
) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let fallback = resolver(source)?;
    let mut config = builder(false, None)?.with_cert_resolver(Arc::new(ByHost { hosts, fallback }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS.to_vec()];
    Ok(Arc::new(config))
}

fn resolver(source: CertSource) -> Result<Resolver, PkiError> {
    Ok(match source {
        CertSource::Issued(issued) => Resolver {
            current: RwLock::new(certified(
                &issued.cert_pem,
                &issued.key_pem,
                "the server's certificate",
            )?),
            files: None,
            checked: Mutex::new((Instant::now(), None, None)),
        },
        CertSource::Files { cert, key } => {
            let what = cert.display().to_string();
            let current = certified(&files::read(&cert)?, &files::read(&key)?, &what)?;
            let times = (modified(&cert), modified(&key));
            Resolver {
                current: RwLock::new(current),
                files: Some((cert, key)),
                checked: Mutex::new((Instant::now(), times.0, times.1)),
            }
        }
    })
}

fn builder(
    allow_tls12: bool,
    client_ca: Option<&str>,
) -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>, PkiError>
{
    let versions: &[&rustls::SupportedProtocolVersion] = if allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = rustls::ServerConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(versions)?;
    Ok(match client_ca {
        Some(ca) => {
            let roots = files::roots(ca, "the client CA")?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                crate::provider(),
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| PkiError::invalid("the client CA", e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    })
}
