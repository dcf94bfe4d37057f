//! A namespace linked to a repo on a forge, the forge stood in for by a local bare repo
//! (`file://`) and signed deliveries sent the way GitHub, Gitea and GitLab send them.

use crate::harness::Platform;
use crate::isolation::developer_token;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(os.environ['GREETING'].encode())\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

/// A forge's repo (bare, reached by `file://`) and a working clone of it.
struct Forge {
    bare: PathBuf,
    work: PathBuf,
}

impl Forge {
    /// Seeded with the namespace's own repo, as a user moving it to a forge would.
    fn seeded(p: &Platform, name: &str) -> Forge {
        let bare = p.work.join(format!("{name}.git"));
        let work = p.work.join(name);
        p.ok(&["clone", name]);
        p.git_ok(&p.work, &["init", "-q", "--bare", bare.to_str().unwrap()]);
        p.git_ok(
            &work,
            &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
        );
        Forge { bare, work }
    }

    fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Commits `greeting` as the greeter service and pushes it; the new head.
    fn push_greeter(&self, p: &Platform, greeting: &str) -> String {
        let dir = self.work.join("services/greeter");
        std::fs::create_dir_all(&dir).unwrap();
        let spec = format!("run: python3 -u main.py\nenv:\n  GREETING: {greeting}\n");
        std::fs::write(dir.join("service.yaml"), spec).unwrap();
        std::fs::write(dir.join("main.py"), APP).unwrap();
        p.git_ok(&self.work, &["add", "."]);
        p.git_ok(&self.work, &["commit", "-qm", greeting]);
        p.git_ok(
            &self.work,
            &[
                "push",
                "-q",
                self.bare.to_str().unwrap(),
                "HEAD:refs/heads/main",
            ],
        );
        head(p, &self.work)
    }
}

