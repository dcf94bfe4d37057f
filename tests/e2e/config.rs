//! Config: values in the store, versions in git. The service sees exactly the versions
//! its commit names; reverting a config commit brings the old value back; a secret never
//! reaches git, diffs, history or logs.

use crate::harness::Platform;

const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = os.environ.get('MICRO_CONFIG_DB_PASSWORD', '-') + ' ' + os.environ.get('MICRO_CONFIG_FEATURE_FLAG', '-')\n        self.send_response(200); self.end_headers(); self.wfile.write(body.encode())\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

fn answer(p: &Platform) -> String {
    let out = p.micro(&["call", "cfg", "/"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn config_set_reaches_the_service_and_a_revert_brings_the_old_value_back() {
    let p = Platform::start();
    p.write_service(
        "cfg",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nconfig: [db.password, feature-flag]\n",
            ),
            ("main.py", APP),
        ],
    );
    // A key with no value yet would only show as a crash at run time: refused at push,
    // where it stands, and nothing is committed.
    let err = p.fails(&["run", "./cfg", "--wait"]);
    assert!(
        err.contains("services/cfg/service.yaml:2:")
            && err.contains("config key \"db.password\" is not in config.yaml")
            && err.contains("micro config set db.password"),
        "{err}"
    );
    assert!(p.service(None, "cfg").is_none());

    p.ok(&["config", "set", "db.password", "hunter2", "--secret"]);
    p.ok(&["config", "set", "feature-flag", "{\"on\": true}"]);
    p.ok(&["run", "./cfg", "--wait"]);
    assert_eq!(answer(&p), "hunter2 {\"on\":true}");
    assert_eq!(p.ok(&["config", "get", "db.password"]).trim(), "[secret]");
    assert_eq!(
        p.ok(&["config", "get", "db.password", "--secret"]).trim(),
        "hunter2"
    );
    assert_eq!(
        p.ok(&["config", "get", "feature-flag"]).trim(),
        "{\"on\":true}"
    );

    p.ok(&["config", "set", "db.password", "swordfish", "--secret"]);
    p.wait_for("the new version", || answer(&p).starts_with("swordfish"));
    let list = p.ok(&["config", "list"]);
    assert!(
        list.contains("db.password") && list.contains("yes"),
        "{list}"
    );
    assert!(!list.contains("swordfish"), "list shows no values: {list}");
    assert_eq!(
        p.ok(&["config", "get", "db.password", "--secret", "--version", "1"])
            .trim(),
        "hunter2"
    );

    // git keeps versions only; reverting the last config commit restores the old value.
    p.ok(&["clone", "repo"]);
    let repo = p.work.join("repo");
    let config_yaml = std::fs::read_to_string(repo.join("config.yaml")).unwrap();
    assert!(
        config_yaml.contains("\"db.password\": { version: 2, secret: true }"),
        "{config_yaml}"
    );
    p.git_ok(&repo, &["revert", "--no-edit", "HEAD"]);
    let diff = p.command(&["diff"]).current_dir(&repo).output().unwrap();
    let diff_text = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff_text.contains("config.db.password: v2 → v1"),
        "{diff_text}"
    );
    p.git_ok(&repo, &["push", "-q"]);
    p.wait_for("the old value back", || answer(&p).starts_with("hunter2"));

    let log = p.git_ok(&repo, &["log", "-p", "--all"]);
    let history = p.ok(&["history", "--output", "json"]);
    for secret in ["hunter2", "swordfish"] {
        assert!(!log.contains(secret), "{secret} is in git");
        assert!(!diff_text.contains(secret) && !history.contains(secret));
        assert!(
            !p.server_log().contains(secret),
            "{secret} is in the server log"
        );
    }

    // Delete: not while a service lists it; then gone from config.yaml (the stored
    // versions stay for reverts).
    let err = p.fails(&["config", "del", "feature-flag"]);
    assert!(err.contains("listed by services/cfg/service.yaml"), "{err}");
    p.ok(&["kill", "cfg"]);
    p.ok(&["config", "del", "feature-flag"]);
    assert!(!p.ok(&["config", "list"]).contains("feature-flag"));
    assert!(
        p.fails(&["config", "del", "feature-flag"])
            .contains("not found")
    );
}

