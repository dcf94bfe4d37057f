//! What users of kubectl and Heroku expect of the CLI: `describe`, `status -w`, `-o
//! json|yaml` with RFC 3339 times everywhere, and errors that say what to do next.

use crate::harness::Platform;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const APP: &str = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";

fn is_rfc3339(s: &str) -> bool {
    humantime::parse_rfc3339(s).is_ok()
}

#[test]
fn describe_shows_the_commit_replicas_config_versions_and_events() {
    let p = Platform::start();
    p.ok(&["config", "set", "db.password", "hunter2", "--secret"]);
    p.write_service(
        "web",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nreplicas: 2\nconfig: [db.password]\n",
            ),
            ("main.py", APP),
        ],
    );
    p.ok(&["run", "./web", "--wait"]);
    let text = p.ok(&["describe", "web"]);
    for expected in [
        "Run web",
        "running 2/2",
        "db.password  v1",
        "rollout of",
        "replica 1 ready",
        "replica 2 ready",
        "rolled out",
        "restarts 0",
        "at 127.0.0.1:",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(!text.contains("hunter2"), "never a value: {text}");
    assert_eq!(p.ok(&["status", "web", "-o", "wide"]), text);

    let json: Value = serde_json::from_str(&p.ok(&["describe", "web", "-o", "json"])).unwrap();
    assert_eq!(json["replicas"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["config"]["db.password"], 1);
    assert!(is_rfc3339(json["updated"].as_str().unwrap()), "{json}");
    assert!(
        json["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| is_rfc3339(e["at"].as_str().unwrap())),
        "{json}"
    );
    let yaml = p.ok(&["describe", "web", "-o", "yaml"]);
    assert!(yaml.contains("name: web"), "{yaml}");

    // A crash shows as a restart with its exit.
    let pid = p.processes("main.py")[0];
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    p.wait_for("the crash to be described", || {
        let d = p.ok(&["describe", "web"]);
        d.contains("restarts 1") && d.contains("killed by signal 9")
    });
    assert!(p.fails(&["describe", "nosuch"]).contains("not found"));
}

#[test]
fn every_data_command_speaks_json_and_yaml_with_rfc3339_times() {
    let p = Platform::start();
    p.write_service(
        "web",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", APP),
        ],
    );
    p.ok(&["run", "./web", "--wait"]);
    p.ok(&["config", "set", "greeting", "hi"]);
    p.ok(&["store", "--table", "t", "write", "k", "v"]);
    for args in [
        vec!["status"],
        vec!["history"],
        vec!["whoami"],
        vec!["env"],
        vec!["config", "list"],
        vec!["config", "get", "greeting"],
        vec!["store", "--table", "t", "list"],
        vec!["store", "--table", "t", "read", "k"],
        vec!["admin", "namespace", "list"],
        vec!["admin", "account", "list"],
        vec!["admin", "quota", "default"],
        vec!["describe", "web"],
        vec!["version"],
    ] {
        let mut json = args.clone();
        json.extend(["-o", "json"]);
        let out = p.ok(&json);
        let parsed: Result<Value, _> = serde_json::from_str(&out);
        assert!(parsed.is_ok(), "{args:?}: {out}");
        let mut yaml = args.clone();
        yaml.extend(["-o", "yaml"]);
        let out = p.ok(&yaml);
        assert!(
            !out.trim().is_empty() && !out.trim_start().starts_with('{'),
            "{args:?}: {out}"
        );
    }
    let status: Vec<Value> = serde_json::from_str(&p.ok(&["status", "-o", "json"])).unwrap();
    assert!(is_rfc3339(status[0]["updated"].as_str().unwrap()));
    let history: Vec<Value> = serde_json::from_str(&p.ok(&["history", "-o", "json"])).unwrap();
    assert!(is_rfc3339(history[0]["started"].as_str().unwrap()));
    let envs = p.ok(&["env", "-o", "json"]);
    assert!(
        envs.contains("\"logged_in\": true") && !envs.contains("token"),
        "{envs}"
    );
}

#[test]
fn status_watch_prints_each_change_until_stopped() {
    let p = Platform::start();
    p.write_service(
        "web",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", APP),
        ],
    );
    p.ok(&["run", "./web", "--wait"]);
    let mut watcher = p
        .command(&["status", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    assert!(next().starts_with("NAME"));
    assert!(next().contains("running"));
    p.ok(&["scale", "web", "2"]);
    let mut seen = Vec::new();
    while !seen
        .last()
        .is_some_and(|l: &String| l.contains("running") && l.contains("2/2"))
    {
        seen.push(next());
    }
    p.ok(&["kill", "web"]);
    while !seen.last().is_some_and(|l: &String| l.contains("removed")) {
        seen.push(next());
    }
    watcher.kill().unwrap();
    let _ = watcher.wait();
    assert!(seen.iter().all(|l| l.starts_with("web ")), "{seen:?}");
}

#[test]
fn errors_say_what_to_do_next() {
    let p = Platform::start();
    // A developer reaching for an admin command.
    p.ok(&[
        "admin",
        "account",
        "create",
        "dev@x.example",
        "--namespace",
        "default",
        "--password",
        "long password",
    ]);
    let home = p.home.with_file_name("home-dev");
    std::fs::create_dir_all(&home).unwrap();
    let env = p.env_json(None);
    std::fs::write(home.join("envs.json"), env.to_string()).unwrap();
    let dev = |args: &[&str], stdin: &[u8]| {
        let mut child = p
            .command(args)
            .env("MICRO_HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = dev(&["status"], b"");
    assert!(!ok && err.contains("run `micro login`"), "{err}");
    let (ok, err) = dev(&["login"], b"");
    assert!(!ok && err.contains("--email"), "no terminal: {err}");
    let (ok, err) = dev(&["login", "--email", "dev@x.example"], b"");
    assert!(!ok && err.contains("--password-stdin"), "{err}");
    let (ok, err) = dev(
        &["login", "--email", "dev@x.example", "--password-stdin"],
        b"long password\n",
    );
    assert!(ok, "{err}");
    let (ok, err) = dev(&["admin", "namespace", "list"], b"");
    assert!(!ok && err.contains("needs the admin role"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `micro` or `micro config` alone shows the help as it is laid out (not flattened into
/// one line), and a mistyped command says what it may have meant and how it is used, on
/// one line.
#[test]
fn help_keeps_its_layout_and_a_usage_error_names_the_way_out() {
    let p = Platform::start();
    for args in [&[][..], &["config"][..]] {
        let out = p.micro(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let help = String::from_utf8_lossy(&out.stderr);
        assert!(help.lines().count() > 8, "{args:?}: {help}");
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with("Usage: micro")),
            "{help}"
        );
    }
    let out = p.micro(&["stauts"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(
        said.contains("unrecognized subcommand 'stauts'")
            && said.contains("'status'")
            && said.contains("(usage: micro"),
        "{said}"
    );
}

/// `source <(COMPLETE=bash micro)`: completion asks the platform for the namespace's
/// service names (here through fish's protocol, which prints one candidate a line).
#[test]
fn completion_completes_the_namespaces_service_names() {
    let p = Platform::start();
    for name in ["hello", "helper", "other"] {
        p.write_service(
            name,
            &[
                ("service.yaml", "run: python3 -u main.py\n"),
                ("main.py", APP),
            ],
        );
        p.ok(&["run", &format!("./{name}")]);
    }
    let complete = |words: &[&str]| -> Vec<String> {
        let out = p
            .command(&[])
            .env("COMPLETE", "fish")
            .arg("--")
            .arg("micro")
            .args(words)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(complete(&["logs", "hel"]), ["hello", "helper"]);
    assert_eq!(complete(&["scale", "o"]), ["other"]);
    // Not a service argument: no platform names offered.
    assert!(!complete(&["env", "set", "hel"]).contains(&"hello".to_owned()));
}