fn head(p: &Platform, dir: &Path) -> String {
    p.git_ok(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

fn push_event(after: &str) -> Value {
    json!({"ref": "refs/heads/main", "before": "0".repeat(40), "after": after, "deleted": false,
           "repository": {"full_name": "acme/app"}})
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs `body` to `url` with `headers`; the status and the answer.
fn post(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().post(url).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

/// A delivery signed the way GitHub signs it.
fn github(url: &str, secret: &str, event: &str, delivery: &str, body: &Value) -> (u16, String) {
    let body = body.to_string().into_bytes();
    let headers = [
        ("x-github-event", event.to_owned()),
        ("x-github-delivery", delivery.to_owned()),
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex(secret, &body)),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    post(url, &headers, body)
}

fn show(p: &Platform, ns: Option<&str>) -> Value {
    let mut args = vec!["repo", "show", "-o", "json"];
    if let Some(ns) = ns {
        args.extend(["--namespace", ns]);
    }
    serde_json::from_str(&p.ok(&args)).unwrap()
}

fn call(p: &Platform) -> String {
    p.ok(&["call", "greeter", "/"]).trim().to_owned()
}

#[test]
fn a_linked_namespace_runs_what_signed_pushes_on_its_forge_say() {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");

    let linked: Value = serde_json::from_str(&p.ok(&[
        "repo",
        "link",
        &forge.url(),
        "--forge",
        "github",
        "-o",
        "json",
    ]))
    .unwrap();
    let (url, secret) = (
        linked["webhook_url"].as_str().unwrap().to_owned(),
        linked["webhook_secret"].as_str().unwrap().to_owned(),
    );
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{}/hooks/", p.port)),
        "{url}"
    );
    assert!(
        !url.contains("default"),
        "the URL does not name the namespace: {url}"
    );
    assert_eq!(secret.len(), 64);
    // Linking fetches at once: the forge's head runs.
    p.wait_running(None, "greeter", Some(&first));
    assert_eq!(call(&p), "one");
    let shown = show(&p, None);
    assert_eq!(shown["fetched_revision"], first.as_str());
    assert!(
        !shown.to_string().contains(&secret),
        "the secret is shown once"
    );
    assert!(p.ok(&["repo", "show"]).contains("Branch:    main"));

    // The platform-hosted copy no longer takes pushes: they belong on the forge.
    let clone = p.work.join("default");
    std::fs::write(clone.join("README.md"), "changed here").unwrap();
    p.git_ok(&clone, &["commit", "-qam", "here"]);
    let out = p.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("this namespace follows"),
        "{said}"
    );

    // A signed push event: the new revision runs.
    let second = forge.push_greeter(&p, "two");
    let (status, text) = github(&url, &secret, "push", "d-1", &push_event(&second));
    assert_eq!(status, 202, "{text}");
    p.wait_running(None, "greeter", Some(&second));
    assert_eq!(call(&p), "two");
    p.wait_for("the delivery in repo show", || {
        show(&p, None)["last_delivery"]["result"]
            .as_str()
            .is_some_and(|r| r.contains("fetching"))
    });

    // A replayed delivery, a bad signature, a missing one: nothing is fetched.
    let third = forge.push_greeter(&p, "three");
    let (status, text) = github(&url, &secret, "push", "d-1", &push_event(&third));
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("seen before"), "{text}");
    let (status, _) = github(&url, "not-the-secret", "push", "d-2", &push_event(&third));
    assert_eq!(status, 401);
    let unsigned = [("x-github-event", "push".to_owned())];
    let (status, _) = post(&url, &unsigned, push_event(&third).to_string().into_bytes());
    assert_eq!(status, 401);
    // A ping, an event we ignore, and a push to another branch answer 2xx too.
    assert_eq!(
        github(&url, &secret, "ping", "d-3", &json!({"zen": "hi"})).0,
        202
    );
    assert_eq!(
        github(&url, &secret, "issues", "d-4", &json!({"action": "opened"})).0,
        202
    );
    let other = json!({"ref": "refs/heads/dev", "after": third});
    assert_eq!(github(&url, &secret, "push", "d-5", &other).0, 202);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(show(&p, None)["fetched_revision"], second.as_str());
    assert_eq!(call(&p), "two");

    // Not JSON (but signed): 400. Over the limit: 413. No such link: 404.
    let junk = b"{not json".to_vec();
    let headers = [
        ("x-github-event", "push".to_owned()),
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex(&secret, &junk)),
        ),
    ];
    assert_eq!(post(&url, &headers, junk).0, 400);
    assert_eq!(post(&url, &unsigned, vec![b' '; 5 << 20]).0, 413);
    let missing = format!("http://127.0.0.1:{}/hooks/0123456789abcdef", p.port);
    assert_eq!(
        github(&missing, &secret, "push", "d-6", &push_event(&third)).0,
        404
    );

    // The same push, now validly signed, runs.
    assert_eq!(
        github(&url, &secret, "push", "d-7", &push_event(&third)).0,
        202
    );
    p.wait_running(None, "greeter", Some(&third));
    assert_eq!(call(&p), "three");
}

#[test]
fn gitea_and_gitlab_deliveries_are_checked_their_own_way() {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    let linked: Value = serde_json::from_str(&p.ok(&[
        "repo",
        "link",
        &forge.url(),
        "--forge",
        "gitea",
        "-o",
        "json",
    ]))
    .unwrap();
    let (url, secret) = (
        linked["webhook_url"].as_str().unwrap().to_owned(),
        linked["webhook_secret"].as_str().unwrap().to_owned(),
    );
    p.wait_running(None, "greeter", Some(&first));

    // Gitea signs with a bare hex HMAC and also sends GitHub's headers (unsigned ones).
    let second = forge.push_greeter(&p, "two");
    let body = push_event(&second).to_string().into_bytes();
    let gitea = |signature: String, delivery: &str| {
        vec![
            ("x-gitea-event", "push".to_owned()),
            ("x-gitea-delivery", delivery.to_owned()),
            ("x-gitea-signature", signature),
            ("x-github-event", "push".to_owned()),
            ("x-hub-signature-256", "sha256=00".to_owned()),
        ]
    };
    assert_eq!(
        post(&url, &gitea(hmac_hex("wrong", &body), "g-1"), body.clone()).0,
        401
    );
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(
        post(&url, &gitea(hmac_hex(&secret, &body), "g-2"), tampered).0,
        401
    );
    assert_eq!(
        post(&url, &gitea(hmac_hex(&secret, &body), "g-3"), body).0,
        202
    );
    p.wait_running(None, "greeter", Some(&second));

    // GitLab sends the secret itself as its token.
    let third = forge.push_greeter(&p, "three");
    let body = json!({"object_kind": "push", "ref": "refs/heads/main", "after": third,
                      "checkout_sha": third})
    .to_string()
    .into_bytes();
    let gitlab = |token: &str| {
        vec![
            ("x-gitlab-event", "Push Hook".to_owned()),
            ("idempotency-key", format!("k-{token}")),
            ("x-gitlab-token", token.to_owned()),
        ]
    };
    assert_eq!(post(&url, &gitlab("wrong"), body.clone()).0, 401);
    assert_eq!(post(&url, &gitlab(&secret), body).0, 202);
    p.wait_running(None, "greeter", Some(&third));
}

