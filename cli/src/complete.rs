//! Shell completion that knows the namespace: `source <(COMPLETE=bash micro)` completes
//! service names from the platform (clap_complete's dynamic completion), besides the
//! static `micro completion SHELL` scripts.

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use std::ffi::OsStr;

/// The completer of every argument that names a service.
pub fn services() -> ArgValueCompleter {
    ArgValueCompleter::new(service_names)
}

/// The services of the namespace the command would act on (`MICRO_ENV` and
/// `MICRO_NAMESPACE`, else the current environment's own) whose names start with
/// `current`; none when the platform cannot be asked quickly.
fn service_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let names = || -> Option<Vec<String>> {
        let home = crate::home::Home::locate().ok()?;
        let envs = home.load_envs().ok()?;
        let env_name = std::env::var("MICRO_ENV")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| envs.current_name().to_owned());
        let env = envs.get(&env_name)?;
        let client = crate::tls::client(&env, env.token.clone()).ok()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let report = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(3), async {
                // As commands resolve it: the flag's variable, the environment's own, or
                // the account's.
                let namespace = match std::env::var("MICRO_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty())
                    .or_else(|| env.namespace.clone())
                {
                    Some(ns) => ns,
                    None => client.whoami().await.ok()?.namespace?,
                };
                client.status(&namespace).await.ok()
            })
            .await
        });
        Some(report.ok()??.services.into_iter().map(|s| s.name).collect())
    };
    names()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(current.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}
