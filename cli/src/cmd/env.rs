//! `micro env`: which platform the CLI talks to.

use crate::context::Target;
use crate::home::{BUILTIN_ENV, Env, Home};
use anyhow::{Result, bail};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    #[command(subcommand)]
    pub action: Option<EnvAction>,
    /// How to list the environments
    #[arg(long, short, value_enum, default_value_t)]
    pub output: super::Output,
}

#[derive(clap::Subcommand, Debug)]
pub enum EnvAction {
    /// Make NAME the current environment
    Set {
        /// The environment
        name: String,
    },
    /// Add an environment NAME at URL
    Add {
        /// A name for it
        name: String,
        /// The platform's address, like https://micro.example.com
        url: String,
        /// Trust only this CA (PEM) for the platform's certificate: its own CA, made on
        /// its first start (`<data dir>/tls/ca.pem`) [default: the system's roots]
        #[arg(long)]
        ca_file: Option<std::path::PathBuf>,
        /// Trust the platform's own CA if its fingerprint is this (`SHA256:…`, as the
        /// welcome page prints it), without asking; without it, a terminal is asked
        #[arg(long)]
        ca_fingerprint: Option<String>,
        /// Replace an environment of that name
        #[arg(long)]
        force: bool,
        /// Read a token for it from the first line of standard input (`micro admin token
        /// create` on the server prints one)
        #[arg(long)]
        token_stdin: bool,
    },
    /// Delete environment NAME
    Del {
        /// The environment
        name: String,
    },
}

