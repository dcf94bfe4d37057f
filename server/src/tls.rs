//! The server's TLS: the platform CA and a certificate for the names it listens on (or
//! the operator's files), plain HTTP only on loopback and only when asked; the files
//! services trust; the issuer of services' certificate identities.

use crate::error::{Context, Result};
use micro_pki::{Ca, CertSource};
use micro_reconciler::controller::IdentityIssuer;
use micro_runtime::Pem;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct TlsArgs {
    /// Serve with this certificate (PEM, leaf first) instead of one from the platform CA;
    /// read again whenever it changes
    #[arg(long, env = "MICRO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM)
    #[arg(long, env = "MICRO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also accept TLS 1.2 clients (TLS 1.3 only by default)
    #[arg(long, env = "MICRO_TLS12")]
    pub tls12: bool,
    /// Serve plain HTTP instead of HTTPS (loopback addresses only): tokens, config values
    /// and pushes then travel in clear
    #[arg(long, env = "MICRO_INSECURE_HTTP", conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    /// The SPIFFE trust domain of services' certificates
    /// (`spiffe://<domain>/ns/<namespace>/svc/<name>`)
    #[arg(long, env = "MICRO_TRUST_DOMAIN", default_value = "micro.local")]
    pub trust_domain: String,
    /// How long a service's certificate is valid; running services get a new one at half
    /// that, without a restart
    #[arg(long, env = "MICRO_IDENTITY_LIFETIME", default_value = "24h", value_parser = identity_lifetime)]
    pub identity_lifetime: std::time::Duration,
}

/// A certificate lifetime: renewals come at half of it, so not less than two seconds.
fn identity_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let lifetime = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if lifetime < std::time::Duration::from_secs(2) {
        return Err("must be at least 2s".into());
    }
    Ok(lifetime)
}

/// How the server speaks.
pub struct ServerTls {
    /// `None`: plain HTTP (`--insecure-http`).
    pub config: Option<Arc<rustls::ServerConfig>>,
    /// The platform CA, which the CLI environment written at start pins (none with the
    /// operator's own certificate: clients trust it as any public one).
    pub ca_pem: Option<String>,
    /// The platform CA, which also issues services' identities (none without it).
    pub ca: Option<Arc<Ca>>,
    /// The platform's client certificate from it, for calling and checking services that
    /// serve TLS.
    pub platform_client: Option<Arc<micro_pki::PlatformClient>>,
}

impl ServerTls {
    pub fn scheme(&self) -> &'static str {
        if self.config.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Days the platform's client certificate is valid; each start makes a new one.
const PLATFORM_CLIENT_DAYS: i64 = 397;

/// Days the server's certificate from the platform CA is valid; a start issues a new one.
const SERVER_CERT_DAYS: i64 = 397;

impl TlsArgs {
    /// The server's TLS, from the flags; `hosts` are the names clients are given for it
    /// (`--public-url`'s, `--platform-url`'s).
    pub fn server(&self, data: &Path, local: SocketAddr, hosts: &[String]) -> Result<ServerTls> {
        if self.insecure_http {
            if !local.ip().is_loopback() {
                bail!(
                    "--insecure-http serves loopback addresses only ({local} is not one): use TLS, the default"
                );
            }
            tracing::warn!(
                "--insecure-http: PLAIN HTTP. Tokens, config values and pushes travel in clear"
            );
            eprintln!(
                "warning: --insecure-http: this server speaks PLAIN HTTP on {local}; tokens, config values and pushes travel in clear"
            );
            return Ok(ServerTls {
                config: None,
                ca_pem: None,
                ca: None,
                platform_client: None,
            });
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            crate::files::private_file(key, "--tls-key")?;
            let config = micro_pki::server_config(
                CertSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                self.tls12,
                None,
            )?;
            return Ok(ServerTls {
                config: Some(config),
                ca_pem: None,
                ca: None,
                platform_client: None,
            });
        }
        let ca = Ca::load_or_create(&ca_dir(data))
            .context("the platform CA (under the data dir's tls/)")?;
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !local.ip().is_unspecified() {
            names.push(local.ip().to_string());
        }
        names.extend(hosts.iter().cloned());
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            let host = host.trim();
            if !host.is_empty() {
                names.push(host.to_owned());
            }
        }
        names.sort();
        names.dedup();
        let issued = ca.issue_server(&names, SERVER_CERT_DAYS)?;
        // Services present certificates from the same CA as their identity (mTLS).
        let config =
            micro_pki::server_config(CertSource::Issued(issued), self.tls12, Some(ca.cert_pem()))?;
        let platform_client =
            micro_pki::PlatformClient::new(&ca, &self.trust_domain, PLATFORM_CLIENT_DAYS)
                .context("the platform's client certificate")?;
        Ok(ServerTls {
            config: Some(config),
            ca_pem: Some(ca.cert_pem().to_owned()),
            ca: Some(Arc::new(ca)),
            platform_client: Some(Arc::new(platform_client)),
        })
    }
}

/// Where the platform CA and the files made from it live in the data dir.
pub fn ca_dir(data: &Path) -> PathBuf {
    data.join("tls")
}

/// What services trust: the system's roots and the platform CA, in one file under the
/// data dir (`tls/trust.pem`); none when the server uses the operator's certificate.
pub fn trust_bundle(data: &Path, ca_pem: Option<&str>) -> Result<Option<PathBuf>> {
    let Some(ca) = ca_pem else {
        return Ok(None);
    };
    let system = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .unwrap_or_default();
    let path = ca_dir(data).join("trust.pem");
    write_public(&path, &format!("{system}\n{ca}"))?;
    Ok(Some(path))
}

/// The platform CA alone, as a file services may read (`MICRO_PLATFORM_CA`: what one
/// serving TLS checks its callers against); none without the platform CA.
pub fn platform_ca_file(data: &Path, ca_pem: Option<&str>) -> Result<Option<PathBuf>> {
    let Some(ca) = ca_pem else {
        return Ok(None);
    };
    let path = ca_dir(data).join("platform-ca.pem");
    write_public(&path, ca)?;
    Ok(Some(path))
}

/// Writes a file every tenant's uid reads (it holds only public certificates).
fn write_public(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

impl ServerTls {
    /// Issues each deployment's certificate identity, if the platform CA serves.
    pub fn identity_issuer(&self, args: &TlsArgs) -> Option<IdentityIssuer> {
        let ca = self.ca.clone()?;
        let trust_domain = args.trust_domain.clone();
        let lifetime = args.identity_lifetime;
        let issue = Arc::new(move |namespace: &str, service: &str, deployment: &str| {
            let identity = micro_pki::Identity {
                trust_domain: trust_domain.clone(),
                namespace: namespace.to_owned(),
                service: service.to_owned(),
                deployment: deployment.to_owned(),
            };
            ca.issue_identity(&identity, lifetime)
                .map(|issued| Pem {
                    cert: issued.cert_pem,
                    key: micro_runtime::Secret::new(issued.key_pem),
                })
                .map_err(|e| e.to_string())
        });
        Some(IdentityIssuer {
            issue,
            lifetime,
            platform: micro_pki::platform_uri(&args.trust_domain),
        })
    }
}
