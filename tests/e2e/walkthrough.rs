//! The README walkthrough, as a new user types it.

use crate::harness::Platform;

#[test]
fn new_run_status_call_logs_clone_push_kill() {
    let p = Platform::start();
    // The server wrote the CLI env: no login needed.
    assert!(p.ok(&["env"]).contains("* server"));

    p.ok(&["new", "hello"]);
    let out = p.micro(&["run", "./hello", "--wait"]);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{progress}");
    assert!(
        progress.contains("hello: running"),
        "progress shown: {progress}"
    );

    let hello = p.wait_running(None, "hello", None);
    assert_eq!(hello["replicas"], "1/1");
    let first = hello["revision"].as_str().unwrap().to_owned();
    let table = p.ok(&["status"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains(&first[..7]) && table.contains("running") && table.contains("1/1"),
        "{table}"
    );

    assert!(p.ok(&["call", "hello", "/"]).contains("Hello from hello"));
    assert!(
        p.ok(&["call", "hello", "/greet", r#"{"name": "Ann"}"#])
            .contains("Hello Ann")
    );
    assert!(
        p.ok(&["logs", "hello", "-n", "20"])
            .contains("hello listening on port")
    );
    // The README's line, as the skeleton answers it.
    let answer = p.ok(&[
        "call",
        "hello",
        "/items/7",
        "-X",
        "DELETE",
        "-H",
        "X-Trace: 1",
        "-i",
    ]);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("deleted /items/7"),
        "{answer}"
    );

    // Power user: clone, edit, push.
    p.ok(&["clone", "work"]);
    let work = p.work.join("work");
    let main_py = work.join("services/hello/main.py");
    let code = std::fs::read_to_string(&main_py).unwrap();
    std::fs::write(
        &main_py,
        code.replace("{GREETING} from {NAME}", "{GREETING} again from {NAME}"),
    )
    .unwrap();
    p.git_ok(&work, &["commit", "-qam", "Say it again"]);
    p.git_ok(&work, &["push", "-q"]);
    let pushed = p.git_ok(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    p.wait_running(None, "hello", Some(&pushed));
    assert!(
        p.ok(&["call", "hello", "/"])
            .contains("Hello again from hello")
    );

    // The token never lands in the clone's config.
    let token = std::fs::read_to_string(p.home.join("envs.json")).unwrap();
    let token =
        serde_json::from_str::<serde_json::Value>(&token).unwrap()["envs"]["server"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(
        !std::fs::read_to_string(work.join(".git/config"))
            .unwrap()
            .contains(&token)
    );

    // `micro update` picks up edits in the folder the service was run from, but not
    // over the edit pushed from the clone: that would lose it without a word.
    let local = p.work.join("hello/main.py");
    let code = std::fs::read_to_string(&local).unwrap();
    std::fs::write(
        &local,
        code.replace("{GREETING} from {NAME}", "{GREETING} updated from {NAME}"),
    )
    .unwrap();
    let refused = p.fails(&["update", "hello", "--wait"]);
    assert!(
        refused.contains("Say it again") && refused.contains("--force"),
        "{refused}"
    );
    p.ok(&["update", "hello", "--force", "--wait"]);
    assert!(
        p.ok(&["call", "hello", "/"])
            .contains("Hello updated from hello")
    );

    // `kill` returns once the platform has acted on the commit, and says what it did.
    let out = p.micro(&["kill", "hello"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    if said.contains("hello: stopped") {
        assert!(p.service(None, "hello").is_none(), "stopped means gone");
    } else {
        assert!(
            said.contains("hello: stopping") || said.contains("not taken up"),
            "{said}"
        );
    }
    p.wait_for("hello to be gone", || p.service(None, "hello").is_none());
    assert!(p.fails(&["call", "hello", "/"]).contains("not found"));
    assert!(p.fails(&["status", "hello"]).contains("not found"));
    assert!(p.fails(&["kill", "hello"]).contains("not found"));
    assert!(
        p.processes("main.py").is_empty(),
        "killed service left processes"
    );
}

#[test]
fn clear_errors_for_bad_commands() {
    let p = Platform::start();
    assert!(p.fails(&["run", "./nope"]).contains("no such folder"));
    assert!(p.fails(&["logs", "ghost"]).contains("not found"));
    assert!(
        p.fails(&["call", "ghost", "/", "{not json"])
            .contains("not valid JSON")
    );
    assert!(p.fails(&["new", "Bad_Name"]).contains("lowercase"));
    assert!(
        p.fails(&["status", "--namespace", "nosuch"])
            .contains("not found")
    );
    let mut p = p;
    p.stop();
    assert!(p.fails(&["status"]).contains("is `micro server` running?"));
}

#[test]
fn a_reader_going_away_ends_a_command_quietly() {
    let p = Platform::start();
    for args in [
        &["history"][..],
        &["status"],
        &["admin", "namespace", "list"],
        &["env"],
    ] {
        // `micro … | head -0`: the read end is closed before the command writes.
        let mut child = p
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}");
    }
}

#[test]
fn the_built_in_environment_cannot_be_deleted_out_from_under_the_user() {
    let p = Platform::start();
    let err = p.fails(&["env", "del", "server"]);
    assert!(err.contains("built in"), "{err}");
    // Still logged in as before.
    assert!(p.ok(&["whoami"]).contains("admin"));
    let err = p.fails(&["env", "add", "server", "http://127.0.0.1:1"]);
    assert!(err.contains("built in"), "{err}");
    // Another env can come and go; deleting the current one falls back to `server`.
    p.ok(&["env", "add", "other", "http://127.0.0.1:1"]);
    p.ok(&["env", "set", "other"]);
    p.ok(&["env", "del", "other"]);
    assert!(p.ok(&["env"]).contains("* server"));
    assert!(p.ok(&["whoami"]).contains("admin"));
}

/// Answers every method with what it received; sets a header of its own, and tries to
/// pose as the platform's error mark.
const ECHO: &str = r#"
import json, os, http.server
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": self.rfile.read(n).decode()}).encode()
        self.send_response(201); self.send_header("X-Reply", "yes")
        self.send_header("X-Micro-Error", "1"); self.end_headers(); self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn call_takes_any_method_and_headers_and_shows_the_answers_headers() {
    let p = Platform::start();
    p.write_service(
        "echo",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", ECHO),
        ],
    );
    p.ok(&["run", "./echo", "--wait"]);
    let out = p.ok(&[
        "call",
        "echo",
        "/items/7?full=1",
        r#"{"n": 1}"#,
        "-X",
        "put",
        "-H",
        "X-Thing: 42",
    ]);
    let seen: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/items/7?full=1");
    assert_eq!(seen["headers"]["x-thing"], "42");
    assert_eq!(seen["body"], r#"{"n": 1}"#);
    assert!(
        seen["headers"].get("authorization").is_none(),
        "the caller's platform token never reaches a service"
    );
    let out = p.ok(&["call", "echo", "/", "-X", "DELETE", "-i"]);
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    assert!(out.to_lowercase().contains("x-reply: yes"), "{out}");
    assert!(!out.to_lowercase().contains("x-micro-error"), "{out}");
    let err = p.fails(&["call", "echo", "/", "-H", "no colon"]);
    assert!(err.contains("Name: value"), "{err}");
}

#[test]
fn version_and_shell_completion() {
    let p = Platform::start();
    let said = p.ok(&["version"]);
    assert!(said.starts_with("micro "), "{said}");
    // The server's too: the same build here.
    let v: serde_json::Value = serde_json::from_str(&p.ok(&["version", "-o", "json"])).unwrap();
    assert!(v["version"].is_string(), "{v}");
    assert_eq!(v["server"], v["version"], "{v}");
    assert!(
        said.contains(&format!("server {}", v["version"].as_str().unwrap())),
        "{said}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = p.ok(&["completion", shell]);
        for command in ["restart", "rollback", "config", "admin"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    // bash accepts what it generates (from a file, as users source it: the script is
    // longer than one command-line argument may be).
    let script = p.work.join("micro.bash");
    std::fs::write(&script, p.ok(&["completion", "bash"])).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = p.fails(&["completion", "tcsh"]);
    assert!(!err.is_empty());
}

/// A `GIT_SSL_CAINFO` in the user's environment outranks a clone's own CA: `micro clone`
/// and `micro env` say so and how to fix it; `env add` of a name in use says how to
/// replace it.
#[test]
fn a_git_ssl_cainfo_in_the_way_is_named_with_its_fix() {
    let p = Platform::start();
    assert!(
        !p.insecure(),
        "the platform serves TLS with its own CA here"
    );
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    for args in [&["clone", "work"][..], &["env"][..]] {
        let out = p
            .command(args)
            .env("GIT_SSL_CAINFO", bundle)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {said}");
        assert!(
            said.contains(&format!("GIT_SSL_CAINFO is set ({bundle})"))
                && said.contains("unset GIT_SSL_CAINFO"),
            "{args:?}: {said}"
        );
    }
    // Without it, nothing is said.
    let out = p
        .command(&["env"])
        .env_remove("GIT_SSL_CAINFO")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("GIT_SSL_CAINFO"));

    p.ok(&["env", "add", "other", "https://127.0.0.1:9"]);
    let said = p.fails(&["env", "add", "other", "https://127.0.0.1:10"]);
    assert!(said.contains("--force"), "{said}");
    p.ok(&["env", "add", "other", "https://127.0.0.1:10", "--force"]);
    assert!(p.ok(&["env"]).contains("https://127.0.0.1:10"));
}

/// The README's "How a service uses the platform", run in a service: its Python
/// snippet writes and reads the store and calls a sibling through `MICRO_CALL` (with a
/// trailing slash on the root, as a base URL makes it).
#[test]
fn a_service_uses_the_store_and_calls_a_sibling_as_the_readme_shows() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## How a service uses the platform")
        .nth(1)
        .unwrap();
    let snippet = section
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let p = Platform::start();
    let greeter = "import json, os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = json.dumps({'hello': self.path}).encode()\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    p.write_service(
        "greeter",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", greeter),
        ],
    );
    p.ok(&["run", "./greeter", "--wait"]);
    let front = format!(
        "import http.server\n{snippet}\nroot = platform('GET', os.environ['MICRO_CALL'] + '/greeter/call/')\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = json.dumps({{'visits': visits, 'hello': hello, 'root': root}}).encode()\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
    );
    p.write_service(
        "front",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", &front),
        ],
    );
    p.ok(&["run", "./front", "--wait"]);
    let got: serde_json::Value = serde_json::from_str(&p.ok(&["call", "front", "/"])).unwrap();
    assert_eq!(got["visits"], "41", "{got}");
    assert_eq!(got["hello"]["hello"], "/hello", "{got}");
    assert_eq!(got["root"]["hello"], "/", "{got}");
    // What it wrote is the namespace's, as the CLI sees it.
    assert!(p.ok(&["store", "read", "visits"]).contains("41"));
}

/// A replica without `resources` reserves 100m and 128Mi of its namespace's quota (and
/// may use the default limits): a dozen small replicas fit a namespace whose defaults
/// fit this machine; past the quota, the refusal names the resource.
#[test]
fn a_namespace_of_small_replicas_is_not_stopped_at_its_cpu_count() {
    let p = Platform::start();
    let quota = p.ok(&["admin", "quota", "default", "-o", "json"]);
    let quota: serde_json::Value = serde_json::from_str(&quota).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(quota["cpu"], format!("{}m", cores * 1000), "{quota}");
    let app = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";
    // More than the eight the old 1-CPU reservation allowed.
    let many = (cores * 5).clamp(9, 40);
    p.write_service(
        "many",
        &[
            (
                "service.yaml",
                &format!("run: python3 -u main.py\nreplicas: {many}\n"),
            ),
            ("main.py", app),
        ],
    );
    let out = p.micro(&["run", "./many"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.write_service(
        "big",
        &[
            (
                "service.yaml",
                &format!("run: python3 -u main.py\nresources: {{ cpu: \"{cores}\" }}\n"),
            ),
            ("main.py", app),
        ],
    );
    let said = p.fails(&["run", "./big"]);
    assert!(
        said.contains("over quota: cpu (the replicas' resources.cpu, 100m each without one)"),
        "{said}"
    );
    p.ok(&["kill", "many"]);
}

/// The first admin of a platform run elsewhere (a cluster's pod): `micro admin token
/// create` on the server's machine prints a token from its store, once, writing no file
/// of the person's; `micro env add … --token-stdin` takes it.
#[test]
fn an_admin_token_is_made_from_the_store_and_taken_from_stdin() {
    let p = Platform::start();
    let elsewhere = p.work.join("ops-home");
    let out = p
        .command(&[
            "admin",
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--data-dir",
        ])
        .arg(&p.data)
        .env("MICRO_HOME", &elsewhere)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!token.is_empty() && !token.contains(' '), "{token}");
    assert!(
        !elsewhere.join("envs.json").exists(),
        "it wrote the person's CLI config"
    );
    // Someone's developer account is not made an admin.
    p.ok(&[
        "admin",
        "account",
        "create",
        "dev@example.com",
        "--namespace",
        "default",
        "--password",
        "correct horse",
    ]);
    let out = p
        .command(&[
            "admin",
            "token",
            "create",
            "--email",
            "dev@example.com",
            "--data-dir",
        ])
        .arg(&p.data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an admin's"));

    let ca = p.ca();
    let add = crate::signup::with_stdin(
        p.command(&[
            "env",
            "add",
            "ops",
            &p.url(),
            "--ca-file",
            ca.to_str().unwrap(),
            "--token-stdin",
        ]),
        &token,
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let me: serde_json::Value =
        serde_json::from_str(&p.ok(&["whoami", "--env", "ops", "-o", "json"])).unwrap();
    assert_eq!(
        (me["email"].as_str(), me["role"].as_str()),
        (Some("ops@example.com"), Some("admin")),
        "{me}"
    );
}
