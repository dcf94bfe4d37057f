//! Pull-request previews: fetch the head (`refs/pull/N/head`, GitLab's
//! `refs/merge-requests/N/head`) into the namespace's repo, validate and plan it against
//! what runs now with the engine `micro diff` uses, and keep one comment (or its parts)
//! on the pull request up to date, with a commit status on the head.

use crate::follow::{Follower, origin};
use crate::preview::{self, Heading, Outcome};
use crate::rest::{ApiRepo, RestError, State};
use micro_store::{Link, Preview};
use micro_tenant::forge::Forge;
use micro_tenant::repo::LoadError;
use std::collections::BTreeMap;

/// Open previews one namespace may have: each is a row and a ref, and any signed
/// delivery could ask for a new one. (Checked as a preview starts, so each fetch worker
/// racing another may add one more.)
const MAX_PREVIEWS: usize = 200;

impl Follower {
    pub(crate) async fn preview(&self, link: &Link, number: u64, head: Option<String>) {
        if self.is_closed(&link.namespace, number) {
            tracing::info!(number, "pull request closed: its preview is dropped");
            return;
        }
        let open = self
            .store
            .previews(&link.namespace)
            .await
            .unwrap_or_default();
        if open.len() >= MAX_PREVIEWS && !open.iter().any(|p| p.number == number) {
            tracing::warn!(number, "too many open previews; this one is not made");
            return;
        }
        let want = head.as_deref().and_then(|h| git2::Oid::from_str(h).ok());
        let (mirrors, origin, repos, ns, from, dest) = (
            self.mirrors.clone(),
            origin(link),
            self.controller.repos().clone(),
            link.namespace.clone(),
            Forge::of_link(&link.forge).pull_head_ref(number),
            micro_tenant::change::pull_preview_ref(number),
        );
        let fetched = micro_reconciler::blocking::blocking(move || {
            let dir = repos.path(&ns);
            let admit = crate::follow::admit(&dir, &ns);
            mirrors.fetch_into(&origin, &from, want, &dir, &dest, &admit)
        })
        .await;
        let fetched = match fetched {
            Ok(Ok(f)) => f,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(_)) => String::new(),
                };
                tracing::warn!(number, %error, "cannot fetch the pull request");
                let _written = self.previews_written.lock().await;
                if self.is_closed(&link.namespace, number) {
                    tracing::info!(number, "pull request closed: its preview is dropped");
                    return;
                }
                let record = Preview {
                    namespace: link.namespace.clone(),
                    number,
                    head: head.clone().unwrap_or_default(),
                    summary: String::new(),
                    result: "failed".into(),
                    // The forge's and git's words stay in the server's log.
                    error: Some("cannot fetch the pull request from the forge".into()),
                    fingerprint: None,
                    merge_commit: None,
                    updated_at: 0,
                };
                let _ = self.store.put_preview(&record).await;
                if let Some(sha) = &head {
                    self.set_status(link, sha, State::Failure, "micro could not fetch this head")
                        .await;
                }
                return;
            }
        };
        self.record_fetch(fetched.fetched);
        let sha = fetched.commit.to_string();
        self.set_status(
            link,
            &sha,
            State::Pending,
            &format!("micro is planning #{number}"),
        )
        .await;
        let loaded = self
            .controller
            .load(
                &link.namespace,
                &micro_tenant::change::pull_preview_ref(number),
            )
            .await;
        // What a forge is told: the tenant's own mistakes in full; the platform's
        // internals (git, the runtime) only in the server's log.
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(number, error = %e, "{what}");
            format!("the platform could not {what} now; it tries again on the next push")
        };
        let (plan, invalid) = match loaded {
            Ok((_, Ok(desired))) => match self.controller.plan(&desired).await {
                Ok(plan) => (Some(plan), None),
                Err(e) => (None, Some(internal("read what runs", &e))),
            },
            Ok((_, Err(LoadError::Invalid(e)))) => (None, Some(e.to_string())),
            Ok((_, Err(LoadError::Quota(e)))) => (None, Some(e)),
            Ok((_, Err(LoadError::Git(e)))) => (None, Some(internal("read this head", &e))),
            Err(e) => (None, Some(internal("read this head", &e))),
        };
        let environment = self
            .environment_step(link, number, &sha, plan.is_some())
            .await;
        // Closed meanwhile (its ref may be gone already): the close wins, and the ref
        // this fetch made goes too, and any environment it started.
        let _written = self.previews_written.lock().await;
        if self.is_closed(&link.namespace, number) {
            self.drop_preview_ref(&link.namespace, number).await;
            if let Some(previews) = self.environments.get()
                && let Err(e) = previews
                    .close(
                        &link.namespace,
                        &micro_tenant::preview::Source::Pull(number),
                    )
                    .await
            {
                tracing::warn!(number, error = %e, "preview environment not removed");
            }
            tracing::info!(number, "pull request closed: its preview is dropped");
            return;
        }
        let outcome = match (&plan, &invalid) {
            (Some(plan), _) => Outcome::Plan(plan),
            (None, error) => Outcome::Invalid(error.as_deref().unwrap_or("")),
        };
        let heading = Heading {
            namespace: &link.namespace,
            number,
            head: &sha,
            environment: environment.as_ref().map(|(section, _)| section.as_str()),
        };
        let limit = match Forge::of_link(&link.forge) {
            Forge::GitHub => preview::GITHUB_LIMIT,
            // Gitea and GitLab take far more; one comment reads better.
            _ => 1_000_000,
        };
        let bodies = preview::render(&heading, &outcome, limit);
        if let Some(repo) = Self::api_repo(link)
            && let Err(e) = self
                .sync_comments(&repo, &link.namespace, number, &bodies)
                .await
        {
            tracing::warn!(number, error = %e, "preview comment not written");
        }
        let summary = plan
            .as_ref()
            .map(|p| p.summary().to_string())
            .unwrap_or_default();
        let record = Preview {
            namespace: link.namespace.clone(),
            number,
            head: sha.clone(),
            summary: summary.clone(),
            result: if plan.is_some() { "planned" } else { "invalid" }.into(),
            error: invalid.clone(),
            fingerprint: plan.as_ref().map(micro_reconciler::plan::Plan::fingerprint),
            merge_commit: None,
            updated_at: 0,
        };
        if let Err(e) = self.store.put_preview(&record).await {
            tracing::error!(number, error = %e, "recording the preview");
        }
        match &invalid {
            None => self.set_status(link, &sha, State::Success, &summary).await,
            Some(error) => {
                self.set_status(link, &sha, State::Failure, &format!("invalid: {error}"))
                    .await;
            }
        }
        if let Some((_, view)) = &environment
            && view.env.head == sha
        {
            self.environment_status(link, view).await;
        }
    }

    /// Removes the ref a preview of pull request `number` was fetched into, if any.
    async fn drop_preview_ref(&self, namespace: &str, number: u64) {
        let (repos, ns) = (self.controller.repos().clone(), namespace.to_owned());
        let _ = micro_reconciler::blocking::blocking(move || {
            let repo = git2::Repository::open_bare(repos.path(&ns)).ok()?;
            repo.find_reference(&micro_tenant::change::pull_preview_ref(number))
                .ok()?
                .delete()
                .ok()
        })
        .await;
    }

    /// Makes the pull request's comments of this namespace's preview read `bodies`:
    /// existing parts edited in place (only when they differ), missing ones created,
    /// leftovers (and duplicates) deleted.
    async fn sync_comments(
        &self,
        repo: &ApiRepo,
        namespace: &str,
        number: u64,
        bodies: &[String],
    ) -> Result<(), RestError> {
        let mut ours: BTreeMap<usize, crate::rest::Comment> = BTreeMap::new();
        let mut extra = Vec::new();
        for c in self.rest.comments(repo, number).await? {
            let Some(part) = preview::part_of(&c.body, namespace) else {
                continue;
            };
            match ours.entry(part) {
                std::collections::btree_map::Entry::Occupied(_) => extra.push(c.id),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(c);
                }
            }
        }
        for (i, body) in bodies.iter().enumerate() {
            match ours.remove(&(i + 1)) {
                Some(c) if c.body == *body => {}
                Some(c) => match self.rest.edit_comment(repo, number, c.id, body).await {
                    Ok(()) => {}
                    // Not ours to edit after all (someone pasted our marker): a new one.
                    Err(RestError::Status {
                        status: 403 | 404, ..
                    }) => {
                        self.rest.create_comment(repo, number, body).await?;
                    }
                    Err(e) => return Err(e),
                },
                None => {
                    self.rest.create_comment(repo, number, body).await?;
                }
            }
        }
        for id in ours.into_values().map(|c| c.id).chain(extra) {
            if let Err(e) = self.rest.delete_comment(repo, number, id).await {
                tracing::warn!(number, id, error = %e, "leftover preview part not deleted");
            }
        }
        Ok(())
    }

    /// A pull request closed: unmerged, its preview goes; merged, the history entry of
    /// its merge commit gets a note (now, or when that commit is applied).
    pub async fn closed(
        &self,
        link: &Link,
        number: u64,
        merged: bool,
        merge_commit: Option<String>,
    ) {
        let _written = self.previews_written.lock().await;
        if let Some(previews) = self.environments.get() {
            match previews
                .close(
                    &link.namespace,
                    &micro_tenant::preview::Source::Pull(number),
                )
                .await
            {
                Ok((removed, started)) => {
                    if let Some(env) = removed {
                        let why = if merged {
                            "the pull request merged"
                        } else {
                            "the pull request closed"
                        };
                        self.environment_removed(&env, why).await;
                    }
                    // The rest: the environment watch tells their pull requests.
                    let _ = started;
                }
                Err(e) => tracing::warn!(number, error = %e, "preview environment not removed"),
            }
        }
        self.drop_preview_ref(&link.namespace, number).await;
        let previews = self
            .store
            .previews(&link.namespace)
            .await
            .unwrap_or_default();
        let Some(mut preview) = previews.into_iter().find(|p| p.number == number) else {
            return;
        };
        if !merged {
            let _ = self.store.delete_preview(&link.namespace, number).await;
            return;
        }
        // Applied already? (The push of the merge often arrives first.)
        if let Some(commit) = &merge_commit
            && let Some((started_us, fingerprint)) = self.applied(&link.namespace, commit)
        {
            self.annotate(&preview, started_us, fingerprint.as_deref())
                .await;
            return;
        }
        preview.merge_commit = merge_commit;
        preview.result = "merged".into();
        let _ = self.store.put_preview(&preview).await;
    }
}
