//! The checked transport: git's smart HTTP protocol (fetch only) for libgit2, over reqwest,
//! for URLs of the scheme `micro-checked+https` and `micro-checked+http`, which
//! `micro_tenant::sources::fetch_refs` uses for a tenant's fetches once this is
//! registered. Each request connects only to addresses the fetch's policy allows, checked
//! as they are resolved; never follows a redirect; and times out. The fetch's policy and
//! credentials come from the fetching thread ([`micro_tenant::sources::fetching`]).
//!
//! libgit2 calls it synchronously, on the thread that fetches: a blocking thread of the
//! tokio runtime it was registered from, on which the requests run.

use crate::{CONNECT_TIMEOUT, CheckedResolver, READ_TIMEOUT};
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use micro_tenant::sources::{CHECKED, fetching};
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use tokio::runtime::Handle;

static RUNTIME: OnceLock<Handle> = OnceLock::new();

/// Registers the checked transport in this process, on the current tokio runtime, and
/// has tenants' fetches use it. Once per process, before any fetch.
pub fn register() -> Result<(), git2::Error> {
    if RUNTIME.set(Handle::current()).is_err() {
        return Ok(());
    }
    for scheme in ["https", "http"] {
        let name = format!("{CHECKED}{scheme}");
        // SAFETY: registered once per process (the OnceLock above), at start-up, before
        // any fetch makes a transport, as libgit2 asks of callers.
        #[allow(unsafe_code)]
        unsafe {
            git2::transport::register(&name, |remote| {
                Transport::smart(remote, true, Subtransport)
            })?;
        }
    }
    micro_tenant::sources::use_checked_transport();
    Ok(())
}

struct Subtransport;

impl SmartSubtransport for Subtransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let refuse = |why: String| git2::Error::from_str(&why);
        let base = url
            .strip_prefix(CHECKED)
            .ok_or_else(|| refuse("not a URL of the checked transport".into()))?;
        let context =
            fetching().ok_or_else(|| refuse("a checked fetch without its policy".into()))?;
        let runtime = RUNTIME
            .get()
            .cloned()
            .ok_or_else(|| refuse("the checked transport is not registered".into()))?;
        let parsed = url::Url::parse(base).map_err(|e| refuse(format!("not a URL: {e}")))?;
        let resolver = CheckedResolver::new(context.policy.clone());
        let host = parsed
            .host()
            .ok_or_else(|| refuse("a URL without a host".into()))?;
        if !resolver.allows_literal(&host) {
            return Err(refuse(
                "local, private and link-local addresses are not allowed".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .dns_resolver(Arc::new(resolver))
            .user_agent(concat!("micro-platform/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| refuse(format!("cannot set up the client: {e}")))?;
        let base = base.trim_end_matches('/');
        let mut request = match action {
            Service::UploadPackLs => http.get(format!("{base}/info/refs?service=git-upload-pack")),
            Service::UploadPack => http
                .post(format!("{base}/git-upload-pack"))
                .header("Content-Type", "application/x-git-upload-pack-request")
                .header("Accept", "application/x-git-upload-pack-result"),
            Service::ReceivePackLs | Service::ReceivePack => {
                return Err(refuse("the platform only fetches".into()));
            }
        };
        if let Some((user, token)) = &context.login {
            request = request.basic_auth(user, Some(token));
        }
        Ok(Box::new(Exchange::new(runtime, request, checked_status)))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// One request of git's smart HTTP protocol for a libgit2 subtransport: what libgit2
/// writes is its body; the first read sends it, on `runtime` (from the fetching thread,
/// a blocking one), and a status that is not a success is an error `why` words.
pub struct Exchange {
    runtime: Handle,
    request: Option<reqwest::RequestBuilder>,
    body: Vec<u8>,
    response: Option<reqwest::Response>,
    /// Bytes of the last chunk not read yet.
    pending: bytes::Bytes,
    why: fn(reqwest::StatusCode) -> String,
}

impl Exchange {
    pub fn new(
        runtime: Handle,
        request: reqwest::RequestBuilder,
        why: fn(reqwest::StatusCode) -> String,
    ) -> Self {
        Exchange {
            runtime,
            request: Some(request),
            body: Vec::new(),
            response: None,
            pending: bytes::Bytes::new(),
            why,
        }
    }
}

/// What a failed request of the checked transport says (in the server's log only).
fn checked_status(status: reqwest::StatusCode) -> String {
    if status.is_redirection() {
        format!("the server answered {status}: redirects are not followed")
    } else {
        format!("the server answered {status}")
    }
}

impl Write for Exchange {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for Exchange {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(request) = self.request.take() {
            let body = std::mem::take(&mut self.body);
            let response = self
                .runtime
                .block_on(request.body(body).send())
                .map_err(|e| std::io::Error::other(describe(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(std::io::Error::other((self.why)(status)));
            }
            self.response = Some(response);
        }
        while self.pending.is_empty() {
            let Some(response) = self.response.as_mut() else {
                return Ok(0);
            };
            match self
                .runtime
                .block_on(response.chunk())
                .map_err(|e| std::io::Error::other(describe(&e)))?
            {
                Some(chunk) => self.pending = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// reqwest's error with its causes (a refused address, a TLS refusal are in the chain).
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
