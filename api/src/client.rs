//! A typed client for the platform API, used by the CLI.

use crate::types::{
    CreateNamespace, ErrorBody, NamespaceList, QuotaView, SetQuota, StatusReport, WhoAmI,
};
pub use reqwest::Method;
use reqwest::{Response, StatusCode};

/// The HTTP client type the server hands to the API for forwarding calls.
pub type HttpClient = reqwest::Client;
use serde::de::DeserializeOwned;

/// What `micro call` sends besides the path.
#[derive(Debug, Default)]
pub struct CallRequest {
    /// Default: POST with a body, GET without.
    pub method: Option<Method>,
    pub headers: Vec<(String, String)>,
    pub json: Option<String>,
}

/// A service's answer, as it gave it.
#[derive(Debug)]
pub struct CallReply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the platform at {0}: is `micro server` running?")]
    Unreachable(String),
    #[error("not logged in to {0}: the token is missing or no longer valid; run `micro login`")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    #[error("unexpected answer from the platform: {0}")]
    Protocol(String),
    /// The platform's certificate did not verify (or the pinned CA is unusable).
    #[error("{0}")]
    Tls(String),
}

/// How long the CLI waits to connect to the platform before saying it is unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Every client of the platform: it never follows a redirect (a tenant's service answering
/// `micro call` with a 302 to another tenant's port must not make the CLI fetch that port;
/// the 3xx is the answer, shown as it came), and gives up on a connection that does not
/// open. Requests themselves have no overall deadline: `micro logs -f` lasts as long as
/// the user wants; TCP keepalive notices a platform that went away.
fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_keepalive(std::time::Duration::from_secs(30))
}

