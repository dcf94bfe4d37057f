//! What a deployment runs, the contract between fetching and running (Flux's
//! source-controller calls it an artifact): a folder of a repo at a commit, or an image.

use micro_tenant::desired::{DesiredService, ServiceModel};
use std::path::{Path, PathBuf};

/// What a deployment runs, named so that each runtime fetches it its own way (the local
/// one extracts files; a cluster's init container clones): never a checkout made for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    /// A folder of the namespace's own repo: `path` of commit `revision`, whose tree is
    /// `tree`, in the platform's bare repo at `repo`.
    Repo {
        repo: PathBuf,
        revision: String,
        path: String,
        tree: String,
    },
    /// A folder (`path`, else the root) of a `source` repo at its pinned commit.
    Source {
        url: String,
        commit: String,
        path: Option<String>,
    },
    /// A container image: it is what runs, with no folder at all.
    Image(String),
}

impl Artifact {
    /// What `service` runs, its own folder being in the namespace's repo at `repo`.
    pub fn of(repo: &Path, service: &DesiredService) -> Self {
        Artifact::of_model(
            repo,
            &service.name,
            &service.revision,
            &service.tree,
            &service.model,
        )
    }

    /// What a service named `name` of `model` runs at the namespace's `revision`, its
    /// folder's tree being `tree`.
    pub fn of_model(
        repo: &Path,
        name: &str,
        revision: &str,
        tree: &str,
        model: &ServiceModel,
    ) -> Self {
        if let Some(image) = &model.image {
            return Artifact::Image(image.clone());
        }
        match &model.source {
            Some(s) => Artifact::Source {
                url: s.git.clone(),
                commit: s.commit.clone(),
                path: s.path.clone(),
            },
            None => Artifact::Repo {
                repo: repo.to_owned(),
                revision: revision.to_owned(),
                path: micro_tenant::layout::service_dir(name),
                tree: tree.to_owned(),
            },
        }
    }
}
