//! Pull requests' preview environments on the forge: each head of a pull request is handed
//! to `micro-previews` (which starts, rolls or parks it), and where the environment stands
//! is kept in the plan comment's environment section and in a second commit status,
//! `micro/<ns>/preview`, whose target is the preview's URL.

use crate::follow::Follower;
use crate::preview::{self, EnvironmentNote};
use crate::rest::State;
use micro_previews::{Phase, View};
use micro_store::{Environment, Link};
use micro_tenant::preview::Source;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

/// How often environments are looked at for a change worth telling the forge.
const LOOK_EVERY: Duration = Duration::from_secs(2);

impl Follower {
    /// Runs (or rolls, or parks) pull request `number`'s preview at `sha` when the head
    /// is valid; its section for the comment, when previews are on.
    pub(crate) async fn environment_step(
        &self,
        link: &Link,
        number: u64,
        sha: &str,
        valid: bool,
    ) -> Option<(String, View)> {
        let previews = self.environments.get()?;
        let source = Source::Pull(number);
        if valid {
            match previews
                .update(
                    &link.namespace,
                    &source,
                    sha,
                    self.is_fork(&link.namespace, number),
                )
                .await
            {
                Ok(None) => return None,
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(number, error = %e, "preview environment not deployed"),
            }
        }
        let view = previews.find(&link.namespace, &source).await.ok()?;
        self.remember(&view);
        let section = preview::environment(&view.env.namespace, &EnvironmentNote::Now(&view));
        Some((section, view))
    }

    /// The second commit status: the environment's state, its URL as the target.
    pub(crate) async fn environment_status(&self, link: &Link, view: &View) {
        let Some(repo) = Self::api_repo(link) else {
            return;
        };
        let state = match view.phase {
            Phase::Ready => State::Success,
            Phase::Failed { .. } => State::Failure,
            _ => State::Pending,
        };
        let target = view
            .urls
            .first()
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| self.target_url(link, &view.env.head));
        let context = format!("micro/{}/preview", link.namespace);
        let mut description = view.phase.describe();
        description.truncate(140);
        if let Err(e) = self
            .rest
            .status(
                &repo,
                &view.env.head,
                state,
                &context,
                &description,
                &target,
            )
            .await
        {
            tracing::warn!(namespace = %link.namespace, error = %e, "preview status not set");
        }
    }

    /// Rewrites the environment section of pull request `number`'s comment; whether the
    /// comment now says it (false: no comment of ours yet, or the forge failed).
    async fn rewrite_section(&self, link: &Link, number: u64, section: &str) -> bool {
        let Some(repo) = Self::api_repo(link) else {
            return true;
        };
        let comments = match self.rest.comments(&repo, number).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(number, error = %e, "preview comment not read");
                return false;
            }
        };
        let Some(first) = comments
            .into_iter()
            .find(|c| preview::part_of(&c.body, &link.namespace) == Some(1))
        else {
            return false;
        };
        let Some(body) = preview::with_environment(&first.body, section) else {
            return false;
        };
        if body == first.body {
            return true;
        }
        match self.rest.edit_comment(&repo, number, first.id, &body).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(number, error = %e, "preview comment not edited");
                false
            }
        }
    }

    /// A preview environment of a linked namespace was removed: its comment says so.
    pub async fn environment_removed(&self, env: &Environment, why: &str) {
        self.forget(&env.namespace);
        let (Some(number), Ok(Some(link))) = (env.number, self.store.link(&env.parent).await)
        else {
            return;
        };
        let section = preview::environment(&env.namespace, &EnvironmentNote::Removed(why));
        let _ = self.rewrite_section(&link, number, &section).await;
    }

    /// Tells the forge whenever a linked namespace's preview environment moves on
    /// (building to ready or failed, waiting to started), for ever.
    pub async fn watch_environments(self: Arc<Self>) {
        let Some(previews) = self.environments.get().cloned() else {
            return;
        };
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            let Ok(all) = self.store.all_environments().await else {
                continue;
            };
            let parents: std::collections::BTreeSet<String> = all
                .into_iter()
                .filter(|e| e.number.is_some())
                .map(|e| e.parent)
                .collect();
            for parent in parents {
                let Ok(Some(link)) = self.store.link(&parent).await else {
                    continue;
                };
                let Ok(views) = previews.list(&parent).await else {
                    continue;
                };
                for view in views {
                    let Some(number) = view.env.number else {
                        continue;
                    };
                    if !self.remember(&view) {
                        continue;
                    }
                    let section =
                        preview::environment(&view.env.namespace, &EnvironmentNote::Now(&view));
                    if !self.rewrite_section(&link, number, &section).await {
                        // Its comment is not there yet (or the forge failed): again next time.
                        self.forget(&view.env.namespace);
                        continue;
                    }
                    self.environment_status(&link, &view).await;
                }
            }
        }
    }

    /// Records what the forge was last told of `view`'s environment; whether it changed.
    fn remember(&self, view: &View) -> bool {
        let now = (view.env.head.clone(), view.phase.clone(), view.urls.clone());
        let mut told = self.told.lock().unwrap_or_else(PoisonError::into_inner);
        told.insert(view.env.namespace.clone(), now.clone()) != Some(now)
    }

    fn forget(&self, namespace: &str) {
        self.told
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(namespace);
    }
}

/// What the forge was last told of an environment: its head, phase and URLs.
pub(crate) type Told = HashMap<String, (String, Phase, Vec<(String, String)>)>;
