//! A preview's life: started (or made to wait for room, or for a fork's approval), rolled
//! to each new head, and removed when its pull request closes, its branch goes, or it
//! sat idle past its TTL; a removal makes room for the oldest waiting one.

use crate::phase::{self, Phase, View};
use micro_reconciler::Controller;
use micro_reconciler::blocking::blocking;
use micro_reconciler::exposure::Apps;
use micro_store::{Deletion, Environment, Store, StoreError, Trigger, now_millis};
use micro_tenant::layout::BRANCH;
use micro_tenant::preview::{self, ConfigCopy, Scope, Settings, Source};
use micro_tenant::quota::Quota;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Why a preview could not be made, moved or removed.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// Something the person asking can fix; the line says how.
    #[error("{0}")]
    Refused(String),
    #[error("no preview {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("git: {0}")]
    Git(String),
}

impl From<git2::Error> for PreviewError {
    fn from(e: git2::Error) -> Self {
        PreviewError::Git(e.message().to_owned())
    }
}

impl From<tokio::task::JoinError> for PreviewError {
    fn from(e: tokio::task::JoinError) -> Self {
        PreviewError::Git(e.to_string())
    }
}

impl From<micro_tenant::repo::RepoError> for PreviewError {
    fn from(e: micro_tenant::repo::RepoError) -> Self {
        PreviewError::Git(e.to_string())
    }
}

/// What a sweep did: previews removed (expired, or their parent no longer has them)
/// and the ones that started in the room they left.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: Vec<Environment>,
    pub started: Vec<Environment>,
}

/// Where previews are made and removed; built once by the server and shared.
pub struct Previews {
    controller: Arc<Controller>,
    store: Store,
    hook_exe: PathBuf,
    default_quota: Quota,
    apps: Option<Apps>,
    /// One change at a time: counting what is open and opening one more is one step.
    changing: tokio::sync::Mutex<()>,
}

const RUNNING: &str = "running";
const WAITING: &str = "waiting";
const APPROVAL: &str = "approval";

/// Log lines shown of a failing service.
const LOG_LINES: usize = 10;

impl Previews {
    pub fn new(
        controller: Arc<Controller>,
        hook_exe: PathBuf,
        default_quota: Quota,
        apps: Option<Apps>,
    ) -> Arc<Self> {
        Arc::new(Previews {
            store: controller.store().clone(),
            controller,
            hook_exe,
            default_quota,
            apps,
            changing: tokio::sync::Mutex::new(()),
        })
    }

    /// The parent's `previews:` settings, as its branch head says.
    pub async fn settings(&self, parent: &str) -> Result<Settings, PreviewError> {
        let (repos, parent) = (self.controller.repos().clone(), parent.to_owned());
        blocking(move || {
            let repo = git2::Repository::open_bare(repos.path(&parent))?;
            let head = repos.head(&parent)?;
            micro_tenant::repo::previews_at(&repo, head)
                .map_err(|e| PreviewError::Refused(format!("micro.yaml of {parent}: {e}")))
        })
        .await?
    }

    /// A pull request or a branch of `parent` is at `head` (fetched already into the
    /// parent's repo, at [`source_ref`]): its preview starts, rolls to it, or waits.
    /// `None` when the parent has previews off.
    pub async fn update(
        &self,
        parent: &str,
        source: &Source,
        head: &str,
        fork: bool,
    ) -> Result<Option<Environment>, PreviewError> {
        let settings = self.settings(parent).await?;
        if !settings.enabled {
            return Ok(None);
        }
        if self.suspended(parent).await? {
            return Err(PreviewError::Refused(format!(
                "{parent} is suspended: its previews run again once it is not"
            )));
        }
        let child = preview::namespace_of(parent, source).map_err(PreviewError::Refused)?;
        let _one = self.changing.lock().await;
        let now = now_millis();
        let mut env = match self.store.environment(&child).await? {
            Some(e) => e,
            None => Environment {
                namespace: child.clone(),
                parent: parent.to_owned(),
                source: source.label(),
                number: match source {
                    Source::Pull(n) => Some(*n),
                    Source::Branch(_) => None,
                },
                head: String::new(),
                state: String::new(),
                fork: false,
                approved: false,
                active_at: now,
                created_at: 0,
            },
        };
        env.head = head.to_owned();
        env.active_at = now;
        env.fork |= fork;
        if env.fork && !env.approved {
            env.state = APPROVAL.into();
            self.store.put_environment(&env).await?;
        } else {
            self.place(&mut env, &settings).await?;
        }
        Ok(Some(env))
    }

