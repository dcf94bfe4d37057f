//! The life of one deployment: check out, build once, run replicas, restart on crash.

use super::Shared;
use super::adopt::Running;
use super::cgroup::Limits;
use super::instance::{Phase, Tracker};
use super::process::{self, Launch};
use super::sandbox;
use super::volume;
use crate::blocking::blocking;
use backon::{BackoffBuilder, ExponentialBuilder};
use micro_runtime::ConfigEnv;
use micro_runtime::{Artifact, WorkloadState};
use micro_tenant::desired::DesiredService;
use micro_tenant::quantity;
use micro_tenant::repo;
use micro_tenant::sources::SourceError;
use micro_tenant::toolchain::Toolchains;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A replica that keeps exiting waits 1 s, 2 s, 4 s … up to 5 minutes before each start,
/// and starts from 1 s again once it has run for 10 minutes.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const HEALTHY_AFTER: Duration = Duration::from_secs(600);
/// Readiness probes: often right after start (that is when a push waits on them), then
/// less often for slow starters.
const PROBE_FAST: Duration = Duration::from_millis(10);
const PROBE_SLOW: Duration = Duration::from_millis(100);
const FAST_PROBING_FOR: Duration = Duration::from_secs(2);
/// Once ready, a replica's readiness is checked this often for the rest of its life
/// (Kubernetes' `periodSeconds`), and so many failures in a row take it out of routing
/// (`failureThreshold`); one pass brings it back.
const READINESS_PERIOD: Duration = Duration::from_secs(3);
const READINESS_FAILURES: u32 = 3;

const NO_IMAGES: &str = "no `run` command: the local runtime cannot start an image";

