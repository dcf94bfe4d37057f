//! The follower: fetches linked repos into their namespaces. Work is keyed by (namespace,
//! branch or pull request), never by delivery, on the reconciler's coalescing queue:
//! a thousand deliveries for one push are one fetch, and the newest head wins. A failed
//! fetch is retried with backoff, recorded on the link and in the namespace's history,
//! and never touches what runs. A poll with jitter is the safety net for lost deliveries.

use crate::rest::Rest;
use micro_reconciler::Controller;
use micro_reconciler::controller::rand_fraction;
use micro_reconciler::queue::{Queue, retry_policy};
use micro_store::Trigger;
use micro_store::{HistoryEntry, Link, ReconcileResult, Store};
use micro_tenant::linked::{Fetched, Mirrors, Origin};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What a piece of work is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The tracked branch: what the namespace runs.
    Branch,
    /// A pull (merge) request's head.
    Pull(u64),
}

/// One piece of work: a namespace's branch or one of its pull requests.
type Key = (String, Target);

pub(crate) type Recent = (String, i64, Option<String>);

/// Fetches after this many failures in a row wait for the next poll.
const MAX_ATTEMPTS: usize = 6;

/// Fetches linked repos into their namespaces' repos (the ref watcher does the rest),
/// previews their pull requests and reports back to the forges.
pub struct Follower {
    pub(crate) store: Store,
    pub(crate) controller: Arc<Controller>,
    pub(crate) mirrors: Arc<Mirrors>,
    pub(crate) rest: Rest,
    /// Where users and forges reach the platform.
    pub(crate) public_url: String,
    /// Per namespace, the fetched revision whose reconcile the forge awaits a status for.
    pub(crate) reports: Mutex<crate::report::Reports>,
    /// Per namespace, revisions applied lately: (revision, history key, fingerprint).
    pub(crate) recent: Mutex<HashMap<String, std::collections::VecDeque<Recent>>>,
    queue: Queue<Key>,
    /// The newest head a delivery named, per work key (`None`: fetch whatever is there).
    wanted: Mutex<HashMap<Key, Option<String>>>,
    /// The last error of each failing fetch: one history entry per distinct error.
    failures: Mutex<HashMap<Key, String>>,
    fetches: AtomicU64,
    /// Pull requests closed since a preview of them may have been asked for: a close
    /// wins over a preview in flight.
    pub(crate) closed: Mutex<Pulls>,
    /// Held while a preview is written or a closed one removed, so neither lands in the
    /// other's middle.
    pub(crate) previews_written: tokio::sync::Mutex<()>,
    /// Pull requests whose head comes from the linked repository itself, as their
    /// deliveries said. Any other is a fork's: forgotten (the set is bounded) means one.
    pub(crate) same_repo: Mutex<Pulls>,
    /// Preview environments, when the server runs them.
    pub(crate) environments: std::sync::OnceLock<Arc<micro_previews::Previews>>,
    /// What each environment's comment and status last said.
    pub(crate) told: Mutex<crate::environments::Told>,
}

/// Pull requests by (namespace, number), the most recent few thousand: a delivery can
/// name any number, so what is kept of them is bounded.
#[derive(Default)]
pub(crate) struct Pulls {
    set: HashSet<(String, u64)>,
    order: std::collections::VecDeque<(String, u64)>,
}

/// How many pull requests each such set remembers (a preview in flight is seconds old).
const PULLS_REMEMBERED: usize = 4096;

impl Pulls {
    pub(crate) fn insert(&mut self, namespace: &str, number: u64) {
        let key = (namespace.to_owned(), number);
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > PULLS_REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    pub(crate) fn remove(&mut self, namespace: &str, number: u64) {
        self.set.remove(&(namespace.to_owned(), number));
    }

    pub(crate) fn contains(&self, namespace: &str, number: u64) -> bool {
        self.set.contains(&(namespace.to_owned(), number))
    }
}

impl Follower {
    pub fn new(
        controller: Arc<Controller>,
        mirrors: Mirrors,
        rest: Rest,
        public_url: String,
    ) -> Arc<Self> {
        Arc::new(Follower {
            store: controller.store().clone(),
            controller,
            mirrors: Arc::new(mirrors),
            rest,
            public_url,
            reports: Mutex::default(),
            recent: Mutex::new(HashMap::new()),
            queue: Queue::with_retries("fetch", retry_policy(Some(MAX_ATTEMPTS))),
            wanted: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
            closed: Mutex::default(),
            previews_written: tokio::sync::Mutex::new(()),
            same_repo: Mutex::default(),
            environments: std::sync::OnceLock::new(),
            told: Mutex::default(),
        })
    }

