//! Invite-only accounts: an admin creates a namespace and a developer; the developer logs
//! in from their own machine (their own MICRO_HOME) and sees only their namespace.

use crate::harness::Platform;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn dev_cmd(p: &Platform, home: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = p.command(args);
    cmd.env("MICRO_HOME", home);
    cmd
}

fn dev(p: &Platform, home: &std::path::Path, args: &[&str]) -> Output {
    dev_cmd(p, home, args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn admin_invites_a_developer_who_logs_in_and_out() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "team"]);
    p.ok(&[
        "admin",
        "account",
        "create",
        "Dev@Team.example",
        "--namespace",
        "team",
        "--password",
        "s3cret-pass",
    ]);
    let list = p.ok(&["admin", "account", "list"]);
    assert!(
        list.contains("dev@team.example") && list.contains("team"),
        "{list}"
    );
    // Bad input changes nothing.
    assert!(
        p.fails(&[
            "admin",
            "account",
            "create",
            "not-an-email",
            "--namespace",
            "team",
            "--password",
            "long enough"
        ])
        .contains("email")
    );
    assert!(
        p.fails(&[
            "admin",
            "account",
            "create",
            "x@team.example",
            "--namespace",
            "team",
            "--password",
            "short"
        ])
        .contains("8 characters")
    );
    assert!(
        p.fails(&[
            "admin",
            "account",
            "create",
            "x@team.example",
            "--namespace",
            "nosuch",
            "--password",
            "long enough"
        ])
        .contains("not found")
    );
    assert!(
        p.fails(&[
            "admin",
            "account",
            "create",
            "dev@team.example",
            "--namespace",
            "team",
            "--password",
            "long enough"
        ])
        .contains("already exists")
    );

    // The developer's own machine.
    let home = p.home.with_file_name("dev-home");
    let add = p.env_add_args("team");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    assert!(dev(&p, &home, &add).status.success());
    assert!(dev(&p, &home, &["env", "set", "team"]).status.success());
    assert!(String::from_utf8_lossy(&dev(&p, &home, &["env"]).stdout).contains("* team"));
    let out = dev(&p, &home, &["status"]);
    assert!(
        !out.status.success() && stderr(&out).contains("not logged in"),
        "{}",
        stderr(&out)
    );

    let out = dev(
        &p,
        &home,
        &[
            "login",
            "--email",
            "dev@team.example",
            "--password",
            "wrong-pass",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim(), "error: wrong email or password");

    // Prompts read from a pipe when there is no terminal.
    let mut child = dev_cmd(&p, &home, &["login"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"dev@team.example\ns3cret-pass\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("s3cret"),
        "the password is never echoed"
    );
    let me = String::from_utf8_lossy(&dev(&p, &home, &["whoami"]).stdout).into_owned();
    assert!(
        me.contains("dev@team.example") && me.contains("namespace team"),
        "{me}"
    );

    // Their namespace is theirs; others do not exist for them.
    p.write_service("svc", &[("service.yaml", "run: sleep 1000\n")]);
    let out = dev(&p, &home, &["run", "./svc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // `run` returns once the platform has taken the commit up: status already lists it.
    assert!(
        stderr(&out).contains("`micro status svc` shows how it goes"),
        "{}",
        stderr(&out)
    );
    assert!(p.service(Some("team"), "svc").is_some());
    assert!(
        p.service(None, "svc").is_none(),
        "it went to their namespace, not default"
    );
    for args in [
        vec!["status", "--namespace", "default"],
        vec!["admin", "namespace", "list"],
        vec!["admin", "account", "list"],
    ] {
        let out = dev(&p, &home, &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("not found"),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    // Logout revokes the token on the platform, not just locally.
    let envs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("envs.json")).unwrap()).unwrap();
    let token = envs["envs"]["team"]["token"].as_str().unwrap().to_owned();
    assert!(dev(&p, &home, &["logout"]).status.success());
    let out = dev(&p, &home, &["status"]);
    assert!(stderr(&out).contains("not logged in"));
    let stolen = p.env_json(Some(&token));
    let thief = p.home.with_file_name("thief-home");
    std::fs::create_dir_all(&thief).unwrap();
    std::fs::write(thief.join("envs.json"), stolen.to_string()).unwrap();
    let out = dev(&p, &thief, &["status", "--namespace", "team"]);
    assert!(
        !out.status.success() && stderr(&out).contains("not logged in"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn login_attempts_are_rate_limited() {
    let p = Platform::start();
    p.ok(&[
        "admin",
        "account",
        "create",
        "ann@example.com",
        "--namespace",
        "default",
        "--password",
        "right-password",
    ]);
    let home = p.home.with_file_name("ann-home");
    let add = p.env_add_args("p");
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    dev(&p, &home, &add);
    let mut last = String::new();
    for _ in 0..12 {
        last = stderr(&dev(
            &p,
            &home,
            &[
                "--env",
                "p",
                "login",
                "--email",
                "ann@example.com",
                "--password",
                "guess",
            ],
        ));
    }
    assert!(last.contains("too many login attempts"), "{last}");
    // Even the right password waits out the window.
    let out = dev(
        &p,
        &home,
        &[
            "--env",
            "p",
            "login",
            "--email",
            "ann@example.com",
            "--password",
            "right-password",
        ],
    );
    assert!(!out.status.success() && stderr(&out).contains("too many"));
    // The guesser slowed only itself: the owner, from another address, logs in at once.
    let login = format!(
        "import json, socket, ssl, sys\n\
ctx = ssl.create_default_context(cafile={:?})\n\
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {}), source_address=('127.0.0.2', 0)), server_hostname='127.0.0.1')\n\
body = json.dumps({{'email': 'ann@example.com', 'password': 'right-password'}})\n\
s.sendall(('POST /api/v1/login HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s' % (len(body), body)).encode())\n\
print(s.makefile().readline())\n",
        p.ca().display().to_string(),
        p.port
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &login])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains(" 200 "),
        "{line} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whatever ends access ends it for the very next request, though the platform keeps
/// who a token is in memory: each request below is made twice first, so it is answered
/// from there when access ends.
#[test]
fn logout_deletion_and_suspension_end_access_at_once() {
    use micro_api::client::{Client, ClientError};
    let p = Platform::start();
    let ca = std::fs::read_to_string(p.ca()).unwrap();
    for email in ["a@example.com", "b@example.com"] {
        p.ok(&[
            "admin",
            "account",
            "create",
            email,
            "--namespace",
            "default",
            "--password",
            "a long password",
        ]);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let anonymous = Client::pinned(&p.url(), None, Some(&ca)).unwrap();
    let session = |email: &str| {
        let token = rt
            .block_on(anonymous.login(email, "a long password"))
            .unwrap()
            .token;
        Client::pinned(&p.url(), Some(token), Some(&ca)).unwrap()
    };
    let refused = |c: &Client| matches!(rt.block_on(c.whoami()), Err(ClientError::Unauthorized(_)));
    let twice = |c: &Client| {
        for _ in 0..2 {
            rt.block_on(c.whoami()).unwrap();
        }
    };
    // Logging out.
    let a = session("a@example.com");
    twice(&a);
    rt.block_on(a.logout()).unwrap();
    assert!(refused(&a), "a token logged out still works");
    // An account deleted by an admin: every session of it.
    let (a1, a2) = (session("a@example.com"), session("a@example.com"));
    twice(&a1);
    twice(&a2);
    p.ok(&["admin", "account", "delete", "a@example.com"]);
    assert!(
        refused(&a1) && refused(&a2),
        "a deleted account still works"
    );
    assert!(
        rt.block_on(anonymous.login("a@example.com", "a long password"))
            .is_err()
    );
    let err = p.fails(&["admin", "account", "delete", "a@example.com"]);
    assert!(err.contains("not found"), "{err}");
    // A suspended namespace: the very next write is refused; resumed, the next one works.
    let b = session("b@example.com");
    for _ in 0..2 {
        rt.block_on(b.kv_write("default", "t", "k", "v", None))
            .unwrap();
    }
    p.ok(&["admin", "suspend", "default"]);
    let err = rt
        .block_on(b.kv_write("default", "t", "k", "v2", None))
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Api { status, .. } if status.as_u16() == 403),
        "{err:?}"
    );
    p.ok(&["admin", "resume", "default"]);
    rt.block_on(b.kv_write("default", "t", "k", "v3", None))
        .unwrap();
    // An admin cannot delete themselves (the platform would be left without a way in).
    let err = p.fails(&["admin", "account", "delete", "admin@localhost"]);
    assert!(err.contains("your own account"), "{err}");
}