pub(crate) async fn supervise(
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
    artifact: Artifact,
    service: DesiredService,
    config: ConfigEnv,
    cancel: CancellationToken,
) {
    if service.model.replicas == 0 {
        // Scaled to zero (a suspended namespace): nothing to check out, build or run;
        // the revision it replaces stops.
        tracker.set_phase(Phase::Running);
        tracker.finish_rollout().await;
        return;
    }
    let ns = tracker.namespace().to_owned();
    let base = shared.dirs.service_work(&ns, &service.name);
    let dir = base.join(short(&service.tree));
    let log = shared.dirs.log_file(&ns, &service.name);
    let _lease = shared.checkouts.lease(&dir);
    // A source that hangs must not hold up a kill or a newer revision.
    let checked_out = tokio::select! {
        r = checkout(&shared, &ns, &artifact, &base, &dir) => r,
        () = cancel.cancelled() => return,
    };
    let code = match checked_out {
        Ok(code) => code,
        Err(e) => return fail(&tracker, format!("checkout failed: {e}"), &cancel).await,
    };
    // The checkout's files and its build mark are read off the async threads.
    let (toolchain, built) = {
        let (code, marker) = (code.clone(), dir.join("built"));
        blocking(move || (Toolchains::of_folder(&code), marker.exists()))
            .await
            .unwrap_or_default()
    };
    // The interpreter its spec pins, linked where its PATH looks first.
    if let Some(runtime) = service.model.runtime.clone() {
        let (shared, code) = (shared.clone(), code.clone());
        let pinned = blocking(move || shared.interpreters.pin(&runtime, &code)).await;
        if let Err(e) = pinned
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            return fail(&tracker, format!("runtime: {e}"), &cancel).await;
        }
    }
    // Unchanged dependencies: the last build's environment, linked, not installed again.
    if service.model.build.is_some() && !built && shared.isolation.sandbox.is_some() {
        let (base, dir) = (base.clone(), dir.clone());
        let adopted = blocking(move || super::reuse::take_from_earlier_builds(&base, &dir)).await;
        if let Ok(Some(from)) = adopted {
            let from = from.file_name().map(|n| n.to_string_lossy().into_owned());
            tracker.event(format!(
                "environment taken from revision {} (its dependency files are the same)",
                from.unwrap_or_default()
            ));
        }
    }
    if let Some(build) = &service.model.build
        && !built
        && let Err((why, refused)) = run_build(
            &shared, &tracker, &service, build, &code, &log, toolchain, &cancel,
        )
        .await
    {
        if cancel.is_cancelled() {
            return;
        }
        // A build the platform stopped (out of time, or its namespace's folders full)
        // leaves nothing behind; one that failed by itself keeps its checkout, so a
        // retry (`micro restart`) can build on what it fetched.
        let (shared2, ns2, dir2) = (shared.clone(), ns.clone(), dir.clone());
        let full = blocking(move || over_quota(&shared2, &ns2, &dir2).is_some())
            .await
            .unwrap_or(false);
        if refused || full {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        let why = if full && !refused {
            format!(
                "{why} (its folder filled the namespace's checkout quota; what it wrote was removed)"
            )
        } else {
            why
        };
        return fail(&tracker, why, &cancel).await;
    }
    let Some(run) = service.model.run.as_deref() else {
        return fail(&tracker, NO_IMAGES.into(), &cancel).await;
    };
    let owner = match shared.sandbox_uid(&ns) {
        Ok(owner) => owner,
        Err(e) => return fail(&tracker, e.to_string(), &cancel).await,
    };
    let identity = match tracker.identity.place(
        &super::instance::Instance::identity_dir(&dir, tracker.deployment()),
        owner,
    ) {
        Ok(identity) => identity,
        Err(e) => {
            tracing::error!(error = %e, "writing a service's identity");
            let why = "the platform could not write the service's certificate identity (see the server log)";
            return fail(&tracker, why.into(), &cancel).await;
        }
    };
    tracker.set_files(dir.clone(), identity.clone(), owner);
    tracker.set_phase(Phase::Running);
    // Replicas stop on their own when the rollout fails; the deployment stays, saying why.
    let stop_replicas = cancel.child_token();
    let replicas: Vec<_> = (0..service.model.replicas as usize)
        .map(|index| {
            let launch = ReplicaLaunch {
                shared: shared.clone(),
                tracker: tracker.clone(),
                ns: ns.clone(),
                service: service.clone(),
                config: config.clone(),
                identity: identity.clone(),
                run: run.to_owned(),
                code: code.clone(),
                log: log.clone(),
                index,
                toolchain,
                tls: probe_tls(&shared, &ns, &service.name, &service.model),
            };
            tokio::spawn(
                launch
                    .run(stop_replicas.clone())
                    .instrument(tracing::Span::current()),
            )
        })
        .collect();
    let watch = tokio::spawn(
        watch_files(
            shared.clone(),
            tracker.clone(),
            dir.clone(),
            code.clone(),
            cancel.clone(),
        )
        .instrument(tracing::Span::current()),
    );
    let within = Duration::from_secs(u64::from(match service.model.ready_timeout {
        0 => micro_tenant::spec::DEFAULT_READY_TIMEOUT_SECS,
        s => s,
    }));
    let outcome = tokio::select! {
        outcome = rollout(&tracker, within) => Some(outcome),
        () = cancel.cancelled() => None,
    };
    match outcome {
        Some(Ok(())) => tracker.finish_rollout().await,
        Some(Err(why)) => {
            tracker.set_phase(Phase::Failed(why));
            stop_replicas.cancel();
        }
        None => {}
    }
    futures_util::future::join_all(replicas).await;
    if watch.await.unwrap_or(false) {
        // It filled its folder: what it wrote goes, now that nothing of it runs.
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
}

/// Watches the replicas of a deployment a previous server left running (`live`, in
/// order; `None` for one that was not): their output, readiness and liveness, as for its
/// own. One that ends or fails its liveness check has the service deployed afresh (by the
/// drift it reports), since only the server that started it knew how.
pub(crate) async fn adopted(
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
    dir: PathBuf,
    live: Vec<Option<Running>>,
    cancel: CancellationToken,
) {
    let _lease = shared.checkouts.lease(&dir);
    let log = shared.dirs.log_file(tracker.namespace(), tracker.name());
    let watchers: Vec<_> = live
        .into_iter()
        .enumerate()
        .filter_map(|(index, r)| r.map(|r| (index, r)))
        .map(|(index, running)| {
            let adopted = Adopted {
                shared: shared.clone(),
                tracker: tracker.clone(),
                index,
                running,
            };
            tokio::spawn(
                adopted
                    .watch(log.clone(), cancel.clone())
                    .instrument(tracing::Span::current()),
            )
        })
        .collect();
    let code = dir.join("code");
    let watch = tokio::spawn(
        watch_files(
            shared.clone(),
            tracker.clone(),
            dir.clone(),
            code,
            cancel.clone(),
        )
        .instrument(tracing::Span::current()),
    );
    futures_util::future::join_all(watchers).await;
    if watch.await.unwrap_or(false) {
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
}

/// One adopted replica.
struct Adopted {
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
    index: usize,
    running: Running,
}

impl Adopted {
    async fn watch(self, log: PathBuf, cancel: CancellationToken) {
        let Adopted {
            shared,
            tracker,
            index,
            running,
        } = self;
        if let Err(e) = process::follow_output(&running.fifo, &log, running.log_tag.clone()).await {
            tracing::warn!(error = %e, "cannot read an adopted replica's output");
        }
        // Its holes were the last server's: this one opens them again, where they were.
        let _holes = match reopen_holes(&shared, tracker.namespace(), &running).await {
            Ok(holes) => holes,
            Err(e) => {
                let why = format!("its network could not be opened again: {e}");
                let (shared2, r) = (shared.clone(), running.clone());
                let grace = shared.grace;
                let _ = blocking(move || super::adopt::terminate(&shared2, &r, grace)).await;
                tracker.set_process(index, None);
                tracker.set_replica_exit(index, running.host_port, why.clone(), why.clone());
                tracker.report_drift(format!("replica {} {why}", index + 1));
                return cancel.cancelled().await;
            }
        };
        let model = tracker.model().clone();
        let tls = probe_tls(&shared, tracker.namespace(), tracker.name(), &model);
        let probe = process::Probe::of(running.inner, shared.network.clone());
        let port = running.host_port;
        let mut health = Health {
            ready: true,
            routed: true,
            ..Health::default()
        };
        let mut next_ready = tokio::time::Instant::now() + READINESS_PERIOD;
        let liveness = model.liveness.as_ref();
        let period = liveness.map_or(READINESS_PERIOD, |l| {
            Duration::from_secs(u64::from(l.period.max(1)))
        });
        let mut alive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Not its parent, this server cannot wait for it: it looks once a second.
        let mut looks = tokio::time::interval(GONE_CHECK);
        let mut dead_checks = 0u32;
        let why = loop {
            tokio::select! {
                () = cancel.cancelled() => {
                    if !tracker.detaching() {
                        let (shared, running) = (shared.clone(), running.clone());
                        let grace = shared.grace;
                        let _ = blocking(move || super::adopt::terminate(&shared, &running, grace)).await;
                    }
                    return;
                }
                _ = looks.tick() => {
                    let r = running.clone();
                    if !blocking(move || r.alive()).await.unwrap_or(true) {
                        break "exited".to_owned();
                    }
                }
                () = tokio::time::sleep_until(next_ready) => {
                    let answer = probe
                        .ready(running.listen, port, model.ready_path.as_deref(), tls.as_ref())
                        .await;
                    heard(&tracker, index, &mut health, port, answer);
                    next_ready = tokio::time::Instant::now() + READINESS_PERIOD;
                }
                _ = alive.tick(), if liveness.is_some() => {
                    let Some(check) = liveness else { continue };
                    match probe.ready(running.listen, port, check.path.as_deref(), tls.as_ref()).await {
                        Ok(()) => dead_checks = 0,
                        Err(why) => {
                            dead_checks += 1;
                            if dead_checks >= check.failures {
                                break format!(
                                    "failed its liveness check: {why} ({dead_checks} checks in a row)"
                                );
                            }
                        }
                    }
                }
            }
        };
        // What is left of its group, its cgroup, pid file and pipe go.
        let (shared2, r) = (shared.clone(), running.clone());
        let grace = shared.grace;
        let _ = blocking(move || super::adopt::terminate(&shared2, &r, grace)).await;
        tracker.set_process(index, None);
        tracker.set_replica_exit(
            index,
            port,
            format!("{why}; the service is deployed afresh"),
            why.clone(),
        );
        tracker.report_drift(format!("replica {} {why}", index + 1));
        cancel.cancelled().await;
    }
}

/// How health checks reach a service that serves TLS: presenting the platform's client
/// certificate, taking only the service's own; `None` for plain HTTP.
fn probe_tls(
    shared: &Shared,
    namespace: &str,
    name: &str,
    model: &micro_tenant::desired::ServiceModel,
) -> Option<Arc<rustls::ClientConfig>> {
    if !model.tls {
        return None;
    }
    let platform = shared.isolation.platform_client.as_ref()?;
    platform
        .config_for(namespace, name)
        .map_err(|e| tracing::error!(error = %e, "a health check's TLS configuration"))
        .ok()
}

/// Opens an adopted replica's holes again where they were, if the server kept them.
async fn reopen_holes(
    shared: &Shared,
    namespace: &str,
    running: &Running,
) -> std::io::Result<Option<super::holes::Holes>> {
    let (Some(network), Some(sandbox), Some(inner), true) = (
        &shared.network,
        &shared.isolation.sandbox,
        running.inner,
        running.holes,
    ) else {
        return Ok(None);
    };
    let api = sandbox.to_api(namespace);
    super::holes::open(
        network.clone(),
        inner,
        running.host_port,
        running.listen,
        api,
    )
    .await
    .map(Some)
}

/// How often an adopted replica's process is looked for.
const GONE_CHECK: Duration = Duration::from_secs(1);

/// Runs a service's build step once in its checkout `code`, within its spec's
/// `build_timeout`, one build of the namespace at a time; `Err` says why it failed, and
/// whether the platform stopped it (out of time).
#[allow(clippy::too_many_arguments)]
async fn run_build(
    shared: &Arc<Shared>,
    tracker: &Tracker,
    service: &DesiredService,
    build: &str,
    code: &Path,
    log: &Path,
    toolchain: Toolchains,
    cancel: &CancellationToken,
) -> Result<(), (String, bool)> {
    let ns = tracker.namespace().to_owned();
    tracker.set_phase(Phase::Building);
    let _turn = tokio::select! {
        turn = shared.builds.enter(&ns) => turn,
        () = cancel.cancelled() => return Err(("stopped".into(), false)),
    };
    tracker.event("build started".into());
    let command = process::build_command(toolchain, build);
    let launch = Launch {
        namespace: &ns,
        name: &service.name,
        command: &command,
        dir: code,
        log,
        port: None,
        host_port: 0,
        // The operator's first: the service's own `env` overrides them.
        env: shared
            .isolation
            .build_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env_of(service))
            .collect(),
        identity: None,
        role: "build".into(),
        limits: limits_of(service),
        toolchain,
        pinned: service.model.runtime.is_some(),
        log_tag: Some("build".into()),
    };
    let mut group = process::spawn(shared, &launch)
        .await
        .map_err(|e| (format!("build could not start: {e}"), false))?;
    // Without one in its spec: the default, within what its namespace may have.
    let within = Duration::from_secs(match service.model.build_timeout {
        0 => shared.settings(&ns).map_or(
            u64::from(micro_tenant::spec::DEFAULT_BUILD_TIMEOUT_SECS),
            |s| {
                u64::from(micro_tenant::spec::DEFAULT_BUILD_TIMEOUT_SECS).min(s.quota.build_seconds)
            },
        ),
        s => u64::from(s),
    });
    let status = tokio::select! {
        status = group.wait() => status,
        () = tokio::time::sleep(within) => {
            group.terminate(shared.grace).await;
            return Err((
                format!(
                    "build stopped after {}s, its build_timeout; what it wrote was removed; see `micro logs {}`",
                    within.as_secs(),
                    service.name
                ),
                true,
            ));
        }
        () = cancel.cancelled() => {
            group.terminate(shared.grace).await;
            return Err(("stopped".into(), false));
        }
    };
    match status {
        Ok(s) if s.success() => {
            tracker.event("build finished".into());
            let _ = tokio::fs::write(code.with_file_name("built"), b"").await;
            Ok(())
        }
        Ok(s) => {
            let why = process::describe(&s, group.oom_killed());
            let governs = shared
                .isolation
                .sandbox
                .as_ref()
                .map(|sandbox| sandbox.build_network_said());
            let log = log.to_owned();
            let hint = blocking(move || process::log_tail(&log, NETWORK_HINT_TAIL))
                .await
                .ok()
                .flatten()
                .and_then(|tail| Some((governs?, process::network_failure(&tail)?)))
                .map_or_else(String::new, |(governs, seen)| {
                    format!(
                        "; it could not reach the network ({seen}): {governs}; or vendor what it installs (`pip install --no-index --find-links DIR`, `npm ci --offline`)"
                    )
                });
            Err((
                format!(
                    "build {why}{hint}; see `micro logs {} --build`",
                    service.name
                ),
                false,
            ))
        }
        Err(e) => Err((format!("build: {e}"), false)),
    }
}

/// How much of the end of a failed build's log is read for signs it needed the network.
const NETWORK_HINT_TAIL: u64 = 16 << 10;

/// Waits until every replica is ready at once. A replica that exits first fails the
/// rollout at once when an older revision still serves (better it keeps serving than
/// wait out a crash loop); on a first deployment it is restarted until the deadline.
async fn rollout(tracker: &Tracker, within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let changed = tracker.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let replicas = tracker.replicas();
        if replicas.iter().all(|r| r.state == WorkloadState::Running) {
            return Ok(());
        }
        if tracker.replacing()
            && let Some(exit) = replicas.iter().find_map(|r| r.exit.as_ref())
        {
            return Err(format!("the new revision {exit} before it was ready"));
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let why = replicas
                .iter()
                .filter(|r| r.state != WorkloadState::Running)
                .find_map(|r| r.exit.clone().or_else(|| Some(r.message.clone())))
                .filter(|why| !why.is_empty())
                .unwrap_or_else(|| "it never became ready".into());
            return Err(format!(
                "not ready within {}s (readiness.timeout): {why}",
                within.as_secs()
            ));
        }
    }
}

