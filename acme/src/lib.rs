//! Certificates from an ACME CA (RFC 8555, through `instant-acme`) for the edge's hosts:
//! one account, kept in the data dir (0600) and reused; an order per host, proved by
//! HTTP-01 through [`Challenges`], which the edge answers on its plain-HTTP listener, or
//! by TLS-ALPN-01 (RFC 8737) through a [`TlsAlpnResponder`] the edge's TLS answers with,
//! when it has no plain-HTTP listener; each certificate and its key written 0600 beside
//! the account. Every exchange with
//! the CA is bounded in time. It must not depend on the store, the API or the edge: the
//! server hands it hosts and serves what it wrote.

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Longest one certificate may take, from the order to the chain.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest the CA may take to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong getting a certificate, in words for `micro domains list`.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("the ACME CA: {0}")]
    Ca(#[from] instant_acme::Error),
    #[error("the ACME CA did not answer in time")]
    Timeout,
    #[error("the ACME CA refused: {0}")]
    Refused(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("the certificate the ACME CA sent: {0}")]
    Certificate(String),
}

/// HTTP-01 answers under way: token → key authorization, served at
/// `/.well-known/acme-challenge/<token>` while the CA checks it.
#[derive(Debug, Default)]
pub struct Challenges(RwLock<HashMap<String, String>>);

impl Challenges {
    /// The answer for `token`, while its order is under way.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    fn put(&self, token: &str, answer: &str) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.to_owned(), answer.to_owned());
    }

    fn remove(&self, tokens: &[String]) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        for token in tokens {
            map.remove(token);
        }
    }
}

/// Where a TLS-ALPN-01 answer is published: a handshake for the host that offers
/// `acme-tls/1` gets this certificate (and nothing else does), until it is removed.
pub trait TlsAlpnResponder: Send + Sync {
    /// Serves `cert_pem`/`key_pem` to `acme-tls/1` handshakes for `host`.
    fn put(&self, host: &str, cert_pem: &str, key_pem: &str);
    /// The order for `host` is over.
    fn remove(&self, host: &str);
}

/// How hosts are proved to the CA.
pub enum Proof {
    /// `/.well-known/acme-challenge/<token>` over plain HTTP on port 80.
    Http01,
    /// A certificate for `acme-tls/1` on port 443.
    TlsAlpn01(Arc<dyn TlsAlpnResponder>),
}

impl Proof {
    /// As `micro domains list` says it.
    pub fn name(&self) -> &'static str {
        match self {
            Proof::Http01 => "http-01",
            Proof::TlsAlpn01(_) => "tls-alpn-01",
        }
    }
}

/// The self-signed certificate RFC 8737 asks for: `host` as its one name, and the key
/// authorization's digest in the critical acmeIdentifier extension.
fn tls_alpn_certificate(host: &str, digest: &[u8]) -> Result<(String, String), AcmeError> {
    let refused = |e: rcgen::Error| AcmeError::Certificate(e.to_string());
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(refused)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(refused)?;
    let cert = params.self_signed(&key).map_err(refused)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A certificate for one host, as issued and stored.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// Leaf first.
    pub chain_pem: String,
    pub key_pem: String,
    /// Seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
}

impl Certificate {
    fn parse(chain_pem: String, key_pem: String) -> Result<Self, AcmeError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes())
            .map_err(|e| AcmeError::Certificate(e.to_string()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| AcmeError::Certificate(e.to_string()))?;
        let validity = cert.validity();
        Ok(Certificate {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            chain_pem,
            key_pem,
        })
    }

    /// When to renew it: two thirds through its life (seconds since the epoch).
    pub fn renew_at(&self) -> i64 {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }
}

/// The platform's account with one ACME CA, and where its certificates are kept.
pub struct Acme {
    account: Account,
    dir: PathBuf,
    challenges: Arc<Challenges>,
    proof: Proof,
}

