//! `micro repo link/show/unlink`.

use serde::{Deserialize, Serialize};

/// What `micro repo link` asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkRequest {
    pub url: String,
    #[serde(default)]
    pub branch: Option<String>,
    /// `github`, `gitea` or `gitlab`; guessed from the URL when absent.
    #[serde(default)]
    pub forge: Option<String>,
    /// The forge's REST API (GitHub Enterprise, a self-hosted Gitea or GitLab).
    #[serde(default)]
    pub api: Option<String>,
    /// For comments, statuses and fetching a private repo; stored like a secret.
    #[serde(default)]
    pub token: Option<String>,
}

/// The answer to a link: the only time the webhook secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkCreated {
    #[serde(flatten)]
    pub link: LinkView,
    pub webhook_secret: String,
}

/// A namespace's link, as `micro repo show` prints it; never the secret or the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkView {
    pub namespace: String,
    pub url: String,
    pub branch: String,
    pub forge: String,
    pub api: String,
    pub webhook_url: String,
    #[serde(default)]
    pub has_token: bool,
    #[serde(default)]
    pub fetched_revision: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub fetched_at: Option<i64>,
    #[serde(default)]
    pub fetch_error: Option<String>,
    #[serde(default)]
    pub last_delivery: Option<DeliveryView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryView {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub event: String,
    pub result: String,
}

/// What a pull request (linked repos) or a branch other than main (platform-hosted
/// repos) would change, as `micro previews` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewView {
    /// `#7` for a pull request, the branch's name for a branch.
    pub name: String,
    #[serde(default)]
    pub number: Option<u64>,
    /// What `micro diff` takes to print it in full.
    pub reference: String,
    pub head: String,
    /// `planned`, `invalid`, `failed` (or a newer server's word).
    pub status: String,
    /// `1 to create, …` when planned.
    pub summary: String,
    #[serde(default)]
    pub error: Option<String>,
    /// Milliseconds since the epoch, when it was computed.
    pub updated_at: i64,
    /// Its preview environment, when the namespace has previews on and one exists.
    #[serde(default)]
    pub environment: Option<EnvironmentView>,
}

/// A preview environment: the namespace a pull request's or branch's head runs in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvironmentView {
    /// Its namespace (`acme-pr-7`): `--namespace` takes it for reads.
    pub namespace: String,
    pub head: String,
    /// `waiting`, `approval`, `building`, `ready` or `failed` (or a newer server's word).
    pub state: String,
    /// The state in a line: why it waits or failed.
    pub detail: String,
    /// A failing service's last lines, secrets masked.
    #[serde(default)]
    pub logs: Vec<String>,
    /// The URLs of its public services.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    #[serde(default)]
    pub fork: bool,
}
