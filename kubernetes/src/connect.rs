//! Reaching a cluster: `--kubeconfig` / `--kube-context`, else `KUBECONFIG` (or
//! `~/.kube/config`), else the in-cluster service account.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no cluster found (no kubeconfig, not in a cluster): {0}")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot make a client for the cluster: {0}")]
    Client(#[source] kube::Error),
}

/// A client for the cluster named by the flags, or the one the environment names.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, ConnectError> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let named = |source| ConnectError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(named)?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(named)?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|source| ConnectError::Kubeconfig {
                path: "(KUBECONFIG or ~/.kube/config)".into(),
                source,
            })?,
        (None, None) => kube::Config::infer().await.map_err(ConnectError::Infer)?,
    };
    kube::Client::try_from(config).map_err(ConnectError::Client)
}
