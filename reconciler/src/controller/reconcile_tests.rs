//! One reconcile at a time: apply, skip, repair, keep the last good state, prune.

use super::fixtures::{commit, fixture, reasons};
use super::*;
use git2::{Repository, Signature};

#[tokio::test]
async fn applies_then_skips_an_unchanged_resync_then_applies_the_next_push() {
    let (_dir, repos, runtime, c) = fixture().await;
    commit(&repos, "a", &[("services/web/service.yaml", "run: x\n")]);
    let out = c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref plan, .. } if plan.summary().create == 1));
    assert_eq!(runtime.observe("a").await.unwrap().len(), 1);
    // Nothing changed: nothing is read, compared or recorded.
    assert!(matches!(
        c.reconcile("a", &reasons(Trigger::Resync)).await.unwrap(),
        Outcome::Unchanged
    ));
    assert_eq!(c.store.history("a", 10).await.unwrap().len(), 1);
    commit(
        &repos,
        "a",
        &[("services/web/service.yaml", "run: x\nreplicas: 2\n")],
    );
    let out = c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref plan, .. } if plan.summary().update == 1));
    assert_eq!(runtime.observe("a").await.unwrap()[0].model.replicas, 2);
    // Applying the same state again changes nothing.
    let again = c.reconcile("a", &reasons(Trigger::Drift)).await.unwrap();
    assert!(matches!(again, Outcome::Applied { ref plan, .. } if plan.is_empty()));
}

#[tokio::test]
async fn drift_is_repaired_and_invalid_heads_keep_the_last_good_state() {
    let (_dir, repos, runtime, c) = fixture().await;
    let good = commit(&repos, "a", &[("services/web/service.yaml", "run: x\n")]);
    c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    runtime.forget("a", "web");
    // The runtime's generation moved, so even a resync looks again.
    let out = c.reconcile("a", &reasons(Trigger::Resync)).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref plan, .. } if plan.summary().create == 1));

    commit(
        &repos,
        "a",
        &[("services/web/service.yaml", "run: x\nbogus: 1\n")],
    );
    let out = c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    let Outcome::Invalid { error, .. } = out else {
        panic!("{out:?}")
    };
    assert!(
        error.starts_with("services/web/service.yaml:2:1:"),
        "{error}"
    );
    let running = runtime.observe("a").await.unwrap();
    assert_eq!(running[0].revision, good.to_string());
    let status = c.store.namespace_status("a").await.unwrap().unwrap();
    assert_eq!(status.applied.as_deref(), Some(good.to_string().as_str()));
    assert!(status.error.is_some());
}

#[tokio::test]
async fn a_removed_service_is_pruned() {
    let (_dir, repos, runtime, c) = fixture().await;
    commit(
        &repos,
        "a",
        &[
            ("services/web/service.yaml", "run: x\n"),
            ("services/job/service.yaml", "run: y\n"),
        ],
    );
    c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    let repo = Repository::open_bare(repos.path("a")).unwrap();
    let head = repo.find_commit(repos.head("a").unwrap()).unwrap();
    let mut tb = repo.treebuilder(Some(&head.tree().unwrap())).unwrap();
    let services = repo
        .find_tree(tb.get("services").unwrap().unwrap().id())
        .unwrap();
    let mut sb = repo.treebuilder(Some(&services)).unwrap();
    sb.remove("job").unwrap();
    tb.insert("services", sb.write().unwrap(), 0o040000)
        .unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = Signature::now("t", "t@t").unwrap();
    repo.commit(Some(repo::BRANCH), &sig, &sig, "kill job", &tree, &[&head])
        .unwrap();
    let out = c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref plan, .. } if plan.summary().delete == 1));
    let names: Vec<String> = runtime
        .observe("a")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["web".to_owned()]);
}

#[tokio::test]
async fn a_suspended_namespace_runs_at_zero_and_resuming_restores_it() {
    let (_dir, repos, runtime, c) = fixture().await;
    commit(
        &repos,
        "a",
        &[("services/web/service.yaml", "run: x\nreplicas: 3\n")],
    );
    c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    micro_tenant::marks::suspend(&repos.path("a"), Some("namespace a is suspended: billing"))
        .unwrap();
    // The same head: only the mark changed, and that is enough to look again.
    let out = c
        .reconcile("a", &reasons(Trigger::Suspension))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Applied { ref plan, .. } if plan.summary().update == 1));
    let running = runtime.observe("a").await.unwrap();
    assert_eq!(running.len(), 1, "scaled to zero, not deleted");
    assert_eq!(running[0].model.replicas, 0);
    micro_tenant::marks::suspend(&repos.path("a"), None).unwrap();
    c.reconcile("a", &reasons(Trigger::Suspension))
        .await
        .unwrap();
    assert_eq!(runtime.observe("a").await.unwrap()[0].model.replicas, 3);
}

