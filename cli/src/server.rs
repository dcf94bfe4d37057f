//! `micro server`: logging, the data dir's default, and the CLI environment `server`
//! written once the platform listens; the platform itself is `micro-server`'s.

use crate::home::{BUILTIN_ENV, Env, Home};
use anyhow::Result;
pub use micro_server::ServerArgs;

pub async fn run(args: ServerArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MICRO_LOG")
                .unwrap_or_else(|_| "info,notify=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let home = Home::locate()?;
    let data = args
        .data_dir
        .clone()
        .unwrap_or_else(|| home.dir().join("server"));
    if args.stop_services {
        let stopped = micro_server::stop_services(&args, &data).await?;
        eprintln!(
            "stopped {stopped} services left running in {}",
            data.display()
        );
        return Ok(());
    }
    let held = home
        .load_envs()?
        .envs
        .get(BUILTIN_ENV)
        .and_then(|e| e.token.clone());
    micro_server::run(args, &data, held, |ready| {
        write_cli_env(&home, ready).map_err(|e| format!("cannot write the CLI's environment: {e}"))
    })
    .await?;
    Ok(())
}

/// Like a single-node Kubernetes writing its kubeconfig: the env `server` points at this
/// server with an admin token, so the CLI works from another terminal with no login.
fn write_cli_env(home: &Home, ready: micro_server::Ready) -> Result<()> {
    let mut envs = home.load_envs()?;
    envs.envs.insert(
        BUILTIN_ENV.to_owned(),
        Env {
            url: ready.url,
            token: Some(ready.token),
            namespace: Some(ready.namespace),
            email: Some(ready.email),
            ca: ready.ca_pem,
            ca_fingerprint: None,
        },
    );
    if envs.current.is_none() {
        envs.current = Some(BUILTIN_ENV.to_owned());
    }
    home.save_envs(&envs)
}
