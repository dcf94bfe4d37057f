//! A preview's life against a real store, real repos and the controller, with the
//! in-memory runtime: made, scoped, parked, promoted, removed whole.

#![allow(clippy::unwrap_used)]

use micro_previews::Previews;
use micro_runtime::memory::MemoryRuntime;
use micro_store::Trigger;
use micro_tenant::preview::Source;
use micro_tenant::quota::Quota;
use std::path::Path;
use std::sync::Arc;

const PARENT: &str = "acme";

fn spec(public: bool, config: &str) -> String {
    format!("run: python3 main.py\npublic: {public}\nconfig: [{config}]\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn previews_start_wait_for_room_and_go_whole() {
    let runtime = Arc::new(MemoryRuntime::default());
    let (_dir, repos, controller) =
        micro_reconciler::testing::fixture_with(&[PARENT], runtime.clone()).await;
    controller.spawn_workers(2);
    let store = controller.store().clone();
    store
        .put_config(PARENT, "plain", "\"p\"", false)
        .await
        .unwrap();
    store
        .put_config(PARENT, "secret", "\"hunter2-xyz\"", true)
        .await
        .unwrap();
    store
        .put_config(PARENT, "listed", "\"sk_listed\"", true)
        .await
        .unwrap();
    let config = "plain: { version: 1, secret: false }\nsecret: { version: 1, secret: true }\nlisted: { version: 1, secret: true }\n";
    micro_testkit::commit_to_namespace(
        &repos,
        PARENT,
        &[
            (
                "micro.yaml",
                "schema: 1\nnamespace: acme\npreviews:\n  enabled: true\n  max: 1\n  secrets: [listed]\n",
            ),
            ("config.yaml", config),
            (
                "services/web/service.yaml",
                &spec(true, "plain, secret, listed"),
            ),
            ("services/admin/service.yaml", &spec(false, "")),
            ("services/batch/service.yaml", &spec(false, "")),
        ],
    );
    // A branch: web made public... and `admin` made public, which the parent never was.
    let repo = git2::Repository::open_bare(repos.path(PARENT)).unwrap();
    let main = repo.refname_to_id("refs/heads/main").unwrap();
    for branch in ["refs/heads/one", "refs/heads/two"] {
        repo.reference(branch, main, true, "branch").unwrap();
    }
    let head = micro_testkit::commit_files(
        &repo,
        "refs/heads/one",
        &[("services/admin/service.yaml", &spec(true, ""))],
    );
    let previews = Previews::new(
        controller.clone(),
        "/bin/true".into(),
        Quota::default(),
        None,
    );
    let one = Source::Branch("one".into());
    let env = previews
        .update(PARENT, &one, &head.to_string(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (env.namespace.as_str(), env.state.as_str()),
        ("acme-br-one", "running")
    );
    controller.queue().trigger(PARENT, Trigger::Push);
    let wait = |ns: &'static str, n: usize| {
        let runtime = runtime.clone();
        async move {
            for _ in 0..600 {
                if micro_runtime::Runtime::observe(&*runtime, ns)
                    .await
                    .unwrap()
                    .len()
                    == n
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("{ns} never ran {n} services");
        }
    };
    wait("acme-br-one", 2).await;
    // The head's public services run (`batch`, which nothing was seen calling, does
    // not), public only where the parent's are: `admin` is served to nobody.
    let running = micro_runtime::Runtime::observe(&*runtime, "acme-br-one")
        .await
        .unwrap();
    assert!(!running.iter().any(|s| s.name == "batch"), "{running:?}");
    let exposure = controller.exposure();
    assert!(exposure.find("web-acme-br-one").is_some());
    assert!(exposure.find("admin-acme-br-one").is_none());
    // ...with the plain value and the listed secret, never the other secret.
    let deployment = runtime.deployment("acme-br-one", "web").unwrap();
    let config = deployment.config.expose();
    assert_eq!(
        config.get("MICRO_CONFIG_PLAIN").map(String::as_str),
        Some("p")
    );
    assert_eq!(
        config.get("MICRO_CONFIG_LISTED").map(String::as_str),
        Some("sk_listed")
    );
    assert!(
        !config.contains_key("MICRO_CONFIG_SECRET"),
        "{:?}",
        config.keys()
    );
    // Its quota is the previews class, never more than the parent's.
    let quota = micro_tenant::marks::quota(&repos.path("acme-br-one"));
    assert_eq!(quota, Quota::default().preview_class());

    // `web` was seen calling `batch`: from now on a preview runs it too.
    store.record_call(PARENT, "web", "batch").await.unwrap();
    // A second branch waits: one may run at a time.
    let two = Source::Branch("two".into());
    let head2 = micro_testkit::commit_files(&repo, "refs/heads/two", &[("x", "y")]);
    let env2 = previews
        .update(PARENT, &two, &head2.to_string(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env2.state, "waiting");
    assert!(!store.namespace_exists("acme-br-two").await.unwrap());
    let view = previews.find(PARENT, &two).await.unwrap();
    assert_eq!(
        view.phase,
        micro_previews::Phase::Waiting { ahead: 0, max: 1 }
    );

    // The first closes: all of it goes, and the second starts.
    let (closed, started) = previews.close(PARENT, &one).await.unwrap();
    assert_eq!(closed.unwrap().namespace, "acme-br-one");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].namespace, "acme-br-two");
    wait("acme-br-one", 0).await;
    assert!(!store.namespace_exists("acme-br-one").await.unwrap());
    assert!(!Path::new(&repos.path("acme-br-one")).exists());
    assert!(
        store
            .config_value("acme-br-one", "plain", 1)
            .await
            .unwrap()
            .is_none()
    );
    wait("acme-br-two", 2).await;
    assert!(exposure.find("web-acme-br-one").is_none());

    // The parent's deletion takes its previews along.
    previews.close_all(PARENT).await.unwrap();
    wait("acme-br-two", 0).await;
    assert!(store.environments(PARENT).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_runs_nothing_until_approved() {
    let (_dir, repos, controller, repo, main) = web_with_previews().await;
    let pull = micro_tenant::change::pull_preview_ref(3);
    repo.reference(&pull, main, true, "pull").unwrap();
    let head =
        micro_testkit::commit_files(&repo, &pull, &[("services/web/main.py", "print('evil')")]);
    let previews = Previews::new(
        controller.clone(),
        "/bin/true".into(),
        Quota::default(),
        None,
    );
    let pr = Source::Pull(3);
    let env = previews
        .update(PARENT, &pr, &head.to_string(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.state, "approval");
    assert!(!repos.path("acme-pr-3").exists());
    // A later push of the same pull request, as a non-fork delivery, changes nothing:
    // once a fork, a fork until approved.
    let env = previews
        .update(PARENT, &pr, &head.to_string(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.state, "approval");
    let env = previews.approve(PARENT, &pr).await.unwrap();
    assert_eq!(env.state, "running");
    assert!(store_has(&controller, "acme-pr-3").await);
}

/// `acme` running a public `web`, previews on; its repo and main's head.
async fn web_with_previews() -> (
    tempfile::TempDir,
    micro_tenant::Repos,
    Arc<micro_reconciler::Controller>,
    git2::Repository,
    git2::Oid,
) {
    let runtime = Arc::new(MemoryRuntime::default());
    let (dir, repos, controller) =
        micro_reconciler::testing::fixture_with(&[PARENT], runtime).await;
    controller.spawn_workers(1);
    micro_testkit::commit_to_namespace(
        &repos,
        PARENT,
        &[
            (
                "micro.yaml",
                "schema: 1\nnamespace: acme\npreviews: {enabled: true}\n",
            ),
            ("services/web/service.yaml", &spec(true, "")),
        ],
    );
    let repo = git2::Repository::open_bare(repos.path(PARENT)).unwrap();
    let main = repo.refname_to_id("refs/heads/main").unwrap();
    (dir, repos, controller, repo, main)
}

async fn store_has(controller: &micro_reconciler::Controller, ns: &str) -> bool {
    controller.store().namespace_exists(ns).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_namespace_gets_no_previews_and_loses_those_it_had() {
    let (_dir, repos, controller, repo, main) = web_with_previews().await;
    repo.reference("refs/heads/b", main, true, "b").unwrap();
    let previews = Previews::new(
        controller.clone(),
        "/bin/true".into(),
        Quota::default(),
        None,
    );
    let b = Source::Branch("b".into());
    previews
        .update(PARENT, &b, &main.to_string(), false)
        .await
        .unwrap()
        .unwrap();
    assert!(store_has(&controller, "acme-br-b").await);
    micro_tenant::marks::suspend(&repos.path(PARENT), Some("unpaid")).unwrap();
    let refused = previews
        .update(
            PARENT,
            &Source::Branch("c".into()),
            &main.to_string(),
            false,
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("suspended"), "{refused}");
    let swept = previews.sweep().await.unwrap();
    assert_eq!(swept.removed.len(), 1);
    assert!(!store_has(&controller, "acme-br-b").await);
}
