//! Following a forge's branch: signed pushes per forge, failures, write verbs, restarts.

use super::*;

#[test]
fn a_linked_namespace_runs_what_signed_pushes_on_its_forge_say() {
    let (p, forge, first) = seeded();

    let linked = link(&p, &forge, &["--forge", "github"]);
    let (url, secret) = hook(&linked);
    assert!(url.starts_with(&format!("{}/hooks/", p.url())), "{url}");
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

    // A signed push event: the new revision runs, and the history names who pushed it
    // on the forge.
    let second = forge.push_greeter(&p, "two");
    let mut pushed = push_event(&second);
    pushed["sender"] = json!({"login": "octocat"});
    let (status, text) = github(&url, &secret, "push", "d-1", &pushed);
    assert_eq!(status, 202, "{text}");
    p.wait_running(None, "greeter", Some(&second));
    assert_eq!(call(&p), "two");
    let history: Vec<Value> = serde_json::from_str(&p.ok(&["history", "-o", "json"])).unwrap();
    let entry = history
        .iter()
        .find(|h| h["revision"] == second.as_str())
        .unwrap_or_else(|| panic!("{history:?}"));
    assert_eq!(entry["pushed_by"], "github:octocat", "{entry}");
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
    let target = url.strip_prefix(&p.url()).unwrap();
    assert_eq!(p.announce_body(target, 5 << 20).0, 413);
    // Sent whole, as forges send it: the sender gets the 413 every time, never a broken
    // pipe (the server reads the rest and drops it).
    for _ in 0..5 {
        let big = vec![b' '; 5 << 20];
        assert_eq!(post(&url, &headers, big).0, 413);
    }
    let missing = format!("{}/hooks/0123456789abcdef", p.url());
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
    let (p, forge, first) = seeded();
    let linked = link(&p, &forge, &["--forge", "gitea"]);
    let (url, secret) = hook(&linked);
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
    // An attack: a Gitea link's secret (leaked, or guessed) is never taken in another
    // forge's scheme, GitLab's plain token or GitHub's header.
    let (status, said) = post(&url, &gitlab(&secret), body.clone());
    assert_eq!(status, 401, "{said}");
    assert!(said.contains("gitea deliveries only, not GitLab"), "{said}");
    assert_eq!(
        github(&url, &secret, "push", "gh-1", &push_event(&third)).0,
        401
    );
    assert_ne!(show(&p, None)["fetched_revision"], third.as_str());

    // Linked as GitLab, the same delivery is taken.
    p.ok(&["repo", "unlink"]);
    let linked = link(&p, &forge, &["--forge", "gitlab"]);
    let (url, secret) = hook(&linked);
    assert_eq!(post(&url, &gitlab("wrong"), body.clone()).0, 401);
    assert_eq!(post(&url, &gitlab(&secret), body).0, 202);
    p.wait_running(None, "greeter", Some(&third));
}

#[test]
fn a_fetch_that_fails_is_shown_and_keeps_what_runs() {
    let (p, forge, first) = seeded();
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
fn write_verbs_in_a_linked_namespace_commit_to_the_forge() {
    let (p, forge, first) = seeded();
    p.ok(&["repo", "link", &forge.url(), "--forge", "gitea"]);
    p.wait_running(None, "greeter", Some(&first));

    // `scale` commits to the forge's branch with the user's git; the platform is told
    // to fetch at once and the new revision rolls out.
    p.ok(&["scale", "greeter", "2", "--wait"]);
    let on_forge = p.git_ok(&forge.bare, &["show", "main:services/greeter/service.yaml"]);
    assert!(on_forge.contains("replicas: 2"), "{on_forge}");
    let s = p.service(None, "greeter").unwrap();
    assert_eq!(s["desired"], 2, "{s}");

    // Over the quota: refused before anything is committed to the forge (the platform
    // admits the commit first, as it would a push), so the forge never holds a revision
    // that cannot apply.
    p.ok(&["admin", "quota", "default", "replicas=3"]);
    let before = p.git_ok(&forge.bare, &["rev-parse", "main"]);
    let said = p.fails(&["scale", "greeter", "5"]);
    assert!(said.contains("over quota: replicas"), "{said}");
    assert_eq!(p.git_ok(&forge.bare, &["rev-parse", "main"]), before);

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
fn a_restart_between_taking_a_revision_up_and_applying_it_still_ends_its_status() {
    let recorder = micro_testkit::Recorder::start();
    let (mut p, forge, first) = seeded();
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

/// A linked namespace runs what its forge says: a push to the platform's copy is refused
/// on any branch or tag, not only on main, saying where to push.
#[test]
fn a_linked_namespace_takes_no_push_to_any_ref_of_the_platforms_copy() {
    let (p, forge, _) = seeded();
    p.ok(&["repo", "link", &forge.url(), "--forge", "gitea"]);
    // forge.work is a clone of the platform's copy (origin), as it was before the link;
    // a new commit for each push to carry.
    p.git_ok(
        &forge.work,
        &["commit", "-q", "--allow-empty", "-m", "here"],
    );
    for refspec in [
        "HEAD:refs/heads/main",
        "HEAD:refs/heads/feat",
        "HEAD:refs/tags/v1",
    ] {
        let out = p.git(&forge.work, &["push", "-q", "origin", refspec]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{refspec}: {said}");
        assert!(said.contains("this namespace follows"), "{refspec}: {said}");
    }
    let refs = p.git_ok(&forge.work, &["ls-remote", "origin"]);
    assert!(
        !refs.contains("refs/heads/feat") && !refs.contains("refs/tags/v1"),
        "{refs}"
    );
}

/// `micro repo link` takes a namespace's repo only: a stranger's repo is refused naming
/// what is missing (its history would have replaced the namespace's), and an empty one
/// is seeded with the namespace's repo by `--seed`.
#[test]
fn a_link_takes_a_namespaces_repo_or_seeds_an_empty_one() {
    let p = Platform::start_with(&[
        ("MICRO_ALLOW_LOCAL_SOURCES", "true"),
        ("MICRO_POLL", "3600"),
    ]);
    // Someone else's project.
    let foreign = p.work.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("README.md"), "not a namespace\n").unwrap();
    p.git_ok(&foreign, &["init", "-q", "-b", "main"]);
    p.git_ok(&foreign, &["add", "."]);
    p.git_ok(&foreign, &["commit", "-qm", "theirs"]);
    let said = p.fails(&[
        "repo",
        "link",
        &format!("file://{}", foreign.display()),
        "--forge",
        "gitea",
    ]);
    assert!(
        said.contains("not a namespace's repo") && said.contains("micro.yaml"),
        "{said}"
    );
    assert!(p.ok(&["repo", "show"]).contains("is not linked"));

    // An empty repo: refused without --seed, seeded with it.
    let bare = p.work.join("empty.git");
    p.git_ok(&p.work, &["init", "-q", "--bare", bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    let said = p.fails(&["repo", "link", &url, "--forge", "gitea"]);
    assert!(said.contains("--seed"), "{said}");
    let out = p.micro(&["repo", "link", &url, "--forge", "gitea", "--seed"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("seeded"), "{said}");
    let top = p.git_ok(&bare, &["ls-tree", "--name-only", "main"]);
    assert!(
        top.contains("micro.yaml") && top.contains("config.yaml"),
        "{top}"
    );
    assert!(p.ok(&["repo", "show"]).contains(&url));
    // Seeding a branch that holds something already is refused.
    p.ok(&["repo", "unlink"]);
    let said = p.fails(&["repo", "link", &url, "--forge", "gitea", "--seed"]);
    assert!(said.contains("empty branch only"), "{said}");
}
