//! `micro admin backup` and `restore`, on SQLite and on PostgreSQL: a platform with
//! several namespaces, services, secret config, key-value data, history and a linked
//! repo is backed up (where the server runs, and through the API on PostgreSQL's run),
//! wiped, restored, and comes back the same.

use crate::harness::Platform;
use micro_testkit::TempPostgres;
use serde_json::Value;
use std::io::Write;
use std::process::Stdio;

const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(os.environ.get('MICRO_CONFIG_GREETING', '-').encode())\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
const SECRET: &str = "s3cret-greeting-77";
const PASSPHRASE: &str = "correct horse battery";

/// `micro admin ARGS` on the server's data dir, `stdin` as its input; (success, stderr).
fn admin(p: &Platform, store: &str, args: &[&str], stdin: &str) -> (bool, String) {
    let data = p.data.to_string_lossy().into_owned();
    let mut full = vec!["admin"];
    full.extend(args);
    full.extend(["--data-dir", &data]);
    piped(p, store, &full, stdin)
}

/// `micro ARGS` with `stdin` as its input; (success, stderr).
fn piped(p: &Platform, store: &str, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = p
        .command(args)
        .env("MICRO_STORE", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(p: &Platform, args: &[&str]) -> Value {
    serde_json::from_str(&p.ok(args)).unwrap()
}

/// What must come back: services, history, config, data, the link, the plan.
fn state(p: &Platform) -> Vec<Value> {
    let services = |ns: &str| -> Vec<String> {
        p.status(Some(ns))
            .into_iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let link = json(p, &["repo", "show", "--namespace", "other", "-o", "json"]);
    vec![
        serde_json::to_value(services("default")).unwrap(),
        serde_json::to_value(services("other")).unwrap(),
        json(p, &["history", "-o", "json"]),
        json(p, &["history", "--namespace", "other", "-o", "json"]),
        Value::from(p.ok(&["config", "get", "greeting"])),
        Value::from(p.ok(&["store", "read", "visits"])),
        serde_json::json!([link["url"], link["branch"], link["forge"]]),
        Value::from(p.ok(&["diff"])),
    ]
}

fn history_of(v: &Value) -> Vec<(Value, Value, Value)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["revision"].clone(),
                h["result"].clone(),
                h["summary"].clone(),
            )
        })
        .collect()
}

