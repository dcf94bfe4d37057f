//! An invalid spec never gets in: `micro run` refuses before committing, and a plain
//! `git push` is rejected by the pre-receive check. Nothing changes either way.

use crate::harness::Platform;

const GOOD: &str = "run: python3 -u main.py\n";
const APP: &str = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

#[test]
fn micro_run_rejects_an_invalid_spec_before_committing() {
    let p = Platform::start();
    p.ok(&["clone", "before"]);
    let head = p.git_ok(&p.work.join("before"), &["rev-parse", "HEAD"]);
    p.write_service(
        "broken",
        &[
            ("service.yaml", "run: python3 main.py\nreplica: 2\n"),
            ("main.py", APP),
        ],
    );
    let err = p.fails(&["run", "./broken"]);
    assert!(err.contains("broken/service.yaml:2:1:"), "{err}");
    assert!(err.contains("replica"), "{err}");
    // A branch git would not take is refused in one line, before anything is read.
    p.write_service("fine", &[("service.yaml", GOOD), ("main.py", APP)]);
    let err = p.fails(&["run", "./fine", "--branch", "no..dots"]);
    assert!(
        err.contains("--branch") && err.contains("not a branch name"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Nothing was committed.
    p.ok(&["clone", "after"]);
    assert_eq!(
        p.git_ok(&p.work.join("after"), &["rev-parse", "HEAD"]),
        head
    );
    assert!(p.status(None).is_empty());
}

#[test]
fn git_push_of_an_invalid_spec_is_rejected_and_nothing_changes() {
    let p = Platform::start();
    p.write_service("web", &[("service.yaml", GOOD), ("main.py", APP)]);
    p.ok(&["run", "./web", "--wait"]);
    let before = p.wait_running(None, "web", None);

    p.ok(&["clone", "repo"]);
    let repo = p.work.join("repo");
    std::fs::write(
        repo.join("services/web/service.yaml"),
        "run: python3 -u main.py\nreplicas: lots\n",
    )
    .unwrap();
    p.git_ok(&repo, &["commit", "-qam", "Break it"]);
    let out = p.git(&repo, &["push"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "push should be rejected");
    assert!(
        said.contains("services/web/service.yaml:2:11:"),
        "git shows file:line:col: {said}"
    );

    // A new service folder without a spec is refused too.
    p.git_ok(&repo, &["reset", "-q", "--hard", "origin/main"]);
    std::fs::create_dir_all(repo.join("services/nospec")).unwrap();
    std::fs::write(repo.join("services/nospec/main.py"), APP).unwrap();
    p.git_ok(&repo, &["add", "."]);
    p.git_ok(&repo, &["commit", "-qm", "No spec"]);
    let out = p.git(&repo, &["push"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("services/nospec/service.yaml:1:1: missing")
    );

    // Deleting main is refused.
    let out = p.git(&repo, &["push", "origin", ":main"]);
    assert!(!out.status.success());

    // The branch did not move and the service still runs the same revision.
    let remote = p.git_ok(&repo, &["ls-remote", "origin", "main"]);
    assert!(
        remote.starts_with(before["revision"].as_str().unwrap()),
        "{remote}"
    );
    let after = p.wait_running(None, "web", None);
    assert_eq!(after["revision"], before["revision"]);
    assert!(p.ok(&["call", "web", "/"]).contains("main.py"));
}

#[test]
fn a_local_push_into_the_bare_repo_is_checked_and_reconciled() {
    let p = Platform::start();
    let bare = p.data.join("repos/default.git");
    let out = p.git(&p.work, &["clone", "-q", bare.to_str().unwrap(), "local"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local = p.work.join("local");
    std::fs::create_dir_all(local.join("services/side")).unwrap();
    std::fs::write(
        local.join("services/side/service.yaml"),
        "run: python3 -u main.py\nport: 0\n",
    )
    .unwrap();
    std::fs::write(local.join("services/side/main.py"), APP).unwrap();
    p.git_ok(&local, &["add", "."]);
    p.git_ok(&local, &["commit", "-qm", "Side door"]);
    // The same check guards the bare repo on this machine.
    let out = p.git(&local, &["push", "-q", "origin", "main"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("services/side/service.yaml:2:7:"));

    std::fs::write(local.join("services/side/service.yaml"), GOOD).unwrap();
    p.git_ok(&local, &["commit", "-qam", "Side door, fixed"]);
    p.git_ok(&local, &["push", "-q", "origin", "main"]);
    let head = p.git_ok(&local, &["rev-parse", "HEAD"]).trim().to_owned();
    p.wait_running(None, "side", Some(&head));
}

#[test]
fn what_this_runtime_cannot_run_is_refused_at_push_where_it_stands() {
    let p = Platform::start();
    p.ok(&["clone", "repo"]);
    let repo = p.work.join("repo");
    std::fs::create_dir_all(repo.join("services/img")).unwrap();
    std::fs::write(
        repo.join("services/img/service.yaml"),
        "# from a registry\nimage: nginx:1.27\n",
    )
    .unwrap();
    p.git_ok(&repo, &["add", "."]);
    p.git_ok(&repo, &["commit", "-qm", "An image"]);
    let out = p.git(&repo, &["push"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("services/img/service.yaml:2:8: `image` needs the Kubernetes runtime"),
        "{said}"
    );
    assert!(p.status(None).is_empty());
}
