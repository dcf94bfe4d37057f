//! `micro checkout`: what a pod's init container runs on the Kubernetes runtime. Writes
//! the files of one folder of a git repo at one commit into a directory, trusting the CA
//! in the file `MICRO_TLS_CA` when set. It signs in to the platform with the pod's
//! certificate identity (`--identity`: the files `MICRO_TLS_CERT` and `MICRO_TLS_KEY`),
//! else with `MICRO_TOKEN` (never a flag: flags show in process listings).

use anyhow::{Context as _, Result, anyhow, bail};
use micro_tenant::sources::SourceCache;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckoutArgs {
    /// The repo's URL (the platform's git endpoint for the tenant's own repo)
    #[arg(long, value_name = "URL")]
    pub git: String,
    /// The commit to check out (a full id)
    #[arg(long)]
    pub commit: String,
    /// The folder inside the repo [default: all of it]
    #[arg(long)]
    pub path: Option<String>,
    /// Where to write the files (created if missing)
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// Sign in with the certificate in MICRO_TLS_CERT and MICRO_TLS_KEY (mTLS), trusting
    /// MICRO_TLS_CA, instead of a token
    #[arg(long)]
    pub identity: bool,
}

fn read_env_file(var: &str) -> Result<String> {
    let path = std::env::var_os(var).ok_or_else(|| anyhow!("--identity needs {var}"))?;
    std::fs::read_to_string(&path)
        .with_context(|| format!("{var} {}", PathBuf::from(&path).display()))
}

pub async fn run(args: CheckoutArgs) -> Result<ExitCode> {
    let commit = git2::Oid::from_str(&args.commit)
        .map_err(|_| anyhow!("--commit {}: not a commit id", args.commit))?;
    let scratch = tempfile::tempdir().context("a scratch folder for the fetch")?;
    let mut cache = SourceCache::new(scratch.path());
    let mut url = args.git.clone();
    if args.identity {
        let config = micro_pki::client_config_with_identity(
            &read_env_file("MICRO_TLS_CA")?,
            &read_env_file("MICRO_TLS_CERT")?,
            &read_env_file("MICRO_TLS_KEY")?,
        )?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .read_timeout(std::time::Duration::from_secs(30))
            .tls_backend_preconfigured((*config).clone())
            .build()
            .context("cannot set up TLS")?;
        url = crate::git_mtls::register(http, &args.git)?;
    } else {
        if let Ok(token) = std::env::var(micro_runtime::TOKEN_VAR) {
            cache = cache.with_token(token);
        }
        // The platform's CA, pinned for this fetch (a pod gets it as a file).
        if std::env::var_os("MICRO_TLS_CA").is_some() {
            let env = crate::home::Env {
                ca: Some(read_env_file("MICRO_TLS_CA")?),
                ..Default::default()
            };
            if let Some(check) = crate::tls::cert_check(&env) {
                cache = cache.with_cert_check(check);
            }
        }
    }
    // libgit2 blocks; the certificate transport runs its requests on this runtime.
    let into = args.into.clone();
    let path = args.path.clone();
    let fetched =
        tokio::task::spawn_blocking(move || cache.checkout(&url, commit, path.as_deref(), &into))
            .await
            .context("the checkout stopped")?;
    if let Err(e) = fetched {
        // Named by the URL given, not the transport's.
        bail!(
            "{}",
            e.to_string().replace(crate::git_mtls::SCHEME, "https")
        );
    }
    Ok(ExitCode::SUCCESS)
}
