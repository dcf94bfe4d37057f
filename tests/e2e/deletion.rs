//! An admin deletes a namespace: the very next request of anyone or anything of it is
//! refused, what it ran stops, its repo is gone, and the name created again starts
//! empty. Its neighbour notices nothing.

use crate::harness::Platform;
use crate::isolation::PROBE;
use micro_api::client::{Client, ClientError};
use micro_store::{Deletion, Store};
use serde_json::Value;

/// `micro admin namespace delete NS --confirm CONFIRM`.
fn delete_args<'a>(ns: &'a str, confirm: &'a str) -> [&'a str; 6] {
    ["admin", "namespace", "delete", ns, "--confirm", confirm]
}

/// Creates `ns` as soon as the deletion of the same name is torn down; until then the
/// only refusal allowed is that one.
fn create_once_torn_down(p: &Platform, ns: &str) {
    p.wait_for("the deleted name to be free again", || {
        let out = p.micro(&["admin", "namespace", "create", ns]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || said.contains("is still being deleted"),
            "{said}"
        );
        out.status.success()
    });
}

#[test]
fn a_deleted_namespace_ends_access_at_once_and_leaves_nothing_behind() {
    let p = Platform::start();
    let ca = std::fs::read_to_string(p.ca()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    p.write_service(
        "probe",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", PROBE),
        ],
    );
    for ns in ["doomed", "other"] {
        p.ok(&["admin", "namespace", "create", ns]);
        p.ok(&["run", "./probe", "--wait", "--namespace", ns]);
        p.ok(&[
            "config",
            "set",
            "db.password",
            "s3cret",
            "--secret",
            "--namespace",
            ns,
        ]);
        p.ok(&[
            "admin",
            "account",
            "create",
            &format!("dev@{ns}.example"),
            "--namespace",
            ns,
            "--password",
            "a long password",
        ]);
    }
    let pids = p.processes("main.py");
    assert_eq!(pids.len(), 2, "{pids:?}");
    let anonymous = Client::pinned(&p.url(), None, Some(&ca)).unwrap();
    let session = |ns: &str| {
        let email = format!("dev@{ns}.example");
        let token = rt
            .block_on(anonymous.login(&email, "a long password"))
            .unwrap()
            .token;
        (
            Client::pinned(&p.url(), Some(token.clone()), Some(&ca)).unwrap(),
            token,
        )
    };
    let (dev, dev_token) = session("doomed");
    let (neighbour, _) = session("other");
    let seen: Value =
        serde_json::from_str(&p.ok(&["call", "probe", "/", "--namespace", "doomed"])).unwrap();
    let service_token = seen["env"]["MICRO_TOKEN"].as_str().unwrap().to_owned();
    let service = Client::pinned(&p.url(), Some(service_token), Some(&ca)).unwrap();
    // Every way in used twice, so whatever the platform remembers of it, it remembers.
    for _ in 0..2 {
        rt.block_on(dev.kv_write("doomed", "t", "k", "v", None))
            .unwrap();
        rt.block_on(service.kv_read("doomed", "t", "", true, 10, 0))
            .unwrap();
        rt.block_on(neighbour.kv_write("other", "t", "k", "v", None))
            .unwrap();
    }
    let git_url =
        |token: &str| format!("https://micro:{token}@127.0.0.1:{}/git/doomed.git", p.port);
    p.git_ok(&p.work, &["ls-remote", &git_url(&dev_token)]);

    // Nobody but an admin may delete it, and not by a slip of the keyboard.
    for client in [&dev, &service] {
        let err = rt.block_on(client.delete_namespace("doomed")).unwrap_err();
        assert!(matches!(&err, ClientError::NotFound(_)), "{err:?}");
    }
    let err = p.fails(&["admin", "namespace", "delete", "doomed"]);
    assert!(err.contains("--confirm doomed"), "{err}");
    let err = p.fails(&delete_args("doomed", "other"));
    assert!(err.contains("--confirm doomed"), "{err}");
    rt.block_on(dev.whoami()).unwrap();
    // Nor their own account's namespace.
    let err = p.fails(&delete_args("default", "default"));
    assert!(err.contains("your own account"), "{err}");

    let out = p.micro(&delete_args("doomed", "doomed"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("namespace doomed deleted with 2 account(s); 1 service(s) stopping"),
        "{said}"
    );
    // The very next request of its developer, its service and its git remote: refused.
    let refused = |c: &Client| matches!(rt.block_on(c.whoami()), Err(ClientError::Unauthorized(_)));
    assert!(
        refused(&dev),
        "the developer's session outlived the namespace"
    );
    assert!(
        refused(&service),
        "the service's token outlived the namespace"
    );
    let out = p.git(&p.work, &["ls-remote", &git_url(&dev_token)]);
    assert!(!out.status.success(), "git still answers the deleted repo");
    assert!(
        rt.block_on(anonymous.login("dev@doomed.example", "a long password"))
            .is_err()
    );
    // An admin finds nothing there either, and its process stops.
    let err = p.fails(&["status", "--namespace", "doomed"]);
    assert!(err.contains("not found"), "{err}");
    p.wait_for("the deleted namespace's service to stop", || {
        p.processes("main.py").len() == 1
    });
    assert!(!p.ok(&["admin", "namespace", "list"]).contains("doomed"));
    let err = p.fails(&delete_args("doomed", "doomed"));
    assert!(err.contains("not found"), "{err}");

    // The neighbour: its service, data and session untouched.
    assert!(
        p.ok(&["call", "probe", "/", "--namespace", "other"])
            .contains("\"MICRO_NAMESPACE\": \"other\"")
    );
    let records = rt
        .block_on(neighbour.kv_read("other", "t", "", true, 10, 0))
        .unwrap();
    assert_eq!(records.len(), 1);

    // The name again, once the teardown is done: a new namespace, with nothing of the old.
    create_once_torn_down(&p, "doomed");
    let admin = {
        let env: Value =
            serde_json::from_str(&std::fs::read_to_string(p.home.join("envs.json")).unwrap())
                .unwrap();
        let token = env["envs"]["server"]["token"].as_str().unwrap().to_owned();
        Client::pinned(&p.url(), Some(token), Some(&ca)).unwrap()
    };
    assert!(rt.block_on(admin.list_config("doomed")).unwrap().is_empty());
    let err = rt
        .block_on(admin.kv_read("doomed", "t", "", true, 10, 0))
        .unwrap_err();
    assert!(err.to_string().contains("table t not found"), "{err}");
    assert!(p.status(Some("doomed")).is_empty());
    let history = p.ok(&["history", "--namespace", "doomed", "--output", "json"]);
    let history: Vec<Value> = serde_json::from_str(&history).unwrap();
    assert!(
        !history.is_empty()
            && history
                .iter()
                .all(|h| !h["summary"].as_str().unwrap().starts_with("1 to create")),
        "the old namespace's history came back: {history:?}"
    );
    // Its old developer's token stays dead for the new namespace of the same name.
    let stale = Client::pinned(&p.url(), Some(dev_token), Some(&ca)).unwrap();
    assert!(refused(&stale));
}

fn commits(p: &Platform, repo: &std::path::Path) -> u32 {
    let dir = format!("--git-dir={}", repo.display());
    p.git_ok(&p.work, &[&dir, "rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_deletion_cut_short_by_a_crash_is_finished_when_the_server_is_back() {
    let mut p = Platform::start();
    p.ok(&["admin", "namespace", "create", "team"]);
    p.ok(&["config", "set", "plan", "take-over", "--namespace", "team"]);
    let repos = p.data.join("repos");
    let repo = repos.join("team.git");
    assert!(commits(&p, &repo) > 1);

    // The server dies after the store's deletion and before the repo's; an earlier
    // deletion's repo was half removed.
    p.kill9();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open_sqlite(&p.data.join("store.db")).await.unwrap();
        for ns in ["team", "default"] {
            let done = store.delete_namespace(ns).await.unwrap();
            assert!(matches!(done, Deletion::Deleted { .. }), "{done:?}");
        }
    });
    let half = repos.join(".gone.git.deleted-1");
    std::fs::create_dir_all(half.join("objects")).unwrap();
    p.restart();

    // Back up (the built-in `default` among the deletions does not stop it starting), it
    // finishes them: nothing of the deleted tenants stays on disk…
    p.wait_for("the repo left behind to go", || !repo.exists());
    p.wait_for("default's repo to go", || {
        !repos.join("default.git").exists()
    });
    assert!(!half.exists(), "a half-removed repo stayed");
    // …and the next tenant of the name starts from the template, not the old repo.
    create_once_torn_down(&p, "team");
    assert_eq!(
        commits(&p, &repo),
        1,
        "the new namespace got the old one's repo"
    );
    let err = p.fails(&["config", "get", "plan", "--namespace", "team"]);
    assert!(err.contains("not found"), "{err}");
}
