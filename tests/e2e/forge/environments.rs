//! Preview environments: a pull request's head running in a namespace of its own, its URL
//! and state in the plan comment and a second status, gone when it closes; forks wait
//! for approval; at most `max` run at once; a preview cannot reach its parent.

use super::*;
use std::net::SocketAddr;

const DOMAIN: &str = "apps.test";

/// Answers `/` with its greeting and the config it was given, and `/steal` with the
/// status the platform API gave its own token for the parent's config.
const APP: &str = r#"import json, os, ssl, urllib.request, urllib.error, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/steal':
            req = urllib.request.Request(os.environ['MICRO_API'] + '/api/v1/namespaces/default/config',
                headers={'Authorization': 'Bearer ' + os.environ['MICRO_TOKEN']})
            try:
                code = urllib.request.urlopen(req, timeout=20).status
            except urllib.error.HTTPError as e:
                code = e.code
            except Exception as e:
                code = 'error ' + str(e)
            body = str(code).encode()
        else:
            body = json.dumps({k: v for k, v in os.environ.items()
                if k == 'GREETING' or k.startswith('MICRO_CONFIG_')}).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

const SECRET: &str = "s3cr3t-db-pass-0451";
const LISTED: &str = "sk_listed_4242";

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The greeter as `greeting`, public, reading three config keys.
fn greeter_spec(greeting: &str) -> String {
    format!(
        "run: python3 -u main.py\npublic: true\nenv:\n  GREETING: {greeting}\nconfig: [greeting.plain, db.password, stripe.key]\n"
    )
}

/// A platform with an edge, whose `default` namespace has previews on (`previews`, the
/// block under `previews:`), three config values, and lives on a forge linked with a
/// token against `recorder`; the platform, the forge, the webhook, the edge's address.
fn platform(
    recorder: &micro_testkit::Recorder,
    previews: &str,
) -> (Platform, Forge, (String, String), SocketAddr) {
    let edge = free_addr();
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
        ("MICRO_APPS_DOMAIN", DOMAIN),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", &free_addr().to_string()),
    ]);
    p.ok(&["config", "set", "greeting.plain", "hello-plain"]);
    p.ok(&["config", "set", "db.password", SECRET, "--secret"]);
    p.ok(&["config", "set", "stripe.key", LISTED, "--secret"]);
    let forge = Forge::seeded(&p, "default");
    let dir = forge.work.join("services/greeter");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("service.yaml"), greeter_spec("one")).unwrap();
    std::fs::write(dir.join("main.py"), APP).unwrap();
    std::fs::write(
        forge.work.join("micro.yaml"),
        format!("schema: 1\nnamespace: default\npreviews:\n{previews}"),
    )
    .unwrap();
    p.git_ok(&forge.work, &["add", "."]);
    p.git_ok(&forge.work, &["commit", "-qm", "greeter with previews"]);
    p.git_ok(
        &forge.work,
        &[
            "push",
            "-q",
            forge.bare.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ],
    );
    let first = head(&p, &forge.work);
    let token_file = p.work.join("token");
    std::fs::write(&token_file, "ghp_forgetoken\n").unwrap();
    let linked = link(
        &p,
        &forge,
        &[
            "--forge",
            "github",
            "--api",
            &recorder.url,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    );
    p.wait_running(None, "greeter", Some(&first));
    (p, forge, hook(&linked), edge)
}

