//! A hostile tenant against links: other tenants' links, local addresses, quotas, floods.

use super::*;

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
            let mut req = p
                .http()
                .request(method, format!("{}/api/v1/namespaces/{ns}/link", p.url()))
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
    let (p, forge, first) = seeded();
    p.ok(&["admin", "quota", "default", "repo-size=1Mi"]);
    let linked = link(&p, &forge, &["--forge", "github"]);
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
