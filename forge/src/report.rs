//! Reporting back to forges: a commit status per fetched revision of a linked branch
//! (`pending` when taken up, `success` or `failure` once its reconcile is in the
//! history), and, when a merge is applied, a history note naming the pull request and
//! whether what was applied is what its preview showed.

use crate::follow::Follower;
use crate::rest::{self, ApiRepo, State};
use micro_reconciler::controller::Reconciled;
use micro_reconciler::metrics::Ended;
use micro_store::{Link, Preview};
use micro_tenant::forge::Forge;
use std::collections::HashMap;
use std::sync::PoisonError;

/// Per linked namespace, what a commit status waits on. The follower moves the branch
/// and then says `pending`, while the ref watcher may have the reconcile recorded first:
/// whichever of the two comes second posts the final status, always after `pending`.
#[derive(Default)]
pub(crate) struct Reports {
    /// The fetched revision whose final status is still to be posted.
    awaiting: HashMap<String, String>,
    /// The last reconcile recorded.
    finished: HashMap<String, Reconciled>,
}

/// Applied revisions remembered per linked namespace, for a merge event that arrives
/// after its merge commit was applied.
const RECENT: usize = 32;

impl Follower {
    /// The forge's REST API for `link`, when it has a token to use it with.
    pub(crate) fn api_repo(link: &Link) -> Option<ApiRepo> {
        let forge = Forge::of_link(&link.forge);
        let api = link
            .api
            .clone()
            .unwrap_or_else(|| forge.api_base(&link.url));
        if api.is_empty() {
            return None;
        }
        Some(ApiRepo {
            forge,
            api,
            path: rest::repo_path(&link.url),
            token: link.token.clone()?,
        })
    }

    /// The page a status links to.
    pub(crate) fn target_url(&self, link: &Link, sha: &str) -> String {
        format!("{}/hooks/{}/revisions/{sha}", self.public_url, link.id)
    }

    /// Sets a commit status; a forge that does not take it is logged, never retried
    /// at the cost of the namespace's work.
    pub(crate) async fn set_status(&self, link: &Link, sha: &str, state: State, description: &str) {
        let Some(repo) = Self::api_repo(link) else {
            return;
        };
        let context = format!("micro/{}", link.namespace);
        let target = self.target_url(link, sha);
        if let Err(e) = self
            .rest
            .status(&repo, sha, state, &context, description, &target)
            .await
        {
            tracing::warn!(namespace = %link.namespace, sha, error = %e, "commit status not set");
        }
    }

    /// After a restart: the revision each linked namespace last fetched still gets its
    /// final status when its (first) reconcile is recorded; a forge that already has it
    /// just sees the same status again.
    pub async fn resume(&self) -> Result<(), micro_store::StoreError> {
        let links = self.store.links().await?;
        let mut reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        for link in links {
            if let Some(rev) = link.fetched_revision {
                reports.awaiting.insert(link.namespace, rev);
            }
        }
        Ok(())
    }

    /// A fetched revision is on its way to being applied.
    pub(crate) async fn applying(&self, link: &Link, sha: &str) {
        let short = sha.get(..7).unwrap_or(sha);
        self.set_status(
            link,
            sha,
            State::Pending,
            &format!("micro is applying {short}"),
        )
        .await;
        let done = {
            let mut reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
            match reports.finished.get(&link.namespace) {
                Some(r) if r.revision == sha && r.result != Ended::Failed => Some(r.clone()),
                _ => {
                    reports
                        .awaiting
                        .insert(link.namespace.clone(), sha.to_owned());
                    None
                }
            }
        };
        if let Some(r) = done {
            self.final_status(link, &r).await;
        }
    }

    /// `success` for an applied revision, `failure` (saying why) for any other.
    async fn final_status(&self, link: &Link, r: &Reconciled) {
        let (state, description) = match r.result {
            Ended::Applied => (State::Success, "applied".to_owned()),
            Ended::Invalid => (
                State::Failure,
                format!("invalid: {}", r.error.clone().unwrap_or_default()),
            ),
            _ => (
                State::Failure,
                format!("not applied yet: {}", r.error.clone().unwrap_or_default()),
            ),
        };
        self.set_status(link, &r.revision, state, &description)
            .await;
    }

    pub(crate) async fn on_reconciled(&self, r: Reconciled) {
        let Ok(Some(link)) = self.store.link(&r.namespace).await else {
            return;
        };
        let awaited = {
            let mut reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
            reports.finished.insert(r.namespace.clone(), r.clone());
            let hit = reports.awaiting.get(&r.namespace) == Some(&r.revision);
            // A failed reconcile is retried: its revision still awaits a final word.
            if hit && r.result != Ended::Failed {
                reports.awaiting.remove(&r.namespace);
            }
            hit
        };
        if awaited {
            self.final_status(&link, &r).await;
        }
        if r.result == Ended::Applied {
            {
                let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                let list = recent.entry(r.namespace.clone()).or_default();
                if list.len() >= RECENT {
                    list.pop_front();
                }
                list.push_back((r.revision.clone(), r.started_us, r.fingerprint.clone()));
            }
            self.note_merge(&r).await;
        }
    }

    /// When `revision` of `namespace` was applied lately: its history key and the
    /// applied plan's fingerprint.
    pub(crate) fn applied(&self, namespace: &str, revision: &str) -> Option<(i64, Option<String>)> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .get(namespace)?
            .iter()
            .rev()
            .find(|(r, _, _)| r == revision)
            .map(|(_, at, f)| (*at, f.clone()))
    }

    /// Names the pull request an applied revision merged, if one of the previews is it.
    async fn note_merge(&self, r: &Reconciled) {
        let Ok(previews) = self.store.previews(&r.namespace).await else {
            return;
        };
        if previews.is_empty() {
            return;
        }
        let (repos, ns, rev) = (
            self.controller.repos().clone(),
            r.namespace.clone(),
            r.revision.clone(),
        );
        let parents: Vec<String> = micro_reconciler::blocking::blocking(move || {
            let repo = git2::Repository::open_bare(repos.path(&ns)).ok()?;
            let commit = repo.find_commit(git2::Oid::from_str(&rev).ok()?).ok()?;
            Some(commit.parent_ids().map(|p| p.to_string()).collect())
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
        let merged = previews.iter().find(|p| {
            p.merge_commit.as_deref() == Some(r.revision.as_str())
                || p.head == r.revision
                || parents.contains(&p.head)
        });
        if let Some(p) = merged {
            self.annotate(p, r.started_us, r.fingerprint.as_deref())
                .await;
        }
    }

    /// Writes the merge note on a history entry and forgets the preview.
    pub(crate) async fn annotate(&self, p: &Preview, started_us: i64, applied: Option<&str>) {
        let same = applied.is_some() && applied == p.fingerprint.as_deref();
        let note = if same {
            format!("merged #{}: applied what its preview showed", p.number)
        } else {
            format!(
                "merged #{}: the applied plan differs from its last preview (the branch moved since)",
                p.number
            )
        };
        let _ = self
            .store
            .annotate_history(&p.namespace, started_us, &note)
            .await;
        let _ = self.store.delete_preview(&p.namespace, p.number).await;
    }
}