fn env_of(service: &DesiredService) -> Vec<(&str, &str)> {
    service
        .model
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The spec's `resources`, within the runtime's defaults; validation made them parse.
fn limits_of(service: &DesiredService) -> Limits {
    let default = Limits::default();
    Limits {
        memory_bytes: service
            .model
            .memory
            .as_deref()
            .and_then(quantity::parse_memory)
            .unwrap_or(default.memory_bytes),
        cpu_millis: service
            .model
            .cpu
            .as_deref()
            .and_then(quantity::parse_cpu)
            .unwrap_or(default.cpu_millis),
        pids: default.pids,
    }
}

fn short(tree: &str) -> &str {
    tree.get(..12).unwrap_or(tree)
}

/// Notices the checkout vanishing (deleted by hand): the runtime cannot restart from
/// nothing, so it reports drift and the reconciler applies the service afresh. And
/// stops a service that fills its folder (a tenant must not fill the platform's disk):
/// it stays stopped, saying why, until a new revision; `true` then, and the caller
/// removes what it wrote.
async fn watch_files(
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
    dir: PathBuf,
    code: PathBuf,
    cancel: CancellationToken,
) -> bool {
    const DISK_CHECK_EVERY: u32 = 10; // × 500 ms
    let mut ticks = 0u32;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = cancel.cancelled() => return false,
        }
        if !tokio::fs::try_exists(&code).await.unwrap_or(true) {
            tracker.report_drift("its checkout was deleted".into());
            return false;
        }
        ticks += 1;
        if ticks.is_multiple_of(DISK_CHECK_EVERY) {
            let (shared, ns, dir) = (shared.clone(), tracker.namespace().to_owned(), dir.clone());
            if let Ok(Some(why)) = blocking(move || over_quota(&shared, &ns, &dir)).await {
                tracker.set_phase(Phase::Failed(why));
                cancel.cancel();
                return true;
            }
        }
    }
}

