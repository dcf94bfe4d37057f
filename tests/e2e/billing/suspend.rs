//! Suspension by hand: services stop (scaled to zero, nothing deleted), pushes and
//! writes are refused with one line, reads still work, and resuming brings back exactly
//! what ran. Nobody but an admin suspends or resumes.

use crate::harness::Platform;

const APP: &str = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

#[test]
fn suspend_stops_and_refuses_writes_and_resume_restores_what_ran() {
    let p = Platform::start();
    p.write_service(
        "keep",
        &[
            (
                "service.yaml",
                "run: python3 -u keep_main.py\nport: 8080\nreplicas: 2\n",
            ),
            ("keep_main.py", APP),
        ],
    );
    p.ok(&["config", "set", "db.password", "hunter2", "--secret"]);
    p.ok(&["run", "./keep", "--wait"]);
    p.ok(&["store", "write", "user.1", "ann"]);
    let before = p.wait_running(None, "keep", None);
    assert_eq!(p.processes("keep_main.py").len(), 2);

    p.ok(&["admin", "suspend", "default"]);
    p.wait_for("the services to stop", || {
        p.processes("keep_main.py").is_empty()
    });
    // Writes: refused with one line naming the namespace and why; nothing changes.
    for args in [
        &["scale", "keep", "3"][..],
        &["config", "set", "db.password", "other", "--secret"],
        &["store", "write", "user.2", "bob"],
        &["kill", "keep"],
    ] {
        let err = p.fails(args);
        assert!(
            err.contains("namespace default is suspended: by the platform's admin"),
            "{args:?}: {err}"
        );
    }
    // A direct git push is refused the same way.
    let clone = p.work.join("suspended-clone");
    p.ok(&["clone", clone.to_str().unwrap()]);
    std::fs::write(clone.join("README.md"), "changed\n").unwrap();
    p.git_ok(&clone, &["commit", "-qam", "a change"]);
    let push = p.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let said = String::from_utf8_lossy(&push.stderr);
    assert!(!push.status.success(), "{said}");
    assert!(said.contains("is suspended"), "{said}");

    // Reads: all still there.
    assert_eq!(p.ok(&["store", "read", "user.1"]).trim(), "ann");
    assert!(p.fails(&["store", "read", "user.2"]).contains("not found"));
    assert_eq!(
        p.ok(&["config", "get", "db.password", "--secret"]).trim(),
        "hunter2"
    );
    let status = p.micro(&["status"]);
    let warned = String::from_utf8_lossy(&status.stderr);
    assert!(warned.contains("is suspended"), "{warned}");
    let keep = p
        .service(None, "keep")
        .expect("the service is still listed");
    assert_eq!(keep["replicas"], "0/0", "{keep}");

    // Resume: the same revision runs again, with its two replicas.
    p.ok(&["admin", "resume", "default"]);
    // Until the resume is taken up, status still says what the suspension left: running
    // at 0/0. Wait for the two replicas, not for any running state.
    let mut after = None;
    p.wait_for("both replicas running again", || {
        after = p.service(None, "keep");
        after
            .as_ref()
            .is_some_and(|s| s["status"] == "running" && s["replicas"] == "2/2")
    });
    assert_eq!(after.unwrap()["revision"], before["revision"]);
    p.wait_for("two replicas again", || {
        p.processes("keep_main.py").len() == 2
    });
    p.ok(&["store", "write", "user.2", "bob"]);
    let history = p.ok(&["history"]);
    assert!(history.contains("suspension"), "{history}");
}

#[test]
fn only_admins_suspend_or_resume() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "team"]);
    p.ok(&[
        "admin",
        "account",
        "create",
        "dev@team.example",
        "--namespace",
        "team",
        "--password",
        "s3cret-pass",
    ]);
    let home = p.home.with_file_name("dev-home");
    let add = p.env_add_args("team");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let dev = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.env("MICRO_HOME", &home);
        cmd.output().unwrap()
    };
    assert!(dev(&add).status.success());
    assert!(dev(&["env", "set", "team"]).status.success());
    assert!(
        dev(&[
            "login",
            "--email",
            "dev@team.example",
            "--password",
            "s3cret-pass"
        ])
        .status
        .success()
    );
    p.ok(&["admin", "suspend", "team"]);
    // The developer can neither lift it nor suspend anyone else.
    for args in [
        &["admin", "resume", "team"][..],
        &["admin", "suspend", "default"],
    ] {
        let out = dev(args);
        assert!(!out.status.success());
    }
    let list = p.ok(&["admin", "account", "list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("dev@team.example"))
        .unwrap();
    assert!(
        row.trim_end().ends_with("admin"),
        "still suspended by the admin: {row}"
    );
    assert!(
        row.contains(" free "),
        "an admin-made account is on the free plan: {row}"
    );
    let out = dev(&["store", "write", "a", "b"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("namespace team is suspended"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Reads stay open to the developer.
    assert!(dev(&["store", "list"]).status.success());
    p.ok(&["admin", "resume", "team"]);
    assert!(dev(&["store", "write", "a", "b"]).status.success());
    // Nothing else was suspended on the way.
    assert!(p.micro(&["store", "write", "x", "y"]).status.success());
}
