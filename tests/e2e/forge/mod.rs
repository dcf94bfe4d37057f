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

/// A platform (local repos allowed, no poll) whose `default` namespace is seeded into a
/// forge repo that holds the greeter saying "one"; the platform, the forge, that commit.
fn seeded() -> (Platform, Forge, String) {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    let forge = Forge::seeded(&p, "default");
    let first = forge.push_greeter(&p, "one");
    (p, forge, first)
}

/// `micro repo link <forge> ARGS -o json`.
fn link(p: &Platform, forge: &Forge, args: &[&str]) -> Value {
    let url = forge.url();
    let mut full = vec!["repo", "link", url.as_str()];
    full.extend(args);
    full.extend(["-o", "json"]);
    serde_json::from_str(&p.ok(&full)).unwrap()
}

/// The webhook URL and secret of a link.
fn hook(linked: &Value) -> (String, String) {
    (
        linked["webhook_url"].as_str().unwrap().to_owned(),
        linked["webhook_secret"].as_str().unwrap().to_owned(),
    )
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
        let mut req = crate::harness::client().post(url).body(body);
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

fn statuses(recorder: &micro_testkit::Recorder, sha: &str) -> Vec<String> {
    recorder
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/statuses/{sha}")))
        .map(|r| r.body["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

mod attacks;
mod environments;
mod previews;
mod pushes;