impl Acme {
    /// The account with the CA at `directory` kept in `dir` (made, and registered with
    /// `email` as its contact, on first use). `ca_file`: the CA's own TLS root when it is
    /// not publicly trusted (a test CA such as Pebble). HTTP-01 answers go to
    /// `challenges` unless `proof` says TLS-ALPN-01.
    pub async fn open(
        directory: &str,
        email: Option<&str>,
        ca_file: Option<&Path>,
        dir: &Path,
        challenges: Arc<Challenges>,
        proof: Proof,
    ) -> Result<Self, AcmeError> {
        create_private_dir(dir)?;
        let builder = || match ca_file {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        let saved = dir.join("account.json");
        let kept = std::fs::read(&saved)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
            .filter(|stored| stored.directory == directory);
        let account = match kept {
            Some(stored) => timed(builder()?.from_credentials(stored.credentials)).await??,
            None => {
                let contact = email.map(|e| format!("mailto:{e}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let (account, credentials) = timed(builder()?.create(
                    &NewAccount {
                        contact: &contacts,
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    directory.to_owned(),
                    None,
                ))
                .await??;
                let stored = Stored {
                    directory: directory.to_owned(),
                    credentials,
                };
                let json = serde_json::to_vec(&stored)
                    .map_err(|e| AcmeError::Io(saved.display().to_string(), e.into()))?;
                write_private(&saved, &json)?;
                account
            }
        };
        Ok(Acme {
            account,
            dir: dir.to_owned(),
            challenges,
            proof,
        })
    }

    /// How this account proves hosts.
    pub fn proof(&self) -> &'static str {
        self.proof.name()
    }

    /// A new certificate for `host`, proved by HTTP-01, and kept for [`Acme::stored`].
    pub async fn issue(&self, host: &str) -> Result<Certificate, AcmeError> {
        let mut tokens = Vec::new();
        let issued = tokio::time::timeout(ISSUE_TIMEOUT, self.order(host, &mut tokens)).await;
        self.challenges.remove(&tokens);
        if let Proof::TlsAlpn01(responder) = &self.proof {
            responder.remove(host);
        }
        let cert = issued.map_err(|_| AcmeError::Timeout)??;
        write_private(&self.chain_file(host), cert.chain_pem.as_bytes())?;
        write_private(&self.key_file(host), cert.key_pem.as_bytes())?;
        Ok(cert)
    }

    async fn order(&self, host: &str, tokens: &mut Vec<String>) -> Result<Certificate, AcmeError> {
        let identifiers = [Identifier::Dns(host.to_owned())];
        let mut order = timed(self.account.new_order(&NewOrder::new(&identifiers))).await??;
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            if authorization.status == AuthorizationStatus::Valid {
                continue;
            }
            let kind = match self.proof {
                Proof::Http01 => ChallengeType::Http01,
                Proof::TlsAlpn01(_) => ChallengeType::TlsAlpn01,
            };
            let mut challenge = authorization.challenge(kind).ok_or_else(|| {
                AcmeError::Refused(format!("no {} challenge offered", self.proof.name()))
            })?;
            let answer = challenge.key_authorization();
            match &self.proof {
                Proof::Http01 => {
                    self.challenges.put(&challenge.token, answer.as_str());
                    tokens.push(challenge.token.clone());
                }
                Proof::TlsAlpn01(responder) => {
                    let (cert, key) = tls_alpn_certificate(host, answer.digest().as_ref())?;
                    responder.put(host, &cert, &key);
                }
            }
            timed(challenge.set_ready()).await??;
        }
        let polling = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(Duration::from_secs(60));
        let status = order.poll_ready(&polling).await?;
        if status != OrderStatus::Ready {
            let why = order
                .state()
                .error
                .as_ref()
                .and_then(|p| p.detail.clone())
                .unwrap_or_else(|| format!("the order is {status:?}"));
            return Err(AcmeError::Refused(why));
        }
        let key_pem = timed(order.finalize()).await??;
        let chain_pem = order.poll_certificate(&polling).await?;
        Certificate::parse(chain_pem, key_pem)
    }

    /// `host`'s certificate as last issued, if one is kept.
    pub fn stored(&self, host: &str) -> Option<Certificate> {
        let chain = std::fs::read_to_string(self.chain_file(host)).ok()?;
        let key = std::fs::read_to_string(self.key_file(host)).ok()?;
        Certificate::parse(chain, key).ok()
    }

    /// Forgets `host`'s certificate and key.
    pub fn forget(&self, host: &str) {
        let _ = std::fs::remove_file(self.chain_file(host));
        let _ = std::fs::remove_file(self.key_file(host));
    }

    fn chain_file(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.crt"))
    }

    fn key_file(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.key"))
    }
}

/// The account as kept: which CA it is with, and its key.
#[derive(serde::Deserialize, serde::Serialize)]
struct Stored {
    directory: String,
    credentials: AccountCredentials,
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> Result<T, AcmeError> {
    tokio::time::timeout(REQUEST_TIMEOUT, f)
        .await
        .map_err(|_| AcmeError::Timeout)
}

fn create_private_dir(dir: &Path) -> Result<(), AcmeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AcmeError::Io(dir.display().to_string(), e))
}

/// Writes `bytes` to `path` (0600) whole: through a file beside it, renamed over it.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AcmeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let what = || path.display().to_string();
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| AcmeError::Io(what(), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| AcmeError::Io(what(), e))?;
    std::fs::rename(&partial, path).map_err(|e| AcmeError::Io(what(), e))
}