/// Pushes the greeter saying `greeting` to the forge's `refs/pull/N/head`; the commit.
fn push_head(p: &Platform, forge: &Forge, numbers: &[u64], greeting: &str) -> String {
    let dir = forge.work.join("services/greeter");
    std::fs::write(dir.join("service.yaml"), greeter_spec(greeting)).unwrap();
    p.git_ok(&forge.work, &["commit", "-qam", greeting]);
    let sha = head(p, &forge.work);
    let mut args = vec![
        "push".to_owned(),
        "-qf".to_owned(),
        forge.bare.to_str().unwrap().to_owned(),
    ];
    args.extend(numbers.iter().map(|n| format!("HEAD:refs/pull/{n}/head")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.git_ok(&forge.work, &args);
    p.git_ok(&forge.work, &["reset", "-q", "--hard", "HEAD~1"]);
    sha
}

/// The environment of preview `name` (`#7`) as `micro previews` shows it.
fn environment(p: &Platform, name: &str) -> Option<Value> {
    let previews: Vec<Value> = serde_json::from_str(&p.ok(&["previews", "-o", "json"])).unwrap();
    previews
        .into_iter()
        .find(|v| v["name"] == name)
        .and_then(|v| v.get("environment").filter(|e| !e.is_null()).cloned())
}

fn state_of(p: &Platform, name: &str) -> String {
    environment(p, name)
        .and_then(|e| e["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Our comment on pull request `number`.
fn comment(recorder: &micro_testkit::Recorder, number: u64) -> String {
    recorder
        .comments(number)
        .into_iter()
        .find(|(_, b)| b.starts_with("<!-- micro-preview ns=default"))
        .map(|(_, b)| b)
        .unwrap_or_default()
}

/// The states of the `micro/default/preview` statuses posted for `sha`, and the last
/// one's target.
fn preview_statuses(recorder: &micro_testkit::Recorder, sha: &str) -> (Vec<String>, String) {
    let mut target = String::new();
    let states = recorder
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path.ends_with(&format!("/statuses/{sha}"))
                && r.body["context"] == "micro/default/preview"
        })
        .map(|r| {
            target = r.body["target_url"].as_str().unwrap_or_default().to_owned();
            r.body["state"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    (states, target)
}

fn visit(edge: SocketAddr, url: &str, p: &Platform) -> (u16, String) {
    let host = url
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(p.ca()).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .resolve(&host, edge)
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let res = client.get(url).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

/// GETs (or PUTs `body` to) `path` of the API with `token`; the status.
fn api(p: &Platform, token: &str, method: &str, path: &str, body: Option<Value>) -> u16 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("{}{path}", p.url());
        let client = crate::harness::client();
        let req = match method {
            "GET" => client.get(url),
            _ => client.put(url).json(&body.unwrap_or_default()),
        };
        req.bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn a_pull_request_runs_in_a_preview_of_its_own_until_it_closes() {
    let recorder = micro_testkit::Recorder::start();
    let (p, forge, (url, secret), edge) = platform(
        &recorder,
        "  enabled: true\n  max: 1\n  ttl: 72h\n  secrets: [stripe.key]\n",
    );

    // Opened: its own namespace runs the head, public as the parent's greeter is.
    let pr = push_head(&p, &forge, &[7], "two");
    let (code, text) = github(
        &url,
        &secret,
        "pull_request",
        "o-7",
        &pull_event("opened", 7, &pr),
    );
    assert_eq!(code, 202, "{text}");
    p.wait_for("preview #7 to be ready", || state_of(&p, "#7") == "ready");
    let env = environment(&p, "#7").unwrap();
    assert_eq!(env["namespace"], "default-pr-7");
    let preview_url = format!("https://greeter-default-pr-7.{DOMAIN}:{}", edge.port());
    assert_eq!(env["urls"][0], preview_url.as_str());
    let (status, body) = visit(edge, &preview_url, &p);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["GREETING"], "two");
    // Plain config is copied, a secret only when `secrets:` lists it.
    assert_eq!(seen["MICRO_CONFIG_GREETING_PLAIN"], "hello-plain");
    assert_eq!(seen["MICRO_CONFIG_STRIPE_KEY"], LISTED);
    assert!(
        seen.get("MICRO_CONFIG_DB_PASSWORD").is_none(),
        "an unlisted secret reached the preview: {body}"
    );
    // The parent still runs what it ran.
    let parent = p.service(None, "greeter").unwrap();
    assert!(
        !pr.starts_with(parent["revision"].as_str().unwrap()),
        "{parent}"
    );

    // The preview's own token cannot act on its parent.
    let (_, stolen) = visit(edge, &format!("{preview_url}/steal"), &p);
    assert_eq!(stolen, "404", "the preview's token reached the parent");

    // The comment says where it runs and until when; a second status points at it.
    p.wait_for("the comment's environment section", || {
        let c = comment(&recorder, 7);
        c.contains("**Preview environment** `default-pr-7`")
            && c.contains("**ready**")
            && c.contains(&preview_url)
            && c.contains("Expires ")
    });
    p.wait_for("the preview status", || {
        let (states, target) = preview_statuses(&recorder, &pr);
        states.last().map(String::as_str) == Some("success") && target == preview_url
    });

    // The parent's developer reads the preview (`--namespace default-pr-7`), and cannot
    // change it but through the pull request.
    let dev = developer_token(&p, "default");
    assert_eq!(
        api(
            &p,
            &dev,
            "GET",
            "/api/v1/namespaces/default-pr-7/status",
            None
        ),
        200
    );
    assert_eq!(
        api(
            &p,
            &dev,
            "PUT",
            "/api/v1/namespaces/default-pr-7/config/greeting.plain",
            Some(json!({"value": "x"}))
        ),
        409
    );
    assert_eq!(
        p.service(Some("default-pr-7"), "greeter").unwrap()["status"],
        "running"
    );
    let repo_url =
        format!("{}/git/default-pr-7.git", p.url()).replace("://", &format!("://dev:{dev}@"));
    p.git_ok(&p.work, &["clone", "-q", &repo_url, "pr7"]);
    let clone = p.work.join("pr7");
    assert!(
        std::fs::read_to_string(clone.join("services/greeter/service.yaml"))
            .unwrap()
            .contains("GREETING: two")
    );
    std::fs::write(clone.join("x"), "x").unwrap();
    p.git_ok(&clone, &["add", "x"]);
    p.git_ok(&clone, &["commit", "-qm", "x"]);
    let pushed = p.git(&clone, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    assert!(!pushed.status.success(), "a push to a preview was taken");

    // A new push rolls it.
    let pr2 = push_head(&p, &forge, &[7], "three");
    github(
        &url,
        &secret,
        "pull_request",
        "s-7",
        &pull_event("synchronize", 7, &pr2),
    );
    p.wait_for("the preview to roll", || {
        visit(edge, &preview_url, &p).1.contains("three")
    });

    // A fork's pull request is planned, never run until approved.
    let fork = push_head(&p, &forge, &[8], "forked");
    let mut opened = pull_event("opened", 8, &fork);
    opened["pull_request"]["head"]["repo"] = json!({"id": 2, "full_name": "mallory/app"});
    opened["pull_request"]["base"]["repo"] = json!({"id": 1, "full_name": "work/default"});
    github(&url, &secret, "pull_request", "o-8", &opened);
    p.wait_for("the fork's comment", || {
        let c = comment(&recorder, 8);
        c.contains("to update") && c.contains("comes from a fork")
    });
    assert_eq!(state_of(&p, "#8"), "approval");
    let err = p.fails(&["status", "--namespace", "default-pr-8"]);
    assert!(err.contains("not found"), "{err}");

    // Approved while #7 holds the only place: it waits, and says so.
    p.ok(&["previews", "approve", "8"]);
    assert_eq!(state_of(&p, "#8"), "waiting");
    p.wait_for("the waiting comment", || {
        comment(&recorder, 8).contains("Waiting: 1 previews are open")
    });

    // #7 closes: everything of it goes, and #8 starts in its place.
    let repo = p.data.join("repos/default-pr-7.git");
    assert!(repo.exists());
    let closed = pull_event("closed", 7, &pr2);
    github(&url, &secret, "pull_request", "c-7", &closed);
    p.wait_for("#7's namespace to go", || {
        !p.micro(&["status", "--namespace", "default-pr-7"])
            .status
            .success()
            && !repo.exists()
    });
    p.wait_for("#7's comment to say it was removed", || {
        comment(&recorder, 7).contains("removed (the pull request closed)")
    });
    p.wait_for("#7's host to stop routing", || {
        visit(edge, &preview_url, &p).0 == 404
    });
    p.wait_for("#8 to run", || state_of(&p, "#8") == "ready");
    let forked_url = format!("https://greeter-default-pr-8.{DOMAIN}:{}", edge.port());
    assert!(visit(edge, &forked_url, &p).1.contains("forked"));

    // Never a secret value in what the forge was told.
    for r in recorder.requests() {
        let text = r.body.to_string();
        assert!(!text.contains(SECRET) && !text.contains(LISTED), "{r:?}");
    }
}

#[test]
fn fifty_pull_requests_at_once_run_at_most_max_and_the_rest_wait() {
    let recorder = micro_testkit::Recorder::start();
    let (p, forge, (url, secret), _) = platform(&recorder, "  enabled: true\n  max: 2\n");
    let numbers: Vec<u64> = (100..150).collect();
    let sha = push_head(&p, &forge, &numbers, "many");
    std::thread::scope(|s| {
        for n in &numbers {
            let (url, secret, sha) = (&url, &secret, &sha);
            s.spawn(move || {
                let (code, text) = github(
                    url,
                    secret,
                    "pull_request",
                    &format!("o-{n}"),
                    &pull_event("opened", *n, sha),
                );
                assert_eq!(code, 202, "{text}");
            });
        }
    });
    p.wait_for("every comment's environment section", || {
        numbers
            .iter()
            .all(|n| comment(&recorder, *n).contains("**Preview environment**"))
    });
    let previews: Vec<Value> = serde_json::from_str(&p.ok(&["previews", "-o", "json"])).unwrap();
    let states: Vec<String> = previews
        .iter()
        .filter_map(|v| v["environment"]["state"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(states.len(), 50, "{states:?}");
    assert_eq!(
        states.iter().filter(|s| *s == "waiting").count(),
        48,
        "{states:?}"
    );
    let list: Value =
        serde_json::from_str(&p.ok(&["admin", "namespace", "list", "-o", "json"])).unwrap();
    let running: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["namespace"].as_str().unwrap().starts_with("default-pr-"))
        .collect();
    assert_eq!(running.len(), 2, "{list}");
    // Each under the previews class: at most 10 services of one replica each.
    assert!(
        running.iter().all(|q| q["replicas"] == q["services"]),
        "{list}"
    );
    let waiting = numbers
        .iter()
        .filter(|n| comment(&recorder, **n).contains("Waiting: 2 previews are open"))
        .count();
    assert_eq!(waiting, 48);
}

#[test]
fn a_branch_pushed_to_the_platform_runs_as_a_preview_and_goes_with_it_or_when_idle() {
    let edge = free_addr();
    let p = Platform::start_with(&[
        ("MICRO_APPS_DOMAIN", DOMAIN),
        ("MICRO_EDGE_ADDRESS", &edge.to_string()),
        ("MICRO_EDGE_HTTP_ADDRESS", &free_addr().to_string()),
    ]);
    p.ok(&["config", "set", "greeting.plain", "hello-plain"]);
    p.ok(&["config", "set", "db.password", SECRET, "--secret"]);
    p.ok(&["config", "set", "stripe.key", LISTED, "--secret"]);
    p.ok(&["clone", "default"]);
    let work = p.work.join("default");
    let dir = work.join("services/greeter");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("service.yaml"), greeter_spec("main")).unwrap();
    std::fs::write(dir.join("main.py"), APP).unwrap();
    std::fs::write(
        work.join("micro.yaml"),
        "schema: 1\nnamespace: default\npreviews:\n  enabled: true\n  ttl: 1m\n  config: empty\n",
    )
    .unwrap();
    p.git_ok(&work, &["add", "."]);
    p.git_ok(&work, &["commit", "-qm", "greeter"]);
    p.git_ok(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    p.wait_running(None, "greeter", None);

    // A branch: its own namespace, named after it, with no config (`config: empty`).
    std::fs::write(dir.join("service.yaml"), greeter_spec("login")).unwrap();
    p.git_ok(&work, &["commit", "-qam", "login page"]);
    p.git_ok(
        &work,
        &["push", "-q", "origin", "HEAD:refs/heads/feature/Login"],
    );
    p.wait_for("the branch's preview", || {
        state_of(&p, "feature/Login") == "ready"
    });
    let env = environment(&p, "feature/Login").unwrap();
    assert_eq!(env["namespace"], "default-br-feature-login");
    let url = format!(
        "https://greeter-default-br-feature-login.{DOMAIN}:{}",
        edge.port()
    );
    let seen: Value = serde_json::from_str(&visit(edge, &url, &p).1).unwrap();
    assert_eq!(seen["GREETING"], "login");
    assert!(seen.get("MICRO_CONFIG_GREETING_PLAIN").is_none(), "{seen}");
    assert!(seen.get("MICRO_CONFIG_STRIPE_KEY").is_none(), "{seen}");
    assert!(p.ok(&["previews"]).contains(&url));
    let logs = p.ok(&["previews", "logs", "feature/Login", "greeter"]);
    assert!(logs.contains("GET /"), "{logs}");

    // A second branch, deleted: its preview goes with it.
    p.git_ok(
        &work,
        &["push", "-q", "origin", "HEAD:refs/heads/short-lived"],
    );
    p.wait_for("the second preview", || {
        state_of(&p, "short-lived") == "ready"
    });
    p.git_ok(&work, &["push", "-q", "origin", ":refs/heads/short-lived"]);
    p.wait_for("the deleted branch's preview to go", || {
        !p.micro(&["status", "--namespace", "default-br-short-lived"])
            .status
            .success()
    });

    // Idle past its TTL (a minute without a push): gone, whole.
    p.wait_for("the idle preview to expire", || {
        !p.micro(&["status", "--namespace", "default-br-feature-login"])
            .status
            .success()
    });
    assert!(environment(&p, "feature/Login").is_none());
    assert!(!p.data.join("repos/default-br-feature-login.git").exists());
    p.wait_for("its host to stop routing", || {
        visit(edge, &url, &p).0 == 404
    });
    // The parent runs on.
    p.wait_running(None, "greeter", None);
}

#[test]
fn a_failing_preview_shows_its_last_lines_with_secrets_masked_and_is_deleted_on_demand() {
    let recorder = micro_testkit::Recorder::start();
    let (p, forge, (url, secret), edge) =
        platform(&recorder, "  enabled: true\n  secrets: [stripe.key]\n");
    // The admin's previews class: what every preview runs under.
    let class: Value =
        serde_json::from_str(&p.ok(&["admin", "quota", "--previews", "services=4", "-o", "json"]))
            .unwrap();
    assert_eq!(class["services"], 4);
    let err = p.fails(&["admin", "quota", "--previews", "services=lots"]);
    assert!(err.contains("services"), "{err}");

    // A head whose service prints a copied secret and exits.
    let dir = forge.work.join("services/greeter");
    std::fs::write(
        dir.join("service.yaml"),
        "run: python3 -u crash.py\npublic: true\nconfig: [stripe.key]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("crash.py"),
        "import os, sys\nprint('starting with key', os.environ['MICRO_CONFIG_STRIPE_KEY'])\nsys.exit(3)\n",
    )
    .unwrap();
    p.git_ok(&forge.work, &["add", "."]);
    p.git_ok(&forge.work, &["commit", "-qm", "crash"]);
    let sha = head(&p, &forge.work);
    p.git_ok(
        &forge.work,
        &[
            "push",
            "-qf",
            forge.bare.to_str().unwrap(),
            "HEAD:refs/pull/9/head",
        ],
    );
    github(
        &url,
        &secret,
        "pull_request",
        "o-9",
        &pull_event("opened", 9, &sha),
    );
    p.wait_for("the failure in the comment", || {
        let c = comment(&recorder, 9);
        c.contains("**failed**") && c.contains("starting with key ••••")
    });
    assert!(!comment(&recorder, 9).contains(LISTED));
    p.wait_for("the failed preview status", || {
        preview_statuses(&recorder, &sha)
            .0
            .last()
            .map(String::as_str)
            == Some("failure")
    });
    let listed = p.ok(&["previews"]);
    assert!(listed.contains("failed"), "{listed}");
    assert!(!listed.contains(LISTED), "{listed}");
    let quota = micro_tenant::marks::quota(&p.data.join("repos/default-pr-9.git"));
    assert_eq!(quota.services, 4);

    // `open` prints where it is; `delete` removes it whole, now.
    assert_eq!(
        p.ok(&["previews", "open", "9", "--print"]).trim(),
        format!("https://greeter-default-pr-9.{DOMAIN}:{}", edge.port())
    );
    let said = p.fails(&["previews", "open", "10"]);
    assert!(said.contains("no preview 10"), "{said}");
    p.ok(&["previews", "delete", "9"]);
    assert!(
        !p.micro(&["status", "--namespace", "default-pr-9"])
            .status
            .success()
    );
    assert!(environment(&p, "#9").is_none());
    let said = p.fails(&["previews", "delete", "9"]);
    assert!(said.contains("not found"), "{said}");
}