#[tokio::test]
async fn a_deleted_namespace_is_torn_down_and_a_lost_repo_is_not() {
    let (_dir, repos, runtime, c) = fixture().await;
    commit(&repos, "a", &[("services/web/service.yaml", "run: x\n")]);
    c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    // The repo gone while the store still has the namespace: an accident, kept running.
    let aside = repos.root().join("aside.git");
    std::fs::rename(repos.path("a"), &aside).unwrap();
    let out = c.reconcile("a", &reasons(Trigger::Resync)).await.unwrap();
    assert!(matches!(out, Outcome::Missing));
    assert_eq!(runtime.observe("a").await.unwrap().len(), 1);
    // Deleted from the store too: everything stops, and what was recorded goes.
    std::fs::rename(&aside, repos.path("a")).unwrap();
    assert!(matches!(
        c.store.delete_namespace("a").await.unwrap(),
        micro_store::Deletion::Deleted { .. }
    ));
    repos.remove("a").unwrap();
    assert!(!repos.path("a").exists());
    let out = c.reconcile("a", &reasons(Trigger::Deleted)).await.unwrap();
    assert!(matches!(out, Outcome::Missing));
    assert!(runtime.observe("a").await.unwrap().is_empty());
    assert!(c.store.history("a", 10).await.unwrap().is_empty());
    assert!(c.store.namespace_status("a").await.unwrap().is_none());
}

#[tokio::test]
async fn a_deletion_a_stopped_server_left_half_done_is_finished_on_start() {
    let (_dir, repos, runtime, c) = fixture().await;
    commit(&repos, "a", &[("services/web/service.yaml", "run: x\n")]);
    c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    // The server stopped right after the store's deletion: repo and service still there.
    c.store.delete_namespace("a").await.unwrap();
    assert!(repos.path("a").exists());
    // On start, the deletion on record is queued before anything else…
    c.resume_deletions().await.unwrap();
    let (ns, why) = c.queue().next().await;
    assert_eq!(ns, "a");
    assert!(why.contains(&Trigger::Deleted));
    // …and its repo is not read as desired state: it goes, with what runs.
    let out = c.reconcile(&ns, &why).await.unwrap();
    assert!(matches!(out, Outcome::Missing));
    assert!(!repos.path("a").exists());
    assert!(runtime.observe("a").await.unwrap().is_empty());
    assert!(c.store.pending_deletions().await.unwrap().is_empty());
    // Only now can the name be taken again, by someone who finds none of it.
    c.store.create_namespace("a").await.unwrap();
    assert!(c.store.history("a", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_push_to_a_half_deleted_namespace_does_not_bring_it_back() {
    let (_dir, repos, runtime, c) = fixture().await;
    commit(&repos, "a", &[("services/web/service.yaml", "run: x\n")]);
    c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    c.store.delete_namespace("a").await.unwrap();
    // A ref change the watcher saw in the repo left behind, before the deletion's turn.
    commit(&repos, "a", &[("services/api/service.yaml", "run: y\n")]);
    let out = c.reconcile("a", &reasons(Trigger::Push)).await.unwrap();
    assert!(matches!(out, Outcome::Missing));
    assert!(runtime.observe("a").await.unwrap().is_empty());
    assert!(!repos.path("a").exists());
}

#[tokio::test]
async fn a_namespace_still_being_created_is_neither_applied_nor_removed() {
    let (_dir, repos, runtime, c) = fixture().await;
    // Its repo is made first, its row after: a reconcile in between (the watcher saw the
    // new repo) must not start what the template holds, nor take the repo for a deletion.
    repos
        .create("b", std::path::Path::new("/bin/true"))
        .unwrap();
    commit(&repos, "b", &[("services/web/service.yaml", "run: x\n")]);
    let out = c.reconcile("b", &reasons(Trigger::Created)).await.unwrap();
    assert!(matches!(out, Outcome::Missing));
    assert!(repos.path("b").exists());
    assert!(runtime.observe("b").await.unwrap().is_empty());
    // Once its row is there, it runs.
    c.store.create_namespace("b").await.unwrap();
    c.reconcile("b", &reasons(Trigger::Created)).await.unwrap();
    assert_eq!(runtime.observe("b").await.unwrap().len(), 1);
}