    /// Runs `env` (rolls it, when it runs already) if there is room for it among its
    /// parent's, else makes it wait; its row written before anything runs.
    async fn place(&self, env: &mut Environment, settings: &Settings) -> Result<(), PreviewError> {
        if env.state != RUNNING {
            env.state = if self.running(&env.parent).await? >= settings.max as usize {
                WAITING.into()
            } else {
                RUNNING.into()
            };
        }
        self.store.put_environment(env).await?;
        if env.state == RUNNING {
            self.deploy(env, settings).await?;
        }
        Ok(())
    }

    /// A fork's preview may run now (someone of the namespace said so).
    pub async fn approve(
        &self,
        parent: &str,
        source: &Source,
    ) -> Result<Environment, PreviewError> {
        let settings = self.settings(parent).await?;
        let child = preview::namespace_of(parent, source).map_err(PreviewError::Refused)?;
        let _one = self.changing.lock().await;
        let mut env = self
            .store
            .environment(&child)
            .await?
            .filter(|e| e.parent == parent)
            .ok_or_else(|| PreviewError::NotFound(source.label()))?;
        if env.approved || !env.fork {
            return Ok(env);
        }
        env.approved = true;
        env.active_at = now_millis();
        self.place(&mut env, &settings).await?;
        Ok(env)
    }

    /// The pull request closed (or the branch went, or someone deleted the preview):
    /// the preview goes, whole. Returns what it was (if anything) and the previews that
    /// started in its room.
    pub async fn close(
        &self,
        parent: &str,
        source: &Source,
    ) -> Result<(Option<Environment>, Vec<Environment>), PreviewError> {
        let Ok(child) = preview::namespace_of(parent, source) else {
            return Ok((None, Vec::new()));
        };
        let _one = self.changing.lock().await;
        let Some(env) = self
            .store
            .environment(&child)
            .await?
            .filter(|e| e.parent == parent)
        else {
            return Ok((None, Vec::new()));
        };
        self.remove(&env).await?;
        let started = self.promote(parent).await?;
        Ok((Some(env), started))
    }

    /// Every preview of `parent` goes (the parent itself is being deleted).
    pub async fn close_all(&self, parent: &str) -> Result<(), PreviewError> {
        let _one = self.changing.lock().await;
        for env in self.store.environments(parent).await? {
            self.remove(&env).await?;
        }
        Ok(())
    }