/// Why the deployment whose files are in `dir` must stop for filling its folder, if it
/// must. With a volume per namespace, the kernel has bounded what all its checkouts
/// hold together; once that is full, the folder holding the most of what ran out is
/// stopped (each deployment finds the same one). Without, its own folder is measured.
fn over_quota(shared: &Shared, namespace: &str, dir: &Path) -> Option<String> {
    let quota = shared.settings(namespace)?.quota;
    let (bytes_limit, files_limit) = (quota.checkout_bytes, quota.checkout_files);
    let said = |held: volume::Fill, files: bool| {
        if files {
            format!(
                "stopped: it made {} files in its folder, filling the namespace's checkout-files quota of {files_limit}; what it wrote was removed",
                held.files
            )
        } else {
            format!(
                "stopped: it wrote {}Mi into its folder, filling the namespace's checkout-size quota of {}Mi; what it wrote was removed",
                held.bytes >> 20,
                bytes_limit >> 20
            )
        }
    };
    let Some(volumes) = &shared.isolation.volumes else {
        let (held, too_deep) = volume::held(dir);
        let files = held.files > files_limit;
        return (files || too_deep || held.bytes > bytes_limit).then(|| said(held, files));
    };
    let fill = volumes.fill(namespace)?;
    let files = fill.files >= files_limit || fill.files_free == 0;
    // Full: the kernel refused a write of the tenant's (what is left is root's, or less
    // than a write's worth: 2%, at least 1 MiB).
    let full = fill.bytes >= bytes_limit || fill.bytes_free < (bytes_limit / 50).max(1 << 20);
    if !files && !full {
        return None;
    }
    // Every checkout of the namespace: `<volume>/<service>/<tree>`.
    let (biggest, held) = shared.fullest_folder(namespace, files, || {
        let mut folders: Vec<(PathBuf, volume::Fill, bool)> = Vec::new();
        for service in std::fs::read_dir(volumes.mount_point(namespace))
            .ok()?
            .flatten()
        {
            for tree in std::fs::read_dir(service.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let (held, too_deep) = volume::held(&tree.path());
                folders.push((tree.path(), held, too_deep));
            }
        }
        let (biggest, held, _) = folders.into_iter().max_by_key(|(_, held, too_deep)| {
            (*too_deep, if files { held.files } else { held.bytes })
        })?;
        Some((biggest, held))
    })?;
    (biggest == dir).then(|| said(held, files))
}