/// A client for one platform URL with one token.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client that trusts only `ca_pem` (PEM) for https, when given; else the system's
    /// roots. Never an unverified connection.
    pub fn pinned(
        base: &str,
        token: Option<String>,
        ca_pem: Option<&str>,
    ) -> Result<Self, ClientError> {
        let mut builder = http_builder();
        if let Some(ca) = ca_pem {
            let config =
                micro_pki::client_config(ca).map_err(|e| ClientError::Tls(e.to_string()))?;
            builder = builder.tls_backend_preconfigured((*config).clone());
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Tls(format!("cannot set up TLS: {e}")))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The CA the platform at `base` says it has (`/api/v1/ca.pem`), fetched without
    /// checking its certificate: trust on first use, as ssh does. The caller shows its
    /// fingerprint and, once trusted, checks the platform against it
    /// ([`Client::check_platform`]); nothing else is sent on this connection.
    pub async fn platform_ca_unverified(base: &str) -> Result<Option<String>, ClientError> {
        let http = http_builder()
            .danger_accept_invalid_certs(true)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Tls(format!("cannot set up TLS: {e}")))?;
        let base = base.trim_end_matches('/');
        let res = http
            .get(format!("{base}/api/v1/ca.pem"))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    ClientError::Unreachable(base.to_owned())
                } else {
                    ClientError::Protocol(e.to_string())
                }
            })?;
        if res.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !res.status().is_success() {
            return Err(ClientError::Protocol(format!(
                "{base}/api/v1/ca.pem answered {}",
                res.status()
            )));
        }
        let text = res
            .text()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        // A CA's certificate is a few kilobytes; anything else is not one.
        if text.len() > 64 << 10 || micro_pki::client_config(&text).is_err() {
            return Err(ClientError::Protocol(format!(
                "{base}/api/v1/ca.pem is not a CA certificate"
            )));
        }
        Ok(Some(text))
    }

    /// The server's version (`micro version`).
    pub async fn server_version(&self) -> Result<String, ClientError> {
        let v: serde_json::Value = self
            .json(self.request(Method::GET, "/api/v1/version"))
            .await?;
        v["version"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Protocol("no version in the answer".into()))
    }

    /// Whether the platform answers over TLS checked as this client checks it (its
    /// pinned CA, or the system's roots): `Err(ClientError::Tls)` when it does not.
    pub async fn check_platform(&self) -> Result<(), ClientError> {
        self.send_raw(self.request(Method::GET, "/healthz")).await?;
        Ok(())
    }

    /// The smart-HTTP URL of a namespace's repo.
    pub fn git_url(&self, namespace: &str) -> String {
        format!(
            "{}/git/{}",
            self.base,
            micro_tenant::layout::repo_dir_name(namespace)
        )
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    async fn send_raw(&self, req: reqwest::RequestBuilder) -> Result<Response, ClientError> {
        req.send().await.map_err(|e| {
            if let Some(why) = tls_failure(&e) {
                ClientError::Tls(format!(
                    "the platform at {} failed the TLS check ({why}); nothing was sent. Is the right CA pinned? `micro env add NAME URL --ca-file CA.pem`",
                    self.base
                ))
            } else if e.is_connect() || e.is_timeout() {
                ClientError::Unreachable(self.base.clone())
            } else {
                ClientError::Protocol(e.to_string())
            }
        })
    }

    /// Sends and maps transport and API failures to one-line errors.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Response, ClientError> {
        let response = self.send_raw(req).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.error_of(response).await)
    }

    async fn error_of(&self, response: Response) -> ClientError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("{status}: {}", text.trim()));
        match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized(self.base.clone()),
            StatusCode::NOT_FOUND => ClientError::NotFound(message),
            _ => ClientError::Api { status, message },
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.send(req)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub async fn health(&self) -> Result<(), ClientError> {
        self.send(self.request(Method::GET, "/healthz"))
            .await
            .map(drop)
    }

    pub async fn source_base(&self) -> Result<Option<String>, ClientError> {
        let b: crate::types::SourceBase = self
            .json(self.request(Method::GET, "/api/v1/sources/base"))
            .await?;
        Ok(b.base)
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<crate::types::LoginReply, ClientError> {
        let req = self
            .request(Method::POST, "/api/v1/login")
            .json(&crate::types::Login {
                email: email.to_owned(),
                password: password.to_owned(),
            });
        let response = self.send_raw(req).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // Here a 401 means the credentials, not a missing token.
            return Err(ClientError::Api {
                status: StatusCode::UNAUTHORIZED,
                message: "wrong email or password".into(),
            });
        }
        if !response.status().is_success() {
            return Err(self.error_of(response).await);
        }
        response
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub async fn logout(&self) -> Result<(), ClientError> {
        self.send(self.request(Method::POST, "/api/v1/logout"))
            .await
            .map(drop)
    }

    pub async fn create_account(
        &self,
        email: &str,
        namespace: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        let req = self.request(Method::POST, "/api/v1/admin/accounts").json(
            &crate::types::CreateAccount {
                email: email.to_owned(),
                namespace: namespace.to_owned(),
                password: password.to_owned(),
            },
        );
        self.send(req).await.map(drop)
    }

    /// Suspends (`true`) or resumes a namespace (admin).
    pub async fn suspension(
        &self,
        namespace: &str,
        suspend: bool,
    ) -> Result<crate::types::SuspensionView, ClientError> {
        let verb = if suspend { "suspend" } else { "resume" };
        self.json(self.request(
            Method::POST,
            &format!("/api/v1/admin/namespaces/{namespace}/{verb}"),
        ))
        .await
    }

    pub async fn delete_namespace(
        &self,
        namespace: &str,
    ) -> Result<crate::types::NamespaceDeleted, ClientError> {
        let namespace: String =
            url::form_urlencoded::byte_serialize(namespace.as_bytes()).collect();
        let path = format!("/api/v1/admin/namespaces/{namespace}");
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// Makes the API key `name` of `namespace`; the key is in the answer, this once.
    pub async fn create_key(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<crate::types::KeyCreated, ClientError> {
        let body = crate::types::NewKey {
            name: name.to_owned(),
        };
        let path = format!("/api/v1/namespaces/{namespace}/keys");
        self.json(self.request(Method::POST, &path).json(&body))
            .await
    }

    pub async fn keys(&self, namespace: &str) -> Result<Vec<crate::types::KeyView>, ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/keys");
        self.json(self.request(Method::GET, &path)).await
    }

    pub async fn revoke_key(&self, namespace: &str, name: &str) -> Result<(), ClientError> {
        let name: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let path = format!("/api/v1/namespaces/{namespace}/keys/{name}");
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// Claims `host` for `service` of `namespace`.
    pub async fn add_domain(
        &self,
        namespace: &str,
        host: &str,
        service: &str,
    ) -> Result<crate::types::DomainView, ClientError> {
        let body = crate::types::NewDomain {
            host: host.to_owned(),
            service: service.to_owned(),
        };
        let path = format!("/api/v1/namespaces/{namespace}/domains");
        self.json(self.request(Method::POST, &path).json(&body))
            .await
    }

    pub async fn domains(
        &self,
        namespace: &str,
    ) -> Result<Vec<crate::types::DomainView>, ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/domains");
        self.json(self.request(Method::GET, &path)).await
    }

    pub async fn remove_domain(&self, namespace: &str, host: &str) -> Result<(), ClientError> {
        let host: String = url::form_urlencoded::byte_serialize(host.as_bytes()).collect();
        let path = format!("/api/v1/namespaces/{namespace}/domains/{host}");
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    pub async fn delete_account(&self, email: &str) -> Result<(), ClientError> {
        let email: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
        let path = format!("/api/v1/admin/accounts/{email}");
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    pub async fn list_accounts(&self) -> Result<Vec<crate::types::AccountInfo>, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/admin/accounts"))
            .await
    }

    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/whoami")).await
    }

    pub async fn status(&self, namespace: &str) -> Result<StatusReport, ClientError> {
        self.json(self.request(
            Method::GET,
            &format!("/api/v1/namespaces/{namespace}/status"),
        ))
        .await
    }

    /// The log stream of a service (ends unless `follow`).
    pub async fn logs(
        &self,
        namespace: &str,
        name: &str,
        lines: usize,
        follow: bool,
        since_ms: Option<i64>,
        router: bool,
    ) -> Result<Response, ClientError> {
        let mut path = format!(
            "/api/v1/namespaces/{namespace}/services/{name}/logs?lines={lines}&follow={follow}"
        );
        if let Some(ms) = since_ms {
            path.push_str(&format!("&since={ms}"));
        }
        if router {
            path.push_str("&router=true");
        }
        self.send(self.request(Method::GET, &path)).await
    }

    /// Calls a service: GET without a body, POST with a JSON one. Returns the raw answer.
    pub async fn call(
        &self,
        namespace: &str,
        name: &str,
        path: &str,
        json: Option<String>,
    ) -> Result<(StatusCode, bytes::Bytes), ClientError> {
        let request = CallRequest {
            json,
            ..CallRequest::default()
        };
        let reply = self.call_with(namespace, name, path, request).await?;
        Ok((reply.status, reply.body))
    }

    /// Calls a service with any method and headers; the answer with its headers.
    pub async fn call_with(
        &self,
        namespace: &str,
        name: &str,
        path: &str,
        call: CallRequest,
    ) -> Result<CallReply, ClientError> {
        let path = path.trim_start_matches('/');
        // `/?q=1` is the root with a query: the root's route, not an empty path's.
        let url = if path.is_empty() || path.starts_with('?') {
            format!("/api/v1/namespaces/{namespace}/services/{name}/call{path}")
        } else {
            format!("/api/v1/namespaces/{namespace}/services/{name}/call/{path}")
        };
        let method = call.method.unwrap_or(if call.json.is_some() {
            Method::POST
        } else {
            Method::GET
        });
        let mut req = self.request(method, &url);
        if let Some(body) = call.json {
            req = req.header("content-type", "application/json").body(body);
        }
        for (name, value) in &call.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let response = self.send_raw(req).await?;
        // The service's own answers pass through, whatever their status.
        if response.headers().contains_key(crate::ERROR_HEADER) {
            return Err(self.error_of(response).await);
        }
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(CallReply {
            status,
            headers,
            body,
        })
    }

    /// One service in full (`micro describe`).
    pub async fn describe(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<crate::types::ServiceDescription, ClientError> {
        self.json(self.request(
            Method::GET,
            &format!("/api/v1/namespaces/{namespace}/services/{name}"),
        ))
        .await
    }

    pub async fn history(
        &self,
        namespace: &str,
        limit: usize,
    ) -> Result<Vec<crate::types::HistoryItem>, ClientError> {
        self.json(self.request(
            Method::GET,
            &format!("/api/v1/namespaces/{namespace}/history?limit={limit}"),
        ))
        .await
    }

    /// What the Kubernetes runtime would apply for a ref (a `v1` `List`), secret values
    /// hidden.
    pub async fn manifests(
        &self,
        namespace: &str,
        reference: &str,
        service: Option<&str>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut req = self
            .request(
                Method::GET,
                &format!("/api/v1/namespaces/{namespace}/manifests"),
            )
            .query(&[("ref", reference)]);
        if let Some(service) = service {
            req = req.query(&[("service", service)]);
        }
        self.json(req).await
    }

    /// The plan for a ref of the namespace's repo on the platform.
    /// Whether `reference`'s commit would be admitted as the namespace's head.
    pub async fn admit_ref(&self, namespace: &str, reference: &str) -> Result<(), ClientError> {
        let req = self
            .request(
                Method::GET,
                &format!("/api/v1/namespaces/{namespace}/admit"),
            )
            .query(&[("ref", reference)]);
        self.send(req).await?;
        Ok(())
    }

    pub async fn plan_ref(
        &self,
        namespace: &str,
        reference: &str,
    ) -> Result<crate::types::PlanView, ClientError> {
        let req = self
            .request(Method::GET, &format!("/api/v1/namespaces/{namespace}/plan"))
            .query(&[("ref", reference)]);
        self.json(req).await
    }

    pub async fn set_config(
        &self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        secret: bool,
    ) -> Result<u64, ClientError> {
        let req = self
            .request(
                Method::PUT,
                &format!("/api/v1/namespaces/{namespace}/config/{key}"),
            )
            .json(&crate::types::SetConfig { value, secret });
        let reply: crate::types::SetConfigReply = self.json(req).await?;
        Ok(reply.version)
    }

    pub async fn get_config(
        &self,
        namespace: &str,
        key: &str,
        version: Option<u64>,
        reveal: bool,
    ) -> Result<crate::types::ConfigValueInfo, ClientError> {
        let mut req = self
            .request(
                Method::GET,
                &format!("/api/v1/namespaces/{namespace}/config/{key}"),
            )
            .query(&[("reveal", reveal)]);
        if let Some(v) = version {
            req = req.query(&[("version", v)]);
        }
        self.json(req).await
    }

    pub async fn list_config(
        &self,
        namespace: &str,
    ) -> Result<Vec<crate::types::ConfigEntryInfo>, ClientError> {
        self.json(self.request(
            Method::GET,
            &format!("/api/v1/namespaces/{namespace}/config"),
        ))
        .await
    }

    pub async fn kv_write(
        &self,
        ns: &str,
        table: &str,
        key: &str,
        value: &str,
        expiry_secs: Option<u64>,
    ) -> Result<(), ClientError> {
        let req = self
            .request(
                Method::PUT,
                &format!("/api/v1/namespaces/{ns}/store/{table}/{key}"),
            )
            .json(&crate::types::KvWrite {
                value: value.to_owned(),
                expiry_secs,
            });
        self.send(req).await.map(drop)
    }

    pub async fn kv_read(
        &self,
        ns: &str,
        table: &str,
        key: &str,
        prefix: bool,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<crate::types::KvRecord>, ClientError> {
        let req = self
            .request(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/store/{table}"),
            )
            .query(&[("key", key)])
            .query(&[("prefix", prefix)])
            .query(&[("limit", limit), ("offset", offset)]);
        self.json(req).await
    }

    pub async fn kv_delete(&self, ns: &str, table: &str, key: &str) -> Result<(), ClientError> {
        let req = self.request(
            Method::DELETE,
            &format!("/api/v1/namespaces/{ns}/store/{table}/{key}"),
        );
        self.send(req).await.map(drop)
    }

    pub async fn create_namespace(&self, name: &str) -> Result<(), ClientError> {
        let req = self
            .request(Method::POST, "/api/v1/admin/namespaces")
            .json(&CreateNamespace {
                name: name.to_owned(),
            });
        self.send(req).await.map(drop)
    }

    /// Every namespace with its effective quota.
    pub async fn list_namespaces(&self) -> Result<NamespaceList, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/admin/namespaces"))
            .await
    }

    /// The invitations (`--signup invite`).
    pub async fn invites(&self) -> Result<Vec<crate::types::InviteView>, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/admin/invites"))
            .await
    }

    /// Invites `email` to sign up.
    pub async fn invite(&self, email: &str) -> Result<(), ClientError> {
        let body = crate::types::InviteRequest {
            email: email.to_owned(),
        };
        self.send(
            self.request(Method::POST, "/api/v1/admin/invites")
                .json(&body),
        )
        .await?;
        Ok(())
    }

    /// Revokes the invitation of `email`.
    pub async fn revoke_invite(&self, email: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/admin/invites/{email}");
        self.send(self.request(Method::DELETE, &path)).await?;
        Ok(())
    }

    /// A namespace's quota; with `set` (`key=value,...`), changed first.
    pub async fn quota(
        &self,
        namespace: &str,
        set: Option<&str>,
    ) -> Result<QuotaView, ClientError> {
        let path = format!("/api/v1/admin/namespaces/{namespace}/quota");
        match set {
            None => self.json(self.request(Method::GET, &path)).await,
            Some(set) => {
                let body = SetQuota {
                    set: set.to_owned(),
                };
                self.json(self.request(Method::PUT, &path).json(&body))
                    .await
            }
        }
    }

    /// Asks for a new rollout of a service at its revision.
    pub async fn restart(&self, namespace: &str, name: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/services/{name}/restart");
        self.send(self.request(Method::POST, &path)).await.map(drop)
    }

    /// Links the namespace to a repo on a forge; the answer holds the webhook secret.
    pub async fn link(
        &self,
        namespace: &str,
        request: &crate::types::LinkRequest,
    ) -> Result<crate::types::LinkCreated, ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/link");
        self.json(self.request(Method::PUT, &path).json(request))
            .await
    }

    /// The namespace's link, if it has one.
    pub async fn link_of(
        &self,
        namespace: &str,
    ) -> Result<Option<crate::types::LinkView>, ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/link");
        match self.json(self.request(Method::GET, &path)).await {
            Ok(link) => Ok(Some(link)),
            Err(ClientError::NotFound(m)) if m.contains("a link of") => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn unlink(&self, namespace: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/link");
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// What open pull requests (or, platform-hosted, branches other than main) would do.
    pub async fn previews(
        &self,
        namespace: &str,
    ) -> Result<Vec<crate::types::PreviewView>, ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/previews");
        self.json(self.request(Method::GET, &path)).await
    }

    /// Lets a fork's pull request (or a branch) run in its preview environment.
    pub async fn approve_preview(
        &self,
        namespace: &str,
        source: &str,
    ) -> Result<crate::types::EnvironmentView, ClientError> {
        let path = format!(
            "/api/v1/namespaces/{namespace}/previews/{}/approve",
            segment(source)
        );
        self.json(self.request(Method::POST, &path)).await
    }

    /// Removes a preview environment now.
    pub async fn delete_preview(&self, namespace: &str, source: &str) -> Result<(), ClientError> {
        let path = format!(
            "/api/v1/namespaces/{namespace}/previews/{}",
            segment(source)
        );
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// A backup of the whole platform, made by the server and written to `out` as it
    /// arrives; the bytes written.
    pub async fn backup(
        &self,
        passphrase: &str,
        out: &mut (impl std::io::Write + ?Sized),
    ) -> Result<u64, ClientError> {
        let body = crate::types::BackupRequest {
            passphrase: passphrase.to_owned(),
        };
        let mut res = self
            .send(
                self.request(Method::POST, "/api/v1/admin/backup")
                    .json(&body),
            )
            .await?;
        let mut written = 0u64;
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| ClientError::Protocol(format!("the backup broke off: {e}")))?
        {
            out.write_all(&chunk)
                .map_err(|e| ClientError::Protocol(format!("cannot write the backup: {e}")))?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// The previews quota class, changed by `set` when given.
    pub async fn previews_quota(&self, set: Option<&str>) -> Result<QuotaView, ClientError> {
        let path = "/api/v1/admin/quota/previews";
        match set {
            None => self.json(self.request(Method::GET, path)).await,
            Some(set) => {
                let body = SetQuota {
                    set: set.to_owned(),
                };
                self.json(self.request(Method::PUT, path).json(&body)).await
            }
        }
    }

    /// Asks the platform to fetch a linked namespace's branch now.
    pub async fn fetch_link(&self, namespace: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/link/fetch");
        self.send(self.request(Method::POST, &path)).await.map(drop)
    }

    /// Sign-up, step 1: a code by mail.
    /// Whether the platform takes sign-ups: an error saying why not (closed, not set up)
    /// or that it cannot be reached. A server older than this question says nothing.
    pub async fn signup_open(&self) -> Result<(), ClientError> {
        match self
            .json::<crate::types::SignupOpen>(self.request(Method::GET, "/api/v1/signup"))
            .await
        {
            Err(ClientError::Api { status, .. }) if status == StatusCode::METHOD_NOT_ALLOWED => {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    pub async fn signup(&self, email: &str, password: &str) -> Result<String, ClientError> {
        let body = crate::types::SignupRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        let started: crate::types::SignupStarted = self
            .json(self.request(Method::POST, "/api/v1/signup").json(&body))
            .await?;
        Ok(started.message)
    }

    /// Sign-up, step 2: the code.
    pub async fn signup_verify(
        &self,
        email: &str,
        code: &str,
    ) -> Result<crate::types::SignupResult, ClientError> {
        let body = crate::types::SignupVerify {
            email: email.to_owned(),
            code: code.to_owned(),
        };
        self.json(
            self.request(Method::POST, "/api/v1/signup/verify")
                .json(&body),
        )
        .await
    }

    /// Paid sign-up: the account's token once the payment is confirmed (else `Waiting`).
    pub async fn signup_claim(
        &self,
        claim: &str,
    ) -> Result<crate::types::SignupResult, ClientError> {
        let body = crate::types::SignupClaim {
            claim: claim.to_owned(),
        };
        self.json(
            self.request(Method::POST, "/api/v1/signup/claim")
                .json(&body),
        )
        .await
    }

    /// Mail the platform kept instead of sending (admins).
    pub async fn outbox(&self) -> Result<Vec<crate::types::MailView>, ClientError> {
        self.json(self.request(Method::GET, "/api/v1/admin/outbox"))
            .await
    }
}

/// Why a request failed TLS, when it did: the rustls error in its chain of causes.
fn tls_failure(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An io::Error's own source skips the error it wraps: step into it instead.
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    None
}

/// `text` as one path segment: `#` and `/` (a branch's) and everything outside the
/// unreserved set percent-encoded.
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