    /// Removes previews idle past their parent's TTL, and those whose parent turned
    /// previews off, is suspended or is gone; then starts waiting ones in the room made.
    pub async fn sweep(&self) -> Result<Swept, PreviewError> {
        let mut swept = Swept::default();
        let mut settings: HashMap<String, Option<Settings>> = HashMap::new();
        let now = now_millis();
        let _one = self.changing.lock().await;
        for env in self.store.all_environments().await? {
            if !settings.contains_key(&env.parent) {
                let s = self.settings(&env.parent).await.ok();
                settings.insert(env.parent.clone(), s);
            }
            let gone = match settings.get(&env.parent).and_then(Option::as_ref) {
                None => !self.store.namespace_exists(&env.parent).await?,
                Some(s) => {
                    !s.enabled
                        || self.suspended(&env.parent).await?
                        || now.saturating_sub(env.active_at)
                            > i64::try_from(s.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
                }
            };
            if gone {
                tracing::info!(preview = %env.namespace, "preview expired");
                self.remove(&env).await?;
                swept.removed.push(env);
            }
        }
        let parents: BTreeSet<String> = swept.removed.iter().map(|e| e.parent.clone()).collect();
        for parent in parents {
            if self.store.namespace_exists(&parent).await? {
                swept.started.extend(self.promote(&parent).await?);
            }
        }
        Ok(swept)
    }

    /// Brings a platform-hosted parent's branch previews in line with its branches: a
    /// new or moved branch (other than main) starts or rolls its preview, a deleted one
    /// removes it. Returns the previews changed.
    pub async fn sync_branches(&self, parent: &str) -> Result<Vec<Environment>, PreviewError> {
        if self.store.link(parent).await?.is_some() || preview::parent_of(parent).is_some() {
            return Ok(Vec::new());
        }
        let settings = self.settings(parent).await?;
        let (repos, ns) = (self.controller.repos().clone(), parent.to_owned());
        let branches: Vec<(String, String)> = blocking(move || -> Result<_, git2::Error> {
            let repo = git2::Repository::open_bare(repos.path(&ns))?;
            let mut out = Vec::new();
            for r in repo.references_glob("refs/heads/*")?.flatten() {
                if let (Ok(name), Some(target)) = (r.name(), r.target())
                    && name != BRANCH
                {
                    let branch = name.trim_start_matches("refs/heads/").to_owned();
                    out.push((branch, target.to_string()));
                }
            }
            Ok(out)
        })
        .await??;
        let mut changed = Vec::new();
        let open = self.store.environments(parent).await?;
        for env in open.iter().filter(|e| e.number.is_none()) {
            if !branches.iter().any(|(b, _)| *b == env.source) {
                let (closed, started) = self
                    .close(parent, &Source::Branch(env.source.clone()))
                    .await?;
                changed.extend(closed);
                changed.extend(started);
            }
        }
        if !settings.enabled {
            return Ok(changed);
        }
        for (branch, head) in branches {
            let known = open
                .iter()
                .find(|e| e.number.is_none() && e.source == branch);
            if known.is_some_and(|e| e.head == head) {
                continue;
            }
            match self
                .update(parent, &Source::Branch(branch.clone()), &head, false)
                .await
            {
                Ok(Some(env)) => changed.push(env),
                Ok(None) => {}
                Err(PreviewError::Refused(why)) => {
                    tracing::warn!(parent, branch, why, "no preview for this branch");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }

    /// A parent's previews as shown.
    pub async fn list(&self, parent: &str) -> Result<Vec<View>, PreviewError> {
        let settings = self.settings(parent).await.unwrap_or_default();
        let all = self.store.environments(parent).await?;
        let mut out = Vec::with_capacity(all.len());
        for env in &all {
            out.push(self.view_among(env.clone(), &settings, &all).await?);
        }
        Ok(out)
    }

    /// The preview of `source` of `parent`, as shown.
    pub async fn find(&self, parent: &str, source: &Source) -> Result<View, PreviewError> {
        let child = preview::namespace_of(parent, source).map_err(PreviewError::Refused)?;
        let env = self
            .store
            .environment(&child)
            .await?
            .filter(|e| e.parent == parent)
            .ok_or_else(|| PreviewError::NotFound(source.label()))?;
        self.view(env).await
    }

    /// Where `env` stands now.
    pub async fn view(&self, env: Environment) -> Result<View, PreviewError> {
        let settings = self.settings(&env.parent).await.unwrap_or_default();
        let all = self.store.environments(&env.parent).await?;
        self.view_among(env, &settings, &all).await
    }

    /// Where `env` stands, among `all` its parent's previews, under its parent's
    /// `settings`.
    async fn view_among(
        &self,
        env: Environment,
        settings: &Settings,
        all: &[Environment],
    ) -> Result<View, PreviewError> {
        let expires_at = env
            .active_at
            .saturating_add(i64::try_from(settings.ttl_secs * 1000).unwrap_or(i64::MAX));
        let services = match env.state.as_str() {
            WAITING | APPROVAL => Vec::new(),
            _ => self.store.service_statuses(&env.namespace).await?,
        };
        let phase = match env.state.as_str() {
            WAITING => {
                let ahead = all
                    .iter()
                    .take_while(|e| e.namespace != env.namespace)
                    .filter(|e| e.state == WAITING)
                    .count();
                Phase::Waiting {
                    ahead,
                    max: settings.max,
                }
            }
            APPROVAL => Phase::Approval,
            _ => {
                let status = self.store.namespace_status(&env.namespace).await?;
                match phase::of_running(&env, status.as_ref(), &services) {
                    Ok(p) => p,
                    Err(failing) => {
                        let s = services.iter().find(|s| s.name == failing);
                        let reason = format!("{failing}: {}", s.map_or("", |s| s.message.as_str()));
                        let secrets = self.store.secret_values(&env.namespace).await?;
                        let logs = self
                            .last_lines(&env.namespace, &failing)
                            .await
                            .iter()
                            .map(|l| phase::mask(l, &secrets))
                            .collect();
                        Phase::Failed {
                            reason: phase::mask(&reason, &secrets),
                            logs,
                        }
                    }
                }
            }
        };
        let urls = match &self.apps {
            Some(apps) => {
                let exposure = self.controller.exposure();
                services
                    .iter()
                    .filter_map(|s| {
                        apps.url(exposure, &env.namespace, &s.name)
                            .map(|u| (s.name.clone(), u))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(View {
            env,
            phase,
            urls,
            expires_at,
        })
    }

    async fn last_lines(&self, namespace: &str, service: &str) -> Vec<String> {
        use futures_util::StreamExt;
        let query = micro_runtime::LogQuery {
            tail: LOG_LINES,
            follow: false,
            since_ms: None,
        };
        let Ok(mut stream) = self
            .controller
            .runtime()
            .logs(namespace, service, query)
            .await
        else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > 64 << 10 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.chars().take(300).collect())
            .collect();
        lines[lines.len().saturating_sub(LOG_LINES)..].to_vec()
    }

    /// Whether `parent` is suspended (unpaid, or by an admin): its previews neither
    /// start nor stay.
    async fn suspended(&self, parent: &str) -> Result<bool, PreviewError> {
        let path = self.controller.repos().path(parent);
        Ok(blocking(move || micro_tenant::marks::suspension(&path).is_some()).await?)
    }

    async fn running(&self, parent: &str) -> Result<usize, PreviewError> {
        Ok(self
            .store
            .environments(parent)
            .await?
            .iter()
            .filter(|e| e.state == RUNNING)
            .count())
    }

    /// Starts the oldest waiting previews of `parent` while there is room.
    async fn promote(&self, parent: &str) -> Result<Vec<Environment>, PreviewError> {
        let settings = self.settings(parent).await?;
        let mut started = Vec::new();
        let mut running = self.running(parent).await?;
        for mut env in self.store.environments(parent).await? {
            if env.state != WAITING || running >= settings.max as usize {
                continue;
            }
            env.state = RUNNING.into();
            env.active_at = now_millis();
            self.store.put_environment(&env).await?;
            self.deploy(&env, &settings).await?;
            running += 1;
            started.push(env);
        }
        Ok(started)
    }

    /// Makes `env`'s namespace run its head: the repo (made once), the scope and quota
    /// beside it, the store's row, the config copied, then the branch moved. Everything
    /// that narrows what runs is in place before the head is.
    async fn deploy(&self, env: &Environment, settings: &Settings) -> Result<(), PreviewError> {
        const INCOMING: &str = "refs/micro/incoming";
        let child = env.namespace.clone();
        // The teardown of an earlier preview of this name would remove a repo made now.
        if self.store.deletion_pending(&child).await? {
            return Err(PreviewError::Refused(format!(
                "{child} is still being removed; the preview starts on the next push"
            )));
        }
        let source = source_ref(env);
        let (repos, exe, parent, ns) = (
            self.controller.repos().clone(),
            self.hook_exe.clone(),
            env.parent.clone(),
            child.clone(),
        );
        blocking(move || -> Result<(), PreviewError> {
            if !repos.path(&ns).exists() {
                repos.create(&ns, &exe)?;
                // Until its scope is written, a preview runs nothing but its template.
                micro_tenant::marks::write_scope(&repos.path(&ns), &Scope::default())
                    .map_err(|e| PreviewError::Git(e.to_string()))?;
            }
            let repo = git2::Repository::open_bare(repos.path(&ns))?;
            let from = repos.path(&parent);
            let mut remote = repo.remote_anonymous(&from.to_string_lossy())?;
            remote.fetch(&[format!("+{source}:{INCOMING}")], None, None)?;
            Ok(())
        })
        .await??;
        let (_, head) = self
            .controller
            .load(&child, INCOMING)
            .await
            .map_err(PreviewError::from)?;
        let parent_desired = match self.controller.load(&env.parent, BRANCH).await {
            Ok((_, Ok(d))) => Some(d),
            _ => None,
        };
        let calls = self.store.calls(&env.parent).await?;
        let scope = match &head {
            Ok(desired) => Scope::of(
                desired,
                parent_desired.as_ref(),
                settings.services.as_ref(),
                &calls,
            ),
            // An invalid head runs nothing; the reconcile says why.
            Err(_) => Scope::default(),
        };
        let quota = self.quota(&env.parent).await?;
        let path = self.controller.repos().path(&child);
        let written = scope.clone();
        blocking(move || {
            micro_tenant::marks::write_scope(&path, &written)?;
            micro_tenant::marks::write_quota(&path, &quota)
        })
        .await?
        .map_err(|e| PreviewError::Git(e.to_string()))?;
        self.store
            .set_store_limit(&child, i64::try_from(quota.store_bytes).unwrap_or(i64::MAX));
        match self.store.create_namespace(&child).await {
            Ok(()) | Err(StoreError::Exists(_)) => {}
            Err(StoreError::BeingDeleted(_)) => {
                return Err(PreviewError::Refused(format!(
                    "{child} is still being removed; the preview starts on the next push"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        if let (Ok(desired), ConfigCopy::Copy) = (&head, settings.config) {
            self.copy_config(env, desired, &scope, settings).await?;
        }
        let (repos, ns) = (self.controller.repos().clone(), child.clone());
        blocking(move || -> Result<(), git2::Error> {
            let repo = git2::Repository::open_bare(repos.path(&ns))?;
            let id = repo.refname_to_id(INCOMING)?;
            repo.reference(BRANCH, id, true, "preview: the head it runs")?;
            Ok(())
        })
        .await??;
        self.controller.queue().trigger(&child, Trigger::Push);
        tracing::info!(preview = %child, head = %env.head, "preview deployed");
        Ok(())
    }

    /// The config values the scoped services name, copied from the parent at the same
    /// versions; a secret only when `secrets:` lists it.
    async fn copy_config(
        &self,
        env: &Environment,
        desired: &micro_tenant::DesiredNamespace,
        scope: &Scope,
        settings: &Settings,
    ) -> Result<(), PreviewError> {
        let mut done = BTreeSet::new();
        for service in desired.services.values() {
            if !scope.services.contains(&service.name) {
                continue;
            }
            for (key, version) in &service.model.config {
                if !done.insert((key.clone(), *version)) {
                    continue;
                }
                let Some(value) = self.store.config_value(&env.parent, key, *version).await? else {
                    continue;
                };
                if value.secret && !settings.secrets.contains(key) {
                    continue;
                }
                self.store
                    .copy_config_version(&env.parent, &env.namespace, key, *version)
                    .await?;
            }
        }
        Ok(())
    }

    /// The quota a preview of `parent` runs under.
    async fn quota(&self, parent: &str) -> Result<Quota, PreviewError> {
        let mut parent_quota = self.default_quota;
        if let Some(o) = self.store.quota_overrides(parent).await? {
            let _ = parent_quota.set(&o);
        }
        let class = self.store.quota_overrides(preview::QUOTA_CLASS).await?;
        Ok(preview::quota(
            self.default_quota,
            class.as_deref(),
            parent_quota,
        ))
    }

    /// Rewrites every running preview's quota (an admin changed the class).
    pub async fn requota(&self) -> Result<(), PreviewError> {
        for env in self.store.all_environments().await? {
            if env.state != RUNNING {
                continue;
            }
            let quota = self.quota(&env.parent).await?;
            let path = self.controller.repos().path(&env.namespace);
            if path.exists() {
                blocking(move || micro_tenant::marks::write_quota(&path, &quota))
                    .await?
                    .map_err(|e| PreviewError::Git(e.to_string()))?;
                self.controller
                    .queue()
                    .trigger(&env.namespace, Trigger::Push);
            }
        }
        Ok(())
    }

    /// Removes a preview whole: its namespace as any namespace is deleted (store rows,
    /// accounts and tokens in one transaction, then the repo; the reconciler stops its
    /// services and edge routes, and finishes on restart if stopped midway), and its row.
    async fn remove(&self, env: &Environment) -> Result<(), PreviewError> {
        match self.store.delete_namespace(&env.namespace).await? {
            Deletion::Deleted { .. } | Deletion::Missing => {}
            Deletion::Billed(_) => {
                return Err(PreviewError::Refused(format!(
                    "{} has a subscription of its own",
                    env.namespace
                )));
            }
        }
        self.store.delete_environment(&env.namespace).await?;
        let (repos, ns) = (self.controller.repos().clone(), env.namespace.clone());
        blocking(move || repos.remove(&ns)).await??;
        self.controller
            .queue()
            .trigger(&env.namespace, Trigger::Deleted);
        tracing::info!(preview = %env.namespace, "preview removed");
        Ok(())
    }
}

/// The ref of the parent's repo holding what `env` runs: the pull request's fetched head,
/// or the branch.
pub fn source_ref(env: &Environment) -> String {
    match env.number {
        Some(n) => micro_tenant::change::pull_preview_ref(n),
        None => format!("refs/heads/{}", env.source),
    }
}