#[test]
fn a_fetch_that_fails_is_shown_and_keeps_what_runs() {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    p.ok(&["repo", "link", &forge.url(), "--forge", "github"]);
    p.wait_running(None, "greeter", Some(&first));

    // The forge's repo goes away: the link says why, history records it once, and the
    // service keeps running.
    std::fs::remove_dir_all(&forge.bare).unwrap();
    p.ok(&["repo", "unlink"]);
    p.ok(&["repo", "link", &forge.url(), "--forge", "github"]);
    p.wait_for("the fetch error", || {
        show(&p, None)["fetch_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot fetch") && e.contains("what runs stays"))
    });
    let history: Vec<Value> = serde_json::from_str(&p.ok(&["history", "-o", "json"])).unwrap();
    assert!(
        history.iter().any(|h| h["result"] == "failed"
            && h["triggers"].to_string().contains("fetch")
            && h["error"]
                .as_str()
                .is_some_and(|e| e.contains("cannot fetch"))),
        "{history:?}"
    );
    assert_eq!(call(&p), "one");
    assert!(p.ok(&["repo", "show"]).contains("Error:"));
    let out = p.micro(&["status"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("warning: cannot fetch"), "{said}");

    // Unlinked, the platform-hosted repo takes pushes again.
    p.ok(&["repo", "unlink"]);
    assert!(p.ok(&["repo", "show"]).contains("not linked"));
    p.fails(&["repo", "unlink"]);
}

#[test]
fn a_tenant_cannot_see_use_or_aim_a_link_at_what_is_not_theirs() {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    p.ok(&["admin", "namespace", "create", "other"]);
    let forge = Forge::seeded(&p, "default");
    forge.push_greeter(&p, "one");
    let mine: Value = serde_json::from_str(&p.ok(&[
        "repo",
        "link",
        &forge.url(),
        "--forge",
        "github",
        "-o",
        "json",
    ]))
    .unwrap();

    // A developer of `other` gets 404 for our link, as for a namespace that is not there.
    let token = developer_token(&p, "other");
    let api = |method: reqwest::Method, ns: &str, body: Option<Value>| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut req = reqwest::Client::new()
                .request(
                    method,
                    format!("http://127.0.0.1:{}/api/v1/namespaces/{ns}/link", p.port),
                )
                .bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        })
    };
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, text) = api(method, "default", None);
        assert_eq!(status, 404, "{text}");
        assert!(!text.contains("file://"), "{text}");
    }
    let (status, _) = api(
        reqwest::Method::PUT,
        "default",
        Some(json!({"url": "https://github.com/x/y"})),
    );
    assert_eq!(status, 404);

    // `other` may link itself, but never at the platform's own files (another tenant's
    // repo), and its secret does not sign deliveries for our endpoint.
    let data_repo = format!("file://{}", p.data.join("repos/default.git").display());
    let (status, text) = api(
        reqwest::Method::PUT,
        "other",
        Some(json!({"url": data_repo, "forge": "gitea"})),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("never a source"), "{text}");
    let (status, text) = api(
        reqwest::Method::PUT,
        "other",
        Some(json!({"url": forge.url(), "forge": "gitea"})),
    );
    assert_eq!(status, 200, "{text}");
    let theirs: Value = serde_json::from_str(&text).unwrap();
    let url = mine["webhook_url"].as_str().unwrap();
    let (status, _) = github(
        url,
        theirs["webhook_secret"].as_str().unwrap(),
        "push",
        "x",
        &push_event("a"),
    );
    assert_eq!(status, 401);
    // A flood of signed pull-request events (the tenant holds its own secret) makes about
    // 200 previews (one more per fetch worker racing the count), not 205: rows and refs
    // stay bounded.
    let theirs_url = theirs["webhook_url"].as_str().unwrap();
    let theirs_secret = theirs["webhook_secret"].as_str().unwrap();
    for n in 1..=205u64 {
        let event = json!({"action": "opened", "number": n, "pull_request": {"number": n,
            "head": {"sha": format!("{n:040x}")}, "base": {"ref": "main"}}});
        let body = event.to_string().into_bytes();
        let headers = [
            ("x-gitea-event", "pull_request".to_owned()),
            ("x-gitea-delivery", format!("flood-{n}")),
            ("x-gitea-signature", hmac_hex(theirs_secret, &body)),
        ];
        assert_eq!(post(theirs_url, &headers, body).0, 202);
    }
    let count = || -> usize {
        let out = p
            .command(&["previews", "-o", "json", "--namespace", "other"])
            .output()
            .unwrap();
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .unwrap()
            .len()
    };
    p.wait_for("the previews of the flood", || count() >= 200);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let made = count();
    assert!((200..=202).contains(&made), "{made}");

    // A URL with credentials in it is refused (they belong in --token-file).
    let err = p.fails(&["repo", "link", "https://me:pw@github.com/a/b"]);
    assert!(err.contains("credentials"), "{err}");
}