fn back_up_wipe_and_restore(store: Option<(&TempPostgres, &str)>, through_api: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = store.map(|(pg, name)| rt.block_on(pg.fresh_database(name)));
    let mut env = vec![
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ];
    if let Some(url) = &url {
        env.push(("MICRO_STORE", url));
    }
    let mut p = Platform::start_with(&env);
    let spec = url.as_deref().unwrap_or("sqlite");
    p.ok(&["admin", "namespace", "create", "other"]);
    p.write_service(
        "greeter",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nconfig: [greeting]\n",
            ),
            ("main.py", APP),
        ],
    );
    p.ok(&["config", "set", "greeting", SECRET, "--secret"]);
    p.ok(&["run", "./greeter", "--wait"]);
    p.ok(&["store", "write", "visits", "41"]);
    p.ok(&["run", "./greeter", "--name", "second", "--wait"]);
    // `other` follows a forge repo (a local bare one).
    p.ok(&["clone", "other", "--namespace", "other"]);
    let bare = p.work.join("other-forge.git");
    p.git_ok(&p.work, &["init", "-q", "--bare", bare.to_str().unwrap()]);
    let other = p.work.join("other");
    std::fs::create_dir_all(other.join("services/web")).unwrap();
    std::fs::write(
        other.join("services/web/service.yaml"),
        "run: python3 -u main.py\n",
    )
    .unwrap();
    std::fs::write(other.join("services/web/main.py"), APP).unwrap();
    p.git_ok(&other, &["add", "."]);
    p.git_ok(&other, &["commit", "-qm", "web"]);
    p.git_ok(
        &other,
        &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    let forge = format!("file://{}", bare.display());
    p.ok(&[
        "repo",
        "link",
        &forge,
        "--forge",
        "github",
        "--namespace",
        "other",
    ]);
    p.wait_running(Some("other"), "web", None);
    let before = state(&p);

    // A backup while the server runs.
    let archive = p.work.join("platform.backup");
    let out = archive.to_string_lossy().into_owned();
    let (ok, said) = admin(&p, spec, &["backup", "-o", &out], "short\n");
    assert!(!ok && said.contains("shorter than 8"), "{said}");
    let (ok, said) = admin(
        &p,
        spec,
        &["backup", "-o", &out],
        &format!("{PASSPHRASE}\n"),
    );
    assert!(ok, "{said}");
    assert!(said.contains("2 namespaces"), "{said}");
    if through_api {
        // The same, asked of the platform by an admin from afar: the archive that is
        // restored below.
        let (ok, said) = piped(
            &p,
            spec,
            &["admin", "backup", "-o", &out, "--platform"],
            &format!("{PASSPHRASE}\n"),
        );
        assert!(ok, "{said}");
        assert!(said.contains("from the platform"), "{said}");
        // Nothing of it stays on the server.
        let left: Vec<_> = std::fs::read_dir(&p.data)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".backup-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    let bytes = std::fs::read(&archive).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(SECRET), "a secret value in the archive");
    assert!(
        !text.contains("BEGIN PRIVATE KEY"),
        "the CA's key in the clear"
    );

    // Wiped: the server, its services, its data dir and its database.
    p.stop();
    p.stop_services();
    std::fs::remove_dir_all(&p.data).unwrap();
    if let Some((pg, name)) = store {
        rt.block_on(pg.recreate_database(name));
    }
    std::fs::create_dir_all(&p.data).unwrap();

    // The wrong passphrase: nothing is written.
    let restore = ["restore", out.as_str()];
    let (ok, said) = admin(&p, spec, &restore, "wrong passphrase\n");
    assert!(!ok && said.contains("passphrase"), "{said}");
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(std::fs::read_dir(&p.data).unwrap().next().is_none());
    // A damaged archive: refused before anything is written.
    let damaged = p.work.join("damaged.backup");
    let mut broken = bytes.clone();
    let at = broken.len() / 3;
    broken[at] ^= 0xff;
    std::fs::write(&damaged, &broken).unwrap();
    let (ok, said) = admin(
        &p,
        spec,
        &["restore", damaged.to_str().unwrap()],
        PASSPHRASE,
    );
    assert!(!ok, "{said}");
    assert!(std::fs::read_dir(&p.data).unwrap().next().is_none());

    let (ok, said) = admin(&p, spec, &restore, &format!("{PASSPHRASE}\n"));
    assert!(ok, "{said}");
    assert!(said.contains("restored 2 namespaces"), "{said}");
    // Not twice over the same data dir.
    let (ok, said) = admin(&p, spec, &restore, &format!("{PASSPHRASE}\n"));
    assert!(!ok && said.contains("empty data dir"), "{said}");

    p.restart();
    // Each namespace runs its branch's head again: every service (re)started at it.
    let head = |i: usize| before[i][0]["revision"].as_str().unwrap().to_owned();
    for (ns, name, history) in [
        ("default", "greeter", 2),
        ("default", "second", 2),
        ("other", "web", 3),
    ] {
        p.wait_running(Some(ns), name, Some(&head(history)));
    }
    p.wait_for("the secret to reach the service again", || {
        String::from_utf8_lossy(&p.micro(&["call", "greeter", "/"]).stdout).trim() == SECRET
    });
    let after = state(&p);
    assert_eq!(after[0], before[0], "services of default");
    assert_eq!(after[1], before[1], "services of other");
    // History as it was, under what the restart's reconciles added.
    for i in [2, 3] {
        let (old, new) = (history_of(&before[i]), history_of(&after[i]));
        assert!(
            new.ends_with(&old),
            "history lost: {old:?} is not the tail of {new:?}"
        );
    }
    assert_eq!(after[4..], before[4..], "config, data, link and diff");
}

#[test]
fn a_backup_brings_the_platform_back_on_sqlite() {
    back_up_wipe_and_restore(None, false);
}

#[test]
fn a_backup_brings_the_platform_back_on_postgres() {
    let pg = TempPostgres::start();
    back_up_wipe_and_restore(Some((&pg, "restored")), true);
}