    /// Pull requests' previews run in environments of their own from now on.
    pub fn run_previews(&self, previews: Arc<micro_previews::Previews>) {
        let _ = self.environments.set(previews);
    }

    /// Whether pull request `number`'s head comes from a fork, as its delivery says.
    pub fn mark_fork(&self, namespace: &str, number: u64, fork: bool) {
        let mut same = self
            .same_repo
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if fork {
            same.remove(namespace, number);
        } else {
            same.insert(namespace, number);
        }
    }

    pub(crate) fn is_fork(&self, namespace: &str, number: u64) -> bool {
        !self
            .same_repo
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(namespace, number)
    }

    /// Counts a fetch that went to the network.
    pub(crate) fn record_fetch(&self, fetched: bool) {
        if fetched {
            self.fetches.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Network fetches made so far (a head already mirrored costs none).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Asks for `target` of `namespace` to be fetched; `head`, when a delivery named one,
    /// lets a mirror that already has it skip the network.
    pub fn enqueue(&self, namespace: &str, target: Target, head: Option<&str>, why: Trigger) {
        if let Target::Pull(number) = target {
            self.closed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(namespace, number);
        }
        let key = (namespace.to_owned(), target);
        {
            let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
            match wanted.get_mut(&key) {
                // A poll (no head) queued meanwhile still fetches.
                Some(slot) => *slot = slot.as_ref().and(head.map(str::to_owned)),
                None => {
                    wanted.insert(key.clone(), head.map(str::to_owned));
                }
            }
        }
        self.queue.trigger(&key, why);
    }

    /// Where `namespace`'s repo is.
    pub fn repo_path(&self, namespace: &str) -> std::path::PathBuf {
        self.controller.repos().path(namespace)
    }

    /// A pull request was closed: a preview of it in flight writes nothing more.
    pub fn mark_closed(&self, namespace: &str, number: u64) {
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(namespace, number);
    }

    pub(crate) fn is_closed(&self, namespace: &str, number: u64) -> bool {
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(namespace, number)
    }

    /// Tells the forges how each reconcile of a linked namespace went, for ever.
    pub async fn report(self: Arc<Self>) {
        let mut reconciled = self.controller.subscribe();
        loop {
            match reconciled.recv().await {
                Ok(r) => self.on_reconciled(r).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "reconciles not reported to forges");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// One fetch worker: takes work off the queue, for ever (run several).
    pub async fn fetch(self: Arc<Self>) {
        loop {
            let (key, why) = self.queue.next().await;
            let head = self
                .wanted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key)
                .flatten();
            let (ns, target) = &key;
            self.work(ns, *target, head, why.contains(&Trigger::Retry))
                .await;
            self.queue.done(&key);
        }
    }

    /// Every link's branch fetched every `poll` (±20%): the safety net for lost
    /// deliveries.
    pub async fn poll(self: Arc<Self>, poll: Duration) {
        loop {
            tokio::time::sleep(poll.mul_f64(0.8 + 0.4 * rand_fraction())).await;
            match self.store.links().await {
                Ok(links) => {
                    for link in links {
                        self.enqueue(&link.namespace, Target::Branch, None, Trigger::Resync);
                    }
                }
                Err(e) => tracing::error!(error = %e, "listing links to poll"),
            }
        }
    }

    /// Fetches a newly linked repo at once, for as long as the store tells of links.
    pub async fn watch_links(self: Arc<Self>) {
        let mut changes = self.store.watch_links();
        let mut known: HashSet<(String, String)> = HashSet::new();
        loop {
            match self.store.links().await {
                Ok(links) => {
                    let now: HashSet<_> = links
                        .iter()
                        .map(|l| (l.namespace.clone(), l.id.clone()))
                        .collect();
                    for (ns, _) in now.difference(&known) {
                        self.enqueue(ns, Target::Branch, None, Trigger::Created);
                    }
                    known = now;
                }
                Err(e) => tracing::error!(error = %e, "listing links"),
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    async fn work(&self, namespace: &str, target: Target, head: Option<String>, retry: bool) {
        let link = match self.store.link(namespace).await {
            Ok(Some(link)) => link,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(namespace, error = %e, "reading the link");
                return;
            }
        };
        let span = tracing::info_span!("follow", namespace, url = %link.url, ?target);
        let _ =
            tracing::Instrument::instrument(self.follow(&link, target, head, retry), span).await;
    }

    async fn follow(&self, link: &Link, target: Target, head: Option<String>, retry: bool) {
        let Target::Branch = target else {
            if let Target::Pull(number) = target {
                self.preview(link, number, head).await;
            }
            return;
        };
        let want = head.as_deref().and_then(|h| git2::Oid::from_str(h).ok());
        let (mirrors, origin, branch, repos, ns) = (
            self.mirrors.clone(),
            origin(link),
            link.branch.clone(),
            self.controller.repos().clone(),
            link.namespace.clone(),
        );
        let result = micro_reconciler::blocking::blocking(move || {
            let before = repos.head(&ns).ok();
            let dir = repos.path(&ns);
            mirrors
                .follow(&origin, &branch, want, &dir, &admit(&dir, &ns))
                .map(|f| (f, before))
        })
        .await;
        let key = (link.namespace.clone(), target);
        match result {
            Ok(Ok((Fetched { commit, fetched }, before))) => {
                if fetched {
                    self.fetches.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(%commit, fetched, "followed");
                if before != Some(commit) {
                    self.applying(link, &commit.to_string()).await;
                }
                self.failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&key);
                self.queue.succeeded(&key);
                let _ = self
                    .store
                    .record_link_fetch(&link.namespace, Ok(&commit.to_string()))
                    .await;
            }
            Ok(Err(e)) => self.failed(link, &key, e.to_string(), retry).await,
            Err(e) => self.failed(link, &key, e.to_string(), retry).await,
        }
    }

    /// Records a failed fetch (once per distinct error in the history) and retries it
    /// with the queue's backoff; after [`MAX_ATTEMPTS`] in a row the poll takes over.
    async fn failed(&self, link: &Link, key: &Key, error: String, retry: bool) {
        let error = format!(
            "cannot fetch {} ({}): {error}; what runs stays",
            link.url, link.branch
        );
        let new = {
            let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            failures.insert(key.clone(), error.clone()).as_ref() != Some(&error)
        };
        if !retry {
            // A failure of a push or a poll starts the backoff over.
            self.queue.succeeded(key);
        }
        let retry_in = self.queue.retry_later(key);
        tracing::warn!(%error, ?retry_in, "fetch failed");
        let _ = self
            .store
            .record_link_fetch(&link.namespace, Err(&error))
            .await;
        if new {
            let (repos, ns) = (self.controller.repos().clone(), link.namespace.clone());
            let revision = micro_reconciler::blocking::blocking(move || repos.head(&ns))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|h| h.to_string())
                .unwrap_or_default();
            let entry = HistoryEntry {
                namespace: link.namespace.clone(),
                started_us: micro_store::now_micros(),
                revision,
                triggers: vec![Trigger::Fetch],
                result: ReconcileResult::Failed,
                summary: String::new(),
                error: Some(error),
                duration_ms: 0,
                plan_ms: 0,
                apply_ms: 0,
                note: None,
            };
            let _ = self.store.record_reconcile(&entry).await;
        }
    }
}

/// The namespace's repo-size quota, checked on a mirror before its commits are copied
/// into the namespace's repo (the pre-receive hook never sees them).
pub(crate) fn admit(
    repo_dir: &std::path::Path,
    namespace: &str,
) -> impl Fn(&std::path::Path) -> Result<(), String> {
    let quota = micro_tenant::marks::quota(repo_dir);
    let namespace = namespace.to_owned();
    move |objects| {
        quota
            .check_repo_size(&namespace, &[objects])
            .map_err(|e| e.to_string())
    }
}

/// Where a link fetches from and as whom: each forge's documented user name for a token.
pub fn origin(link: &Link) -> Origin {
    let user = micro_tenant::forge::Forge::of_link(&link.forge).git_user();
    Origin {
        url: link.url.clone(),
        login: link.token.clone().map(|t| (user.to_owned(), t)),
    }
}