#[test]
fn without_allow_local_sources_a_local_repo_cannot_be_linked() {
    let p = Platform::start();
    let err = p.fails(&["repo", "link", "file:///tmp/x.git", "--forge", "gitea"]);
    assert!(err.contains("not allowed"), "{err}");
    let err = p.fails(&[
        "repo",
        "link",
        "http://127.0.0.1:1/x.git",
        "--forge",
        "gitea",
    ]);
    assert!(err.contains("not allowed"), "{err}");
    let err = p.fails(&["repo", "link", "https://git.example.com/x.git"]);
    assert!(err.contains("--forge"), "{err}");
    // The forge's API is called from inside the platform's network: the same rule.
    let err = p.fails(&[
        "repo",
        "link",
        "https://1.1.1.1/a/b.git",
        "--forge",
        "github",
        "--api",
        "http://127.0.0.1:9",
    ]);
    assert!(err.contains("not allowed"), "{err}");
    assert!(p.ok(&["repo", "show"]).contains("not linked"));
}

#[test]
fn a_linked_repo_over_the_namespaces_size_quota_is_not_taken() {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    p.ok(&["admin", "quota", "default", "repo-size=1Mi"]);
    let linked: Value = serde_json::from_str(&p.ok(&[
        "repo",
        "link",
        &forge.url(),
        "--forge",
        "github",
        "-o",
        "json",
    ]))
    .unwrap();
    p.wait_running(None, "greeter", Some(&first));

    // 3 MiB that does not compress: more than the namespace may hold.
    let mut noise = vec![0u8; 3 << 20];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut noise,
    )
    .unwrap();
    std::fs::write(forge.work.join("services/greeter/blob.bin"), noise).unwrap();
    let big = forge.push_greeter(&p, "big");
    let (url, secret) = (
        linked["webhook_url"].as_str().unwrap(),
        linked["webhook_secret"].as_str().unwrap(),
    );
    assert_eq!(github(url, secret, "push", "q-1", &push_event(&big)).0, 202);
    p.wait_for("the quota refusal", || {
        show(&p, None)["fetch_error"]
            .as_str()
            .is_some_and(|e| e.contains("repo size"))
    });
    assert_eq!(show(&p, None)["fetched_revision"], first.as_str());
    assert_eq!(call(&p), "one");
}

const PLANTED: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";

