//! A fetch-only git smart-HTTP transport for libgit2 over reqwest and rustls, so a
//! fetch can present a client certificate: libgit2's own HTTPS cannot. It serves the
//! scheme [`SCHEME`] only, registered in the process that asks (`micro checkout`), so
//! every other fetch keeps libgit2's transport. Pushes are not spoken at all.
//!
//! libgit2 calls it synchronously; it runs the requests on the tokio runtime it was
//! registered from, so a fetch through it must run on a blocking thread of that runtime.

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use std::sync::OnceLock;
use tokio::runtime::Handle;

/// URLs of this scheme (`micro-mtls+https://host/…`) go through this transport.
pub const SCHEME: &str = "micro-mtls+https";

/// What the one registered transport uses: set once per process.
static CLIENT: OnceLock<(reqwest::Client, Handle)> = OnceLock::new();

/// Registers the transport with `http` (its TLS configured with the client certificate)
/// on the current runtime; `url` (https) as a URL of the transport's scheme.
pub fn register(http: reqwest::Client, url: &str) -> anyhow::Result<String> {
    let https = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow::anyhow!("{url}: a certificate is presented over https only"))?;
    if CLIENT.set((http, Handle::current())).is_err() {
        anyhow::bail!("the certificate transport is registered already");
    }
    // SAFETY: registered once (the OnceLock above) before this process makes any
    // transport, as libgit2 asks of callers.
    #[allow(unsafe_code)]
    unsafe {
        git2::transport::register(SCHEME, |remote| {
            Transport::smart(remote, true, Subtransport)
        })?;
    }
    Ok(format!("{SCHEME}://{https}"))
}

struct Subtransport;

impl SmartSubtransport for Subtransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let base = url
            .strip_prefix(SCHEME)
            .map(|rest| format!("https{rest}"))
            .ok_or_else(|| git2::Error::from_str("not a URL of this transport"))?;
        let (http, runtime) = CLIENT
            .get()
            .cloned()
            .ok_or_else(|| git2::Error::from_str("the certificate transport is not set up"))?;
        let base = base.trim_end_matches('/');
        let request = match action {
            Service::UploadPackLs => http.get(format!("{base}/info/refs?service=git-upload-pack")),
            Service::UploadPack => http
                .post(format!("{base}/git-upload-pack"))
                .header("Content-Type", "application/x-git-upload-pack-request")
                .header("Accept", "application/x-git-upload-pack-result"),
            Service::ReceivePackLs | Service::ReceivePack => {
                return Err(git2::Error::from_str("a certificate only fetches"));
            }
        };
        Ok(Box::new(micro_gitnet::Exchange::new(
            runtime, request, refused,
        )))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// What the platform's refusal of a certificate fetch means, in words.
fn refused(status: reqwest::StatusCode) -> String {
    match status.as_u16() {
        401 => {
            "the platform did not take the certificate (expired, revoked or not this platform's)"
                .to_owned()
        }
        404 => "repository not found (or not this certificate's to read)".to_owned(),
        _ => format!("the platform answered {status}"),
    }
}