/// Reports a deployment that cannot go on, and waits to be replaced or removed.
async fn fail(tracker: &Tracker, message: String, cancel: &CancellationToken) {
    tracker.set_phase(Phase::Failed(message));
    cancel.cancelled().await;
}

/// The service's code at this revision, extracted once; older revisions are removed.
/// From the tenant repo's folder, or from the `source` repo at its pinned commit.
async fn checkout(
    shared: &Arc<Shared>,
    tracker_ns: &str,
    artifact: &Artifact,
    base: &Path,
    dir: &Path,
) -> Result<PathBuf, String> {
    let code = dir.join("code");
    if tokio::fs::try_exists(&code).await.unwrap_or(false) {
        return Ok(code);
    }
    let (shared, artifact, base, dir, code2) = (
        shared.clone(),
        artifact.clone(),
        base.to_owned(),
        dir.to_owned(),
        code.clone(),
    );
    // Sandboxed code runs as its namespace's uid, which must be able to write its folder.
    let owner = shared.sandbox_uid(tracker_ns).map_err(|e| e.to_string())?;
    let turn = match artifact {
        Artifact::Source { .. } => Some(shared.fetches.enter(tracker_ns).await),
        Artifact::Repo { .. } | Artifact::Image(_) => None,
    };
    blocking(move || -> Result<(), String> {
        // Held until the fetch ends, even if the deployment stopped waiting for it.
        let _turn = turn;
        shared.checkouts.remove_unused(&base);
        // Fresh code means the old build products are gone too.
        let _ = std::fs::remove_file(dir.join("built"));
        let tmp = dir.join("code.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        match &artifact {
            Artifact::Repo { repo, tree, .. } => {
                repo::extract_tree(repo, tree, &tmp).map_err(private)?
            }
            Artifact::Image(_) => return Err(NO_IMAGES.to_owned()),
            Artifact::Source { url, commit, path } => {
                let commit = git2::Oid::from_str(commit).map_err(|e| e.message().to_owned())?;
                shared
                    .sources
                    .checkout(url, commit, path.as_deref(), &tmp)
                    .map_err(|e| match e {
                        // What went wrong on the server's disk stays in its log.
                        SourceError::Repo(_) | SourceError::Git { .. } => private(e),
                        tenant_safe => tenant_safe.to_string(),
                    })?;
            }
        }
        if let Some(uid) = owner {
            sandbox::chown_tree(&tmp, uid).map_err(private)?;
        }
        std::fs::rename(&tmp, &code2).map_err(private)
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(code)
}

/// Logs an error that names server paths and gives the tenant a line that does not.
fn private(e: impl std::fmt::Display) -> String {
    tracing::error!(error = %e, "checkout");
    "the platform could not write the checkout (see the server log)".to_owned()
}

struct ReplicaLaunch {
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
    ns: String,
    service: DesiredService,
    /// Only replicas get config: a build step has no business with secrets.
    config: ConfigEnv,
    /// The folder of its certificate identity's files, if it has one.
    identity: Option<PathBuf>,
    run: String,
    code: PathBuf,
    log: PathBuf,
    index: usize,
    toolchain: Toolchains,
    /// How its health checks speak TLS, for a service that serves it.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ReplicaLaunch {
    /// Runs one replica until cancelled, restarting it with backoff when it exits.
    async fn run(self, cancel: CancellationToken) {
        // Exponential from a second to five minutes, without jitter: the wait is shown.
        let policy = ExponentialBuilder::new()
            .with_min_delay(FIRST_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .without_max_times();
        let mut backoff = policy.build();
        let mut restarts = 0u32;
        let mut port = 0;
        let log_tag = (self.service.model.replicas > 1).then(|| (self.index + 1).to_string());
        loop {
            if port == 0 || !port_is_free(port) {
                port = match process::free_port() {
                    Ok(p) => p,
                    Err(e) => {
                        self.set(WorkloadState::CrashLoop, 0, format!("no free port: {e}"));
                        return cancel.cancelled().await;
                    }
                };
            }
            self.set(WorkloadState::Starting, port, String::new());
            // In its own network namespace a replica listens on the spec's `port` (the
            // host side is `port`, forwarded by pasta); unsandboxed, on the host's port.
            let listen = match (&self.shared.isolation.sandbox, self.service.model.port) {
                (Some(_), Some(wanted)) => wanted,
                _ => port,
            };
            let launch = Launch {
                namespace: &self.ns,
                name: &self.service.name,
                command: &self.run,
                dir: &self.code,
                log: &self.log,
                port: Some(listen),
                host_port: port,
                env: env_of(&self.service)
                    .into_iter()
                    .chain(self.config.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .collect(),
                identity: self.identity.as_deref(),
                role: format!("replica-{}", self.index),
                limits: limits_of(&self.service),
                toolchain: self.toolchain,
                pinned: self.service.model.runtime.is_some(),
                log_tag: log_tag.clone(),
            };
            let started = Instant::now();
            let why = match process::spawn(&self.shared, &launch).await {
                Err(e) => format!("could not start: {e}"),
                Ok(mut group) => {
                    port = group.host_port();
                    self.tracker
                        .set_process(self.index, group.running(listen, log_tag.clone()));
                    let probe = group.probe(self.shared.network.clone());
                    let mut health = Health::default();
                    let liveness = self.service.model.liveness.as_ref();
                    // Each check keeps its own clock: one never postpones the other.
                    let mut next_ready = tokio::time::Instant::now();
                    // Without a liveness check the interval is never polled (the arm's guard).
                    let mut alive = tokio::time::interval(liveness.map_or(READINESS_PERIOD, |l| {
                        Duration::from_secs(u64::from(l.period.max(1)))
                    }));
                    alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut dead_checks = 0u32;
                    let outcome = loop {
                        tokio::select! {
                            status = group.wait() => break Ended::Exited(status),
                            () = cancel.cancelled() => break Ended::Cancelled,
                            () = tokio::time::sleep_until(next_ready) => {
                                let answer = probe
                                    .ready(
                                        listen,
                                        port,
                                        self.service.model.ready_path.as_deref(),
                                        self.tls.as_ref(),
                                    )
                                    .await;
                                self.heard(&mut health, port, answer);
                                next_ready = tokio::time::Instant::now() + health.next_probe(started);
                            }
                            // Alive is asked of a replica that was ready once (a slow starter
                            // is not killed for starting slowly).
                            _ = alive.tick(), if liveness.is_some() && health.ready => {
                                let Some(check) = liveness else { continue };
                                match probe
                                    .ready(listen, port, check.path.as_deref(), self.tls.as_ref())
                                    .await
                                {
                                    Ok(()) => dead_checks = 0,
                                    Err(why) => {
                                        dead_checks += 1;
                                        if dead_checks >= check.failures {
                                            break Ended::Wedged(format!(
                                                "failed its liveness check: {why} ({dead_checks} checks in a row)"
                                            ));
                                        }
                                    }
                                }
                            }
                        }
                    };
                    if !matches!(outcome, Ended::Cancelled) || !self.tracker.detaching() {
                        self.tracker.set_process(self.index, None);
                    }
                    match outcome {
                        // The server stops and leaves it running for the next to adopt.
                        Ended::Cancelled if self.tracker.detaching() => return,
                        Ended::Cancelled => return group.terminate(self.shared.grace).await,
                        Ended::Exited(Ok(status)) => process::describe(&status, group.oom_killed()),
                        Ended::Exited(Err(e)) => format!("lost track of the process: {e}"),
                        Ended::Wedged(why) => {
                            group.terminate(self.shared.grace).await;
                            why
                        }
                    }
                }
            };
            if started.elapsed() > HEALTHY_AFTER {
                backoff = policy.build();
            }
            let wait = backoff.next().unwrap_or(MAX_BACKOFF);
            restarts += 1;
            self.tracker.set_replica_exit(
                self.index,
                port,
                format!("{why}; restart #{restarts} in {}s", wait.as_secs()),
                why,
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return,
            }
        }
    }

    fn heard(&self, health: &mut Health, port: u16, answer: Result<(), String>) {
        heard(&self.tracker, self.index, health, port, answer);
    }

    fn set(&self, state: WorkloadState, port: u16, message: String) {
        self.tracker.set_replica(self.index, state, port, message);
    }
}

/// What a readiness check answered, for the replica's state: ready once it first
/// passes; out of routing after [`READINESS_FAILURES`] failures in a row once it had
/// been; back in at the next pass. Each change is said once, as an event too.
fn heard(
    tracker: &Tracker,
    index: usize,
    health: &mut Health,
    port: u16,
    answer: Result<(), String>,
) {
    let replica = index + 1;
    match answer {
        Ok(()) => {
            health.failures = 0;
            if !health.ready {
                health.ready = true;
                tracker.event(format!("replica {replica} ready"));
                tracker.set_replica(index, WorkloadState::Running, port, String::new());
            } else if !health.routed {
                tracker.event(format!("replica {replica} ready again"));
                tracker.set_replica(index, WorkloadState::Running, port, String::new());
            }
            health.routed = true;
            health.said.clear();
        }
        // Not ready yet: said once per reason, not once per probe.
        Err(why) if !health.ready => {
            if why != health.said {
                tracker.set_replica(index, WorkloadState::Starting, port, why.clone());
                health.said = why;
            }
        }
        Err(why) => {
            health.failures += 1;
            if health.routed && health.failures >= READINESS_FAILURES {
                health.routed = false;
                tracker.event(format!(
                    "replica {replica} not ready: {why}; out of routing"
                ));
            }
            if !health.routed && why != health.said {
                let checks = health.failures;
                tracker.set_replica(
                    index,
                    WorkloadState::Unhealthy,
                    port,
                    format!("not ready: {why} ({checks} checks in a row)"),
                );
                health.said = why;
            }
        }
    }
}

/// Why a replica's process is no longer watched.
enum Ended {
    Exited(std::io::Result<std::process::ExitStatus>),
    Cancelled,
    /// Failed its liveness check too often: stopped, to be started again.
    Wedged(String),
}

/// One process's readiness, as its checks have found it.
#[derive(Default)]
struct Health {
    /// It has passed once: it is past starting.
    ready: bool,
    /// It gets calls (from its first pass until it fails too often).
    routed: bool,
    /// Failed checks in a row.
    failures: u32,
    /// The reason last shown, so each is said once.
    said: String,
}

impl Health {
    /// When to check next: often while starting, then every [`READINESS_PERIOD`].
    fn next_probe(&self, started: Instant) -> Duration {
        if self.ready {
            READINESS_PERIOD
        } else {
            probe_interval(started)
        }
    }
}

fn probe_interval(started: Instant) -> Duration {
    if started.elapsed() < FAST_PROBING_FOR {
        PROBE_FAST
    } else {
        PROBE_SLOW
    }
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}