/// Pushes `greeting` (and a planted credential in env) to the forge's `refs/pull/N/head`,
/// as GitHub keeps a pull request's head; the commit.
fn push_pull(p: &Platform, forge: &Forge, number: u64, greeting: &str, spec_extra: &str) -> String {
    let dir = forge.work.join("services/greeter");
    let spec = format!(
        "run: python3 -u main.py\nenv:\n  GREETING: {greeting}\n  API_TOKEN: {PLANTED}\n{spec_extra}"
    );
    std::fs::write(dir.join("service.yaml"), spec).unwrap();
    p.git_ok(&forge.work, &["commit", "-qam", greeting]);
    let sha = head(p, &forge.work);
    let target = format!("HEAD:refs/pull/{number}/head");
    p.git_ok(
        &forge.work,
        &["push", "-qf", forge.bare.to_str().unwrap(), &target],
    );
    p.git_ok(&forge.work, &["reset", "-q", "--hard", "HEAD~1"]);
    sha
}

fn pull_event(action: &str, number: u64, head: &str) -> Value {
    json!({"action": action, "number": number, "pull_request": {"number": number,
        "head": {"sha": head, "ref": "feature"}, "base": {"ref": "main"},
        "merged": false, "merge_commit_sha": null}})
}

fn statuses(recorder: &micro_webhooks::testing::Recorder, sha: &str) -> Vec<String> {
    recorder
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/statuses/{sha}")))
        .map(|r| r.body["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn pull_requests_get_one_preview_comment_kept_up_to_date_and_statuses() {
    let recorder = micro_webhooks::testing::Recorder::start();
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    let token_file = p.work.join("token");
    std::fs::write(&token_file, "ghp_forgetoken\n").unwrap();
    let linked: Value = serde_json::from_str(&p.ok(&[
        "repo",
        "link",
        &forge.url(),
        "--forge",
        "github",
        "--api",
        &recorder.url,
        "--token-file",
        token_file.to_str().unwrap(),
        "-o",
        "json",
    ]))
    .unwrap();
    let (url, secret) = (
        linked["webhook_url"].as_str().unwrap().to_owned(),
        linked["webhook_secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(linked["has_token"], true);
    assert!(!p.ok(&["repo", "show", "-o", "json"]).contains("forgetoken"));
    p.wait_running(None, "greeter", Some(&first));

    // The followed revision: pending when taken up, success once applied, on the
    // namespace's own context, with the token the forge expects.
    p.wait_for("the branch's statuses", || {
        statuses(&recorder, &first) == ["pending", "success"]
    });
    let status = recorder
        .requests()
        .into_iter()
        .find(|r| r.path.contains("/statuses/"))
        .unwrap();
    assert_eq!(
        status.path,
        format!("/repos/work/default.git/statuses/{first}").replace(".git", "")
    );
    assert_eq!(status.body["context"], "micro/default");
    assert_eq!(status.credential, "Bearer ghp_forgetoken");
    let page = status.body["target_url"].as_str().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let html = rt.block_on(async { reqwest::get(&page).await.unwrap().text().await.unwrap() });
    assert!(html.contains("applied") && html.contains(&first), "{html}");

    // Others have talked a lot on the pull request: ours is found beyond the first page.
    recorder.seed(7, 150);
    let pr_head = push_pull(&p, &forge, 7, "two", "");
    let (code, text) = github(
        &url,
        &secret,
        "pull_request",
        "pr-1",
        &pull_event("opened", 7, &pr_head),
    );
    assert_eq!(code, 202, "{text}");
    let ours = |recorder: &micro_webhooks::testing::Recorder| -> Vec<(u64, String)> {
        recorder
            .comments(7)
            .into_iter()
            .filter(|(_, b)| b.starts_with("<!-- micro-preview ns=default"))
            .collect()
    };
    p.wait_for("the preview comment", || ours(&recorder).len() == 1);
    let (id, body) = ours(&recorder).remove(0);
    assert!(
        body.contains("**0 to create, 1 to update, 0 to delete**"),
        "{body}"
    );
    assert!(body.contains("`env.GREETING`: `one` → `two`"), "{body}");
    assert!(
        body.contains(&pr_head) && body.contains("micro diff --pr 7"),
        "{body}"
    );
    p.wait_for("the pull request's statuses", || {
        statuses(&recorder, &pr_head) == ["pending", "success"]
    });

    // `micro previews` and `micro diff --pr` show it; what runs did not change.
    let previews: Vec<Value> = serde_json::from_str(&p.ok(&["previews", "-o", "json"])).unwrap();
    assert_eq!(previews.len(), 1, "{previews:?}");
    assert_eq!(previews[0]["name"], "#7");
    assert_eq!(previews[0]["status"], "planned");
    let out = p.command(&["diff", "--pr", "7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("env.GREETING: one → two"));
    assert_eq!(call(&p), "one");

    // A second push to the pull request edits the same comment in place.
    let pr_head2 = push_pull(&p, &forge, 7, "three", "");
    assert_eq!(
        github(
            &url,
            &secret,
            "pull_request",
            "pr-2",
            &pull_event("synchronize", 7, &pr_head2)
        )
        .0,
        202
    );
    p.wait_for("the edited comment", || {
        ours(&recorder)
            .first()
            .is_some_and(|(_, b)| b.contains(&pr_head2))
    });
    let now = ours(&recorder);
    assert_eq!(now.len(), 1, "no second comment");
    assert_eq!(now[0].0, id, "the same comment");
    assert!(
        recorder
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with(&format!("/issues/comments/{id}")))
    );
    // A replayed delivery does nothing new.
    let before = recorder.requests().len();
    let (code, text) = github(
        &url,
        &secret,
        "pull_request",
        "pr-2",
        &pull_event("synchronize", 7, &pr_head2),
    );
    assert_eq!(code, 200, "{text}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(recorder.requests().len(), before);

    // A head that does not validate: the preview says where, the status fails.
    let bad = push_pull(&p, &forge, 8, "four", "prot: 80\n");
    assert_eq!(
        github(
            &url,
            &secret,
            "pull_request",
            "pr-3",
            &pull_event("opened", 8, &bad)
        )
        .0,
        202
    );
    p.wait_for("the failure status", || {
        statuses(&recorder, &bad) == ["pending", "failure"]
    });
    let body = recorder.comments(8).remove(0).1;
    assert!(
        body.contains("does not validate") && body.contains("services/greeter/service.yaml:"),
        "{body}"
    );

    // Never a secret, in any comment or status.
    for r in recorder.requests() {
        assert!(!r.body.to_string().contains(PLANTED), "{r:?}");
    }

    // Merged (fast-forward) and pushed: it runs, and history names the pull request.
    p.git_ok(
        &forge.work,
        &[
            "fetch",
            "-q",
            forge.bare.to_str().unwrap(),
            "refs/pull/7/head",
        ],
    );
    p.git_ok(&forge.work, &["reset", "-q", "--hard", "FETCH_HEAD"]);
    p.git_ok(
        &forge.work,
        &[
            "push",
            "-q",
            forge.bare.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ],
    );
    assert_eq!(
        github(&url, &secret, "push", "m-1", &push_event(&pr_head2)).0,
        202
    );
    p.wait_running(None, "greeter", Some(&pr_head2));
    assert_eq!(call(&p), "three");
    p.wait_for("the merge note", || {
        let history: Vec<Value> = serde_json::from_str(&p.ok(&["history", "-o", "json"])).unwrap();
        history.iter().any(|h| {
            h["revision"] == pr_head2.as_str()
                && h["note"]
                    .as_str()
                    .is_some_and(|n| n == "merged #7: applied what its preview showed")
        })
    });
    let mut closed = pull_event("closed", 7, &pr_head2);
    closed["pull_request"]["merged"] = json!(true);
    closed["pull_request"]["merge_commit_sha"] = json!(pr_head2);
    assert_eq!(
        github(&url, &secret, "pull_request", "pr-4", &closed).0,
        202
    );
    p.wait_for("the merged preview to go", || {
        let previews: Vec<Value> =
            serde_json::from_str(&p.ok(&["previews", "-o", "json"])).unwrap();
        previews.iter().all(|v| v["name"] != "#7")
    });
}

#[test]
fn a_platform_hosted_branch_is_previewed_too() {
    let p = Platform::start();
    p.ok(&["clone", "default"]);
    let repo = p.work.join("default");
    p.git_ok(&repo, &["checkout", "-qb", "feature"]);
    std::fs::create_dir_all(repo.join("services/greeter")).unwrap();
    std::fs::write(
        repo.join("services/greeter/service.yaml"),
        "run: python3 -u main.py\nenv:\n  GREETING: hi\n",
    )
    .unwrap();
    std::fs::write(repo.join("services/greeter/main.py"), APP).unwrap();
    p.git_ok(&repo, &["add", "."]);
    p.git_ok(&repo, &["commit", "-qm", "greeter"]);
    p.git_ok(&repo, &["push", "-q", "origin", "feature"]);
    let previews: Vec<Value> = serde_json::from_str(&p.ok(&["previews", "-o", "json"])).unwrap();
    assert_eq!(previews.len(), 1, "{previews:?}");
    assert_eq!(previews[0]["name"], "feature");
    assert_eq!(
        previews[0]["summary"],
        "1 to create, 0 to update, 0 to delete, 0 unchanged"
    );
    let text = p.ok(&["previews"]);
    assert!(
        text.contains("feature") && text.contains("planned"),
        "{text}"
    );
    assert!(p.status(None).is_empty(), "nothing runs from a branch");
}

#[test]
fn write_verbs_in_a_linked_namespace_commit_to_the_forge() {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    p.ok(&["repo", "link", &forge.url(), "--forge", "gitea"]);
    p.wait_running(None, "greeter", Some(&first));

    // `scale` commits to the forge's branch with the user's git; the platform is told
    // to fetch at once and the new revision rolls out.
    p.ok(&["scale", "greeter", "2", "--wait"]);
    let on_forge = p.git_ok(&forge.bare, &["show", "main:services/greeter/service.yaml"]);
    assert!(on_forge.contains("replicas: 2"), "{on_forge}");
    let s = p.service(None, "greeter").unwrap();
    assert_eq!(s["desired"], 2, "{s}");

    // `--branch` makes a branch for a pull request instead; nothing runs from it.
    p.write_service(
        "web",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nenv:\n  GREETING: web\n",
            ),
            ("main.py", APP),
        ],
    );
    let out = p.micro(&["run", "./web", "--branch", "add-web"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("pushed to branch add-web") && said.contains("pull request"),
        "{said}"
    );
    let listed = p.git_ok(&forge.bare, &["ls-tree", "-r", "--name-only", "add-web"]);
    assert!(listed.contains("services/web/service.yaml"), "{listed}");
    assert!(
        !p.git_ok(&forge.bare, &["ls-tree", "-r", "--name-only", "main"])
            .contains("services/web")
    );
    assert!(p.service(None, "web").is_none());
    // The same branch again, with other commits on it: refused, said plainly.
    let err = p.fails(&["kill", "greeter", "--branch", "add-web"]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn a_branch_of_a_platform_hosted_repo_from_a_write_verb_is_a_preview() {
    let p = Platform::start();
    p.write_service(
        "web",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nenv:\n  GREETING: web\n",
            ),
            ("main.py", APP),
        ],
    );
    p.ok(&["run", "./web", "--wait"]);
    let out = p.micro(&["kill", "web", "--branch", "drop-web"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("micro diff drop-web"),
        "{said}"
    );
    let previews: Vec<Value> = serde_json::from_str(&p.ok(&["previews", "-o", "json"])).unwrap();
    assert_eq!(previews[0]["name"], "drop-web");
    assert!(
        previews[0]["summary"]
            .as_str()
            .unwrap()
            .contains("1 to delete"),
        "{previews:?}"
    );
    p.wait_running(None, "web", None);
}

#[test]
fn gitlab_merge_requests_get_their_preview_as_a_note_edited_in_place() {
    let recorder = micro_webhooks::testing::Recorder::start();
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    let token_file = p.work.join("token");
    std::fs::write(&token_file, "glpat-forgetoken").unwrap();
    let linked: Value = serde_json::from_str(&p.ok(&[
        "repo",
        "link",
        &forge.url(),
        "--forge",
        "gitlab",
        "--api",
        &recorder.url,
        "--token-file",
        token_file.to_str().unwrap(),
        "-o",
        "json",
    ]))
    .unwrap();
    let (url, secret) = (
        linked["webhook_url"].as_str().unwrap().to_owned(),
        linked["webhook_secret"].as_str().unwrap().to_owned(),
    );
    p.wait_running(None, "greeter", Some(&first));

    // GitLab keeps a merge request's head at refs/merge-requests/N/head.
    let push_mr = |greeting: &str| {
        let dir = forge.work.join("services/greeter");
        std::fs::write(
            dir.join("service.yaml"),
            format!("run: python3 -u main.py\nenv:\n  GREETING: {greeting}\n"),
        )
        .unwrap();
        p.git_ok(&forge.work, &["commit", "-qam", greeting]);
        let sha = head(&p, &forge.work);
        p.git_ok(
            &forge.work,
            &[
                "push",
                "-qf",
                forge.bare.to_str().unwrap(),
                "HEAD:refs/merge-requests/3/head",
            ],
        );
        p.git_ok(&forge.work, &["reset", "-q", "--hard", "HEAD~1"]);
        sha
    };
    let mr = |action: &str, sha: &str, oldrev: Option<&str>, key: &str| {
        let mut attrs = json!({"iid": 3, "action": action, "last_commit": {"id": sha},
                               "target_branch": "main", "source_branch": "feature"});
        if let Some(old) = oldrev {
            attrs["oldrev"] = json!(old);
        }
        let body = json!({"object_kind": "merge_request", "object_attributes": attrs}).to_string();
        let headers = [
            ("x-gitlab-event", "Merge Request Hook".to_owned()),
            ("x-gitlab-token", secret.clone()),
            ("idempotency-key", key.to_owned()),
        ];
        post(&url, &headers, body.into_bytes())
    };
    let a = push_mr("two");
    assert_eq!(mr("open", &a, None, "k1").0, 202);
    p.wait_for("the note", || recorder.comments(3).len() == 1);
    let (id, body) = recorder.comments(3).remove(0);
    assert!(body.contains("`env.GREETING`: `one` → `two`"), "{body}");
    let note = recorder
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/merge_requests/3/notes") && r.method == "POST")
        .unwrap();
    assert_eq!(note.path, "/projects/work%2Fdefault/merge_requests/3/notes");
    assert_eq!(note.credential, "glpat-forgetoken");
    p.wait_for("the statuses", || {
        statuses(&recorder, &a) == ["pending", "success"]
    });

    // A title edit (an update without oldrev) is not a push: nothing new.
    let before = recorder.requests().len();
    assert_eq!(mr("update", &a, None, "k2").0, 202);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(recorder.requests().len(), before);
    // A push to the merge request (oldrev given): the same note, edited with PUT.
    let b = push_mr("three");
    assert_eq!(mr("update", &b, Some(&a), "k3").0, 202);
    p.wait_for("the edited note", || {
        recorder
            .comments(3)
            .first()
            .is_some_and(|(_, body)| body.contains(&b))
    });
    assert_eq!(recorder.comments(3).len(), 1);
    assert_eq!(recorder.comments(3)[0].0, id);
    assert!(
        recorder
            .requests()
            .iter()
            .any(|r| r.method == "PUT" && r.path.ends_with(&format!("/notes/{id}")))
    );
}

#[test]
fn a_restart_between_taking_a_revision_up_and_applying_it_still_ends_its_status() {
    let recorder = micro_webhooks::testing::Recorder::start();
    let mut p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    let token_file = p.work.join("token");
    std::fs::write(&token_file, "t").unwrap();
    p.ok(&[
        "repo",
        "link",
        &forge.url(),
        "--forge",
        "gitea",
        "--api",
        &recorder.url,
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    p.wait_for("the first statuses", || {
        statuses(&recorder, &first) == ["pending", "success"]
    });
    // Whatever the server was doing when it stopped, the revision it follows gets its
    // final word again once it runs after the restart.
    p.kill9();
    p.restart();
    p.wait_for("the status after the restart", || {
        statuses(&recorder, &first) == ["pending", "success", "success"]
    });
    p.wait_running(None, "greeter", Some(&first));
}
