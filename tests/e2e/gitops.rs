//! The GitOps verbs: diff (exit 0/1/2), history, rollback; and what the reconciler does
//! with commits that reach the repo without the pre-receive check.

use crate::harness::Platform;
use serde_json::Value;

const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(os.environ['GREETING'].encode())\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

fn spec(greeting: &str, replicas: u32) -> String {
    format!("run: python3 -u main.py\nreplicas: {replicas}\nenv:\n  GREETING: {greeting}\n")
}

fn diff_in(p: &Platform, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["diff"];
    full.extend(args);
    let out = p.command(&full).current_dir(dir).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn diff_shows_what_a_clone_would_change_with_argocd_exit_codes() {
    let p = Platform::start();
    // Nothing runs and nothing is wanted: no difference.
    let (code, out, _) = diff_in(&p, &p.work, &[]);
    assert_eq!(code, 0, "{out}");

    p.ok(&["clone", "repo"]);
    let repo = p.work.join("repo");
    std::fs::create_dir_all(repo.join("services/greeter")).unwrap();
    std::fs::write(repo.join("services/greeter/service.yaml"), spec("hi", 1)).unwrap();
    std::fs::write(repo.join("services/greeter/main.py"), APP).unwrap();
    p.git_ok(&repo, &["add", "."]);
    p.git_ok(&repo, &["commit", "-qm", "Add greeter"]);

    // The unpushed commit in the clone would create greeter.
    let (code, out, err) = diff_in(&p, &repo, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("1 to create")
            && out.contains("+ greeter")
            && out.contains("env.GREETING: hi"),
        "{out}"
    );
    // The platform planned the clone's commit from a preview ref, and dropped it after.
    let refs = p.git_ok(&repo, &["ls-remote", "origin"]);
    assert!(!refs.contains("refs/micro/"), "{refs}");
    let (code, json, _) = diff_in(&p, &repo, &["--output", "json"]);
    assert_eq!(code, 1);
    let plan: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plan["actions"][0]["action"], "create");
    // The platform's own head still wants nothing.
    let (code, _, _) = diff_in(&p, &p.work, &[]);
    assert_eq!(code, 0);

    p.git_ok(&repo, &["push", "-q"]);
    let head = p.git_ok(&repo, &["rev-parse", "HEAD"]).trim().to_owned();
    p.wait_running(None, "greeter", Some(&head));
    let (code, out, _) = diff_in(&p, &repo, &[]);
    assert_eq!(code, 0, "after the push nothing differs: {out}");

    // A field-level change, and a config version, never a value.
    std::fs::write(
        repo.join("services/greeter/service.yaml"),
        format!("{}config: [db.password]\n", spec("hello", 2)),
    )
    .unwrap();
    std::fs::write(
        repo.join("config.yaml"),
        "db.password: { version: 3, secret: true }\n",
    )
    .unwrap();
    p.git_ok(&repo, &["commit", "-qam", "Scale and greet"]);
    let (code, out, _) = diff_in(&p, &repo, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("~ greeter"), "{out}");
    assert!(out.contains("replicas: 1 → 2"), "{out}");
    assert!(out.contains("env.GREETING: hi → hello"), "{out}");
    assert!(out.contains("config.db.password: (none) → v3"), "{out}");
    assert!(!out.contains("code:"), "unchanged code is not noise: {out}");

    // An invalid spec is exit 2 with file:line:col; an unknown ref too.
    std::fs::write(
        repo.join("services/greeter/service.yaml"),
        "run: x\nreplicas: [\n",
    )
    .unwrap();
    p.git_ok(&repo, &["commit", "-qam", "Broken"]);
    let (code, _, err) = diff_in(&p, &repo, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("services/greeter/service.yaml:"), "{err}");
    let (code, _, err) = diff_in(&p, &p.work, &["no-such-branch"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn history_and_rollback() {
    let p = Platform::start();
    p.write_service(
        "greeter",
        &[("service.yaml", &spec("one", 1)), ("main.py", APP)],
    );
    p.ok(&["run", "./greeter", "--wait"]);
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "one");
    std::fs::write(p.work.join("greeter/service.yaml"), spec("two", 1)).unwrap();
    p.ok(&["update", "greeter", "--wait"]);
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "two");

    let history: Vec<Value> =
        serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
    let newest = &history[0];
    assert_eq!(newest["result"], "applied");
    assert!(
        newest["reason"].as_str().unwrap().contains("push"),
        "{newest}"
    );
    assert!(
        newest["summary"].as_str().unwrap().contains("1 to update"),
        "{newest}"
    );
    assert!(history.len() >= 3, "startup, run, update: {history:?}");
    let started: Vec<i64> = history
        .iter()
        .map(|h| h["started_us"].as_i64().unwrap())
        .collect();
    assert!(started.windows(2).all(|w| w[0] > w[1]), "newest first");
    // Each revision as people know it: the commit's subject and author.
    assert_eq!(newest["subject"], "Run greeter", "{newest}");
    assert!(
        newest["author"].as_str().unwrap().starts_with("micro <"),
        "{newest}"
    );
    // And who pushed it: the account behind the push's token, not `micro`.
    let me: Value = serde_json::from_str(&p.ok(&["whoami", "-o", "json"])).unwrap();
    let email = me["email"].as_str().unwrap();
    assert_eq!(newest["pushed_by"], email, "{newest}");
    let table = p.ok(&["history"]);
    assert!(
        table.contains("applied") && table.contains("Run greeter") && table.contains(email),
        "{table}"
    );

    // Rollback is a new commit with the old tree, pushed like any other.
    p.ok(&["rollback"]);
    p.wait_for("the rollback to answer", || {
        let out = p.micro(&["call", "greeter", "/"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "one"
    });
    p.ok(&["clone", "repo"]);
    let log = p.git_ok(&p.work.join("repo"), &["log", "--format=%s"]);
    let subjects: Vec<&str> = log.lines().collect();
    assert!(subjects[0].starts_with("Rollback to"), "{log}");
    assert_eq!(
        subjects.len(),
        4,
        "create, run, update, rollback; nothing rewritten: {log}"
    );
    let history: Vec<Value> =
        serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
    let head = p
        .git_ok(&p.work.join("repo"), &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    p.wait_for("history to show the rollback", || {
        let h: Vec<Value> = serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
        h[0]["revision"] == head.as_str()
    });
    let h: Vec<Value> = serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
    assert_eq!(
        h[0]["reason"], "rollback",
        "recorded as a rollback: {}",
        h[0]
    );
    assert!(!history.is_empty());
    // An explicit revision works too; an unknown one is a clear error.
    assert!(p.fails(&["rollback", "0000000"]).contains("not found"));
}

#[test]
fn an_invalid_commit_that_bypasses_the_check_keeps_the_last_good_revision() {
    let p = Platform::start();
    p.write_service(
        "steady",
        &[("service.yaml", &spec("still here", 1)), ("main.py", APP)],
    );
    p.ok(&["run", "./steady", "--wait"]);
    let before = p.wait_running(None, "steady", None);
    p.ok(&["clone", "repo"]);
    let repo = p.work.join("repo");
    std::fs::write(
        repo.join("services/steady/service.yaml"),
        "run: x\nrestart: always\n",
    )
    .unwrap();
    p.git_ok(&repo, &["commit", "-qam", "Bad, from outside"]);
    let bad = p.git_ok(&repo, &["rev-parse", "HEAD"]).trim().to_owned();
    // Straight into the bare repo: a fetch runs no pre-receive hook.
    let bare = p.data.join("repos/default.git");
    p.git_ok(
        &bare,
        &["fetch", "-q", repo.to_str().unwrap(), "+main:main"],
    );

    p.wait_for("status to name the bad revision", || {
        let out = p.micro(&["status"]);
        String::from_utf8_lossy(&out.stderr).contains(&bad[..7])
    });
    let out = p.micro(&["status"]);
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("services/steady/service.yaml:2:1:"),
        "{warning}"
    );
    let after = p.wait_running(None, "steady", None);
    assert_eq!(
        after["revision"], before["revision"],
        "the last good revision keeps running"
    );
    assert_eq!(p.ok(&["call", "steady", "/"]).trim(), "still here");
    let history: Vec<Value> =
        serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
    assert_eq!(history[0]["result"], "invalid");
    assert!(
        history[0]["error"]
            .as_str()
            .unwrap()
            .contains("service.yaml:2:1")
    );

    // `micro rollback` with a broken head on top of what runs: it changes nothing and
    // says what runs, so the user picks; rolling back to what runs drops the bad commit.
    let running = before["revision"].as_str().unwrap().to_owned();
    let err = p.fails(&["rollback"]);
    assert!(
        err.contains("is not what runs") && err.contains(&running[..7]),
        "{err}"
    );
    let head = |p: &Platform| p.git_ok(&bare, &["rev-parse", "main"]).trim().to_owned();
    assert_eq!(head(&p), bad, "nothing changed");
    p.ok(&["rollback", &running]);
    p.wait_for("the rollback to be taken up", || {
        let h: Vec<Value> = serde_json::from_str(&p.ok(&["history", "--output", "json"])).unwrap();
        h[0]["revision"] == head(&p).as_str() && h[0]["result"] == "applied"
    });
    assert_eq!(p.ok(&["call", "steady", "/"]).trim(), "still here");
}

#[test]
fn one_service_rolls_back_alone() {
    let p = Platform::start();
    for name in ["left", "right"] {
        p.write_service(name, &[("service.yaml", &spec("old", 1)), ("main.py", APP)]);
        p.ok(&["run", &format!("./{name}"), "--wait"]);
    }
    p.ok(&["clone", "repo"]);
    let repo = p.work.join("repo");
    let first = p.git_ok(&repo, &["rev-parse", "HEAD"]).trim().to_owned();
    for name in ["left", "right"] {
        std::fs::write(p.work.join(name).join("service.yaml"), spec("new", 1)).unwrap();
        p.ok(&["update", name, "--wait"]);
    }
    p.ok(&["rollback", &first, "--service", "left"]);
    p.wait_for("left to answer old again", || {
        let out = p.micro(&["call", "left", "/"]);
        String::from_utf8_lossy(&out.stdout).trim() == "old"
    });
    assert_eq!(
        p.ok(&["call", "right", "/"]).trim(),
        "new",
        "right is untouched"
    );
    let err = p.fails(&["rollback", &first, "--service", "Bad_Name"]);
    assert!(!err.is_empty());
}

#[test]
fn update_from_a_folder_never_overwrites_work_pushed_since() {
    let p = Platform::start();
    p.write_service(
        "greeter",
        &[("service.yaml", &spec("folder", 1)), ("main.py", APP)],
    );
    p.ok(&["run", "./greeter", "--wait"]);
    // The README's order: clone, edit, push; then `micro update` from the old folder.
    p.ok(&["clone", "repo"]);
    let repo = p.work.join("repo");
    std::fs::write(
        repo.join("services/greeter/service.yaml"),
        spec("pushed", 1),
    )
    .unwrap();
    p.git_ok(&repo, &["commit", "-qam", "Greet differently"]);
    p.git_ok(&repo, &["push", "-q", "origin", "HEAD:main"]);
    let pushed = p
        .git_ok(&repo, &["rev-parse", "--short=7", "HEAD"])
        .trim()
        .to_owned();
    p.wait_for("the pushed edit to answer", || {
        String::from_utf8_lossy(&p.micro(&["call", "greeter", "/"]).stdout).trim() == "pushed"
    });

    let err = p.fails(&["update", "greeter"]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&pushed) && err.contains("Greet differently") && err.contains("--force"),
        "names the revision that changed it and the way out: {err}"
    );
    p.git_ok(&repo, &["fetch", "-q"]);
    assert_eq!(
        p.git_ok(&repo, &["rev-parse", "--short=7", "origin/main"])
            .trim(),
        pushed,
        "nothing was pushed"
    );
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "pushed");

    // Asked for, it overwrites, saying field by field what (outside a terminal it does
    // not ask); after that, the folder is in step again.
    let out = p.micro(&["update", "greeter", "--force", "--wait"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("--force overwrites what the repo holds for greeter:")
            && said.contains(r#"env.GREETING: "pushed" → "folder""#),
        "{said}"
    );
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "folder");
    std::fs::write(p.work.join("greeter/service.yaml"), spec("again", 1)).unwrap();
    p.ok(&["update", "greeter", "--wait"]);
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "again");
}

#[test]
fn a_push_can_be_followed_through_the_server_log() {
    let p = Platform::start_with(&[("MICRO_LOG", "debug")]);
    p.write_service(
        "greeter",
        &[("service.yaml", &spec("hi", 1)), ("main.py", APP)],
    );
    p.ok(&["run", "./greeter", "--wait"]);
    let head = p.status(None)[0]["revision"].as_str().unwrap().to_owned();
    let log = p.server_log();
    let line_with = |all: &[&str]| log.lines().find(|l| all.iter().all(|s| l.contains(s)));
    assert!(
        line_with(&[
            "git{",
            "namespace=\"default\"",
            "git-receive-pack",
            "git request"
        ])
        .is_some(),
        "the git handler's span: {log}"
    );
    assert!(
        line_with(&["reconcile queued", "default"]).is_some(),
        "{log}"
    );
    assert!(
        line_with(&["reconcile{", &head, "history recorded", "applied"]).is_some(),
        "the reconcile's span names the revision down to the history row: {log}"
    );
    assert!(
        line_with(&["request{", "/api/v1/namespaces/{ns}/status", "answered"]).is_some(),
        "requests are traced by route template: {log}"
    );
}

/// Replicas are a runtime setting, as `heroku ps:scale` makes them: `micro update` from
/// the folder after `micro scale` is not refused and keeps the scale, unless the folder
/// itself changed its `replicas`.
#[test]
fn update_from_a_folder_keeps_the_scale_unless_the_folder_changes_it() {
    let p = Platform::start();
    p.write_service(
        "greeter",
        &[("service.yaml", &spec("one", 1)), ("main.py", APP)],
    );
    p.ok(&["run", "./greeter", "--wait"]);
    p.ok(&["scale", "greeter", "3", "--wait"]);
    // A code change in the folder (its `replicas: 1` as it was).
    std::fs::write(p.work.join("greeter/service.yaml"), spec("two", 1)).unwrap();
    p.ok(&["update", "greeter", "--wait"]);
    assert_eq!(p.ok(&["call", "greeter", "/"]).trim(), "two");
    let s = p.service(None, "greeter").unwrap();
    assert_eq!(s["desired"], 3, "the scale was undone: {s}");
    // Again, with nothing new from the folder but the scale in the repo.
    std::fs::write(p.work.join("greeter/service.yaml"), spec("three", 1)).unwrap();
    p.ok(&["update", "greeter", "--wait"]);
    assert_eq!(p.service(None, "greeter").unwrap()["desired"], 3);
    // The folder says 2 now: the folder wins.
    std::fs::write(p.work.join("greeter/service.yaml"), spec("three", 2)).unwrap();
    p.ok(&["update", "greeter", "--wait"]);
    assert_eq!(p.service(None, "greeter").unwrap()["desired"], 2);
}