pub async fn run(_t: &Target, args: EnvArgs) -> Result<ExitCode> {
    let home = Home::locate()?;
    let mut envs = home.load_envs()?;
    match args.action {
        None => {
            let current = envs.current_name().to_owned();
            // Never the tokens: only where each environment points and who is logged in.
            let listed: Vec<serde_json::Value> = envs
                .all()
                .iter()
                .map(|(name, env)| {
                    serde_json::json!({
                        "name": name,
                        "url": env.url,
                        "current": *name == current,
                        "logged_in": env.token.is_some(),
                        "email": env.email,
                    })
                })
                .collect();
            if args.output.data(&listed)? {
                return Ok(ExitCode::SUCCESS);
            }
            for (name, env) in envs.all() {
                let mark = if name == current { "*" } else { " " };
                println!("{mark} {name:<12} {}", env.url);
            }
            if let Some(env) = envs.get(&current) {
                warn_git_ca(home.ca_file(&current, env.ca.as_deref())?.as_deref());
            }
        }
        Some(EnvAction::Set { name }) => {
            if envs.get(&name).is_none() {
                bail!("no environment named {name:?}; see `micro env`");
            }
            if let Some(env) = envs.get(&name) {
                warn_git_ca(home.ca_file(&name, env.ca.as_deref())?.as_deref());
            }
            envs.current = Some(name);
            home.save_envs(&envs)?;
        }
        Some(EnvAction::Add {
            name,
            url,
            ca_file,
            ca_fingerprint,
            force,
            token_stdin,
        }) => {
            if name == BUILTIN_ENV {
                bail!("{BUILTIN_ENV} is built in (this machine's platform); pick another name");
            }
            if envs.get(&name).is_some() && !force {
                bail!(
                    "environment {name:?} already exists: `micro env add {name} URL --force` replaces it (logging in again), `micro env del {name}` removes it"
                );
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("{url}: an environment URL starts with http:// or https://");
            }
            let ca = match ca_file {
                Some(path) => {
                    let pem = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
                    micro_pki::client_config(&pem)
                        .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
                    if url.starts_with("http://") {
                        bail!("--ca-file pins a CA for https: {url} is plain http");
                    }
                    Some(pem)
                }
                None if url.starts_with("https://") => {
                    trust_on_first_use(&url, ca_fingerprint.as_deref()).await?
                }
                None => None,
            };
            if let (Some(pem), Some(wanted)) = (&ca, &ca_fingerprint) {
                let got = micro_pki::fingerprint(pem)?;
                if !got.eq_ignore_ascii_case(wanted.trim()) {
                    bail!("the CA is {got}, not {wanted}: nothing was added");
                }
            }
            let token = if token_stdin {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)?;
                let line = line.trim().to_owned();
                if line.is_empty() {
                    bail!("--token-stdin: standard input held no token");
                }
                Some(line)
            } else {
                None
            };
            envs.envs.insert(
                name,
                Env {
                    url,
                    ca,
                    token,
                    ..Env::default()
                },
            );
            home.save_envs(&envs)?;
        }
        Some(EnvAction::Del { name }) => {
            // The built-in env holds the token `micro server` wrote for this machine:
            // deleting it would lock the user out of their own platform.
            if name == BUILTIN_ENV {
                bail!(
                    "{BUILTIN_ENV} is built in (this machine's platform) and cannot be deleted; `micro env set NAME` switches to another"
                );
            }
            if envs.envs.remove(&name).is_none() {
                bail!("no environment named {name:?}");
            }
            if envs.current.as_deref() == Some(&name) {
                envs.current = None;
                eprintln!("deleted the current environment; now using {BUILTIN_ENV}");
            }
            home.save_envs(&envs)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// git's `GIT_SSL_CAINFO` outranks a clone's `http.sslCAInfo` (corporate and CI images
/// set it): with it, `git push` from a `micro clone` of a platform with its own CA
/// (`ca`) fails on the certificate. Says so and how to fix it.
pub fn warn_git_ca(ca: Option<&std::path::Path>) {
    let (Some(ca), Some(set)) = (ca, std::env::var_os("GIT_SSL_CAINFO")) else {
        return;
    };
    if set.is_empty() || std::path::Path::new(&set) == ca {
        return;
    }
    eprintln!(
        "warning: GIT_SSL_CAINFO is set ({}) and outranks a micro clone's own CA, so git push and fetch there will not trust this platform: `unset GIT_SSL_CAINFO` in this shell, or run git with GIT_SSL_CAINFO={}",
        std::path::Path::new(&set).display(),
        ca.display()
    );
}

/// The CA to pin for a platform at `url` whose certificate this machine's roots do not
/// vouch for: its own CA (`/api/v1/ca.pem`), trusted when its fingerprint is `expected`
/// or, on a terminal, when the user says so after seeing it (as ssh asks of a new host).
/// `None`: the system's roots vouch for it already.
pub(crate) async fn trust_on_first_use(
    url: &str,
    expected: Option<&str>,
) -> Result<Option<String>> {
    use micro_api::client::{Client, ClientError};
    use std::io::{BufRead, IsTerminal, Write};
    match Client::pinned(url, None, None)?.check_platform().await {
        Ok(()) => return Ok(None),
        Err(ClientError::Tls(_)) => {}
        // Not up yet: added as asked, checked when first used.
        Err(ClientError::Unreachable(_)) if expected.is_none() => {
            eprintln!(
                "warning: {url} cannot be reached now; its certificate is checked when first used"
            );
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    let Some(pem) = Client::platform_ca_unverified(url).await? else {
        bail!(
            "{url}'s certificate is not from a CA this machine trusts and it names no CA of its own: get its CA file from the operator and pass --ca-file CA.pem"
        );
    };
    let fingerprint = micro_pki::fingerprint(&pem)?;
    match expected {
        Some(wanted) if fingerprint.eq_ignore_ascii_case(wanted.trim()) => {}
        Some(wanted) => bail!(
            "{url} presents a CA with fingerprint {fingerprint}, not {wanted}: someone may be in between; nothing was added"
        ),
        None if !std::io::stdin().is_terminal() => bail!(
            "{url} has its own CA, {fingerprint}: if that is the one its operator or welcome page names, pass --ca-fingerprint {fingerprint}"
        ),
        None => {
            eprintln!("{url} has its own CA. Its fingerprint is\n  {fingerprint}");
            eprint!("Compare it with what the operator or the welcome page says. Trust it? [y/N] ");
            std::io::stderr().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                bail!("not trusted: nothing was added");
            }
        }
    }
    // The platform's certificate must chain to the CA it named.
    Client::pinned(url, None, Some(&pem))?
        .check_platform()
        .await
        .map_err(|e| {
            anyhow::anyhow!("{url} does not hold a certificate from the CA it named: {e}")
        })?;
    Ok(Some(pem))
}