#[test]
fn bad_config_input_is_refused_and_changes_nothing() {
    let p = Platform::start();
    assert!(
        p.fails(&["config", "set", "bad key!", "x"])
            .contains("[A-Za-z0-9._-]")
    );
    let big = "x".repeat(70 * 1024);
    assert!(p.fails(&["config", "set", "big", &big]).contains("limit"));
    assert!(p.fails(&["config", "get", "nothing"]).contains("not found"));
    assert!(!p.ok(&["config", "list"]).contains("big"));
}

#[test]
fn two_config_sets_at_the_same_moment_both_take_effect() {
    let p = Platform::start();
    // A second machine of the same account: its own MICRO_HOME, its own push cache.
    let other = p.home.with_file_name("other-home");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(p.home.join("envs.json"), other.join("envs.json")).unwrap();
    for round in 0..3 {
        let (a, b, c) = (
            format!("alpha{round}"),
            format!("beta{round}"),
            format!("gamma{round}"),
        );
        let spawn = |key: &str, value: &str, home: &std::path::Path| {
            p.command(&["config", "set", key, value])
                .env("MICRO_HOME", home)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let one = spawn(&a, "1", &p.home);
        let two = spawn(&b, "2", &other);
        // Same machine, same moment: the two commands take turns on the push cache.
        let three = spawn(&c, "3", &p.home);
        for child in [one, two, three] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let list = p.ok(&["config", "list"]);
        assert!(
            list.contains(&a) && list.contains(&b) && list.contains(&c),
            "{list}"
        );
        assert_eq!(p.ok(&["config", "get", &b]).trim(), "2");
    }
}

#[test]
fn concurrent_sets_of_one_key_never_leave_it_below_a_version_a_caller_was_told() {
    let p = Platform::start();
    let other = p.home.with_file_name("other-home");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(p.home.join("envs.json"), other.join("envs.json")).unwrap();
    for round in 0..2 {
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let home = if i % 2 == 0 { &p.home } else { &other };
                p.command(&["config", "set", "shared", &format!("r{round}w{i}")])
                    .env("MICRO_HOME", home)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut told = 0u64;
        for w in writers {
            let out = w.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{said}");
            let version: u64 = said
                .split("version ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no version in {said:?}"));
            told = told.max(version);
        }
        let list: serde_json::Value =
            serde_json::from_str(&p.ok(&["config", "list", "--output", "json"])).unwrap();
        let at_head = list
            .as_array()
            .and_then(|a| a.iter().find(|e| e["key"] == "shared"))
            .map(|e| e["version"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("{list}"));
        assert_eq!(at_head, told, "round {round}: {list}");
    }
}

#[test]
fn a_secret_from_stdin_is_sealed_in_the_store_and_never_in_git() {
    use std::io::Write;
    let p = Platform::start();
    let secret = "s3cr3t-from-stdin-7731";
    let mut child = p
        .command(&["config", "set", "db.password", "--stdin", "--secret"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{secret}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        p.ok(&["config", "get", "db.password", "--secret"]).trim(),
        secret
    );
    // Neither the database files nor the repo hold the value; the key lives apart.
    for file in ["store.db", "store.db-wal"] {
        let bytes = std::fs::read(p.data.join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(secret), "{file} holds the value");
    }
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(p.data.join("config.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    p.ok(&["clone", "work"]);
    let out = p.git(&p.work.join("work"), &["log", "-p", "--all"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    // Without a value or --stdin, nothing is set.
    let err = p.fails(&["config", "set", "other.key"]);
    assert!(err.contains("--stdin") || err.contains("VALUE"), "{err}");
}
