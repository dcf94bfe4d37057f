//! Pull-request previews and commit statuses; branches of platform-hosted repos.

use super::*;

#[test]
fn pull_requests_get_one_preview_comment_kept_up_to_date_and_statuses() {
    let recorder = micro_testkit::Recorder::start();
    let (p, forge, first) = seeded();
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
    let (url, secret) = hook(&linked);
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
    let html = rt.block_on(async {
        let res = crate::harness::client().get(&page).send().await.unwrap();
        res.text().await.unwrap()
    });
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
    let ours = |recorder: &micro_testkit::Recorder| -> Vec<(u64, String)> {
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
fn gitlab_merge_requests_get_their_preview_as_a_note_edited_in_place() {
    let recorder = micro_testkit::Recorder::start();
    let (p, forge, first) = seeded();
    let token_file = p.work.join("token");
    std::fs::write(&token_file, "glpat-forgetoken").unwrap();
    let linked = link(
        &p,
        &forge,
        &[
            "--forge",
            "gitlab",
            "--api",
            &recorder.url,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let (url, secret) = hook(&linked);
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

/// A pull request opened and closed at once (3 of 3 left a stale `invalid` preview and
/// a comment quoting git): the close wins over the preview in flight, nothing of it is
/// left, and no internal error reaches the forge.
#[test]
fn a_pull_request_closed_while_its_preview_runs_leaves_nothing() {
    let recorder = micro_testkit::Recorder::start();
    let (p, forge, _) = seeded();
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
    let (url, secret) = hook(&linked);
    let mut heads = Vec::new();
    for number in [21, 22, 23] {
        let sha = push_pull(&p, &forge, number, &format!("pr{number}"), "");
        let opened = pull_event("opened", number, &sha);
        let closed = pull_event("closed", number, &sha);
        let id = |what: &str| format!("{what}-{number}");
        assert_eq!(
            github(&url, &secret, "pull_request", &id("o"), &opened).0,
            202
        );
        assert_eq!(
            github(&url, &secret, "pull_request", &id("c"), &closed).0,
            202
        );
        heads.push(sha);
    }
    // Each preview ends (dropped, whether it had started or not) …
    p.wait_for("the three previews to be dropped", || {
        p.server_log()
            .matches("pull request closed: its preview is dropped")
            .count()
            >= 3
    });
    // … leaving no preview, no preview ref, no failure and no internal words.
    let previews: Vec<Value> = serde_json::from_str(&p.ok(&["previews", "-o", "json"])).unwrap();
    assert!(
        previews
            .iter()
            .all(|v| !v["name"].as_str().unwrap_or_default().starts_with("#2")),
        "{previews:?}"
    );
    let refs = p.git_ok(
        &p.data.join("repos/default.git"),
        &["for-each-ref", "refs/micro/previews"],
    );
    assert!(refs.trim().is_empty(), "{refs}");
    for (number, sha) in [21u64, 22, 23].iter().zip(&heads) {
        assert!(
            !statuses(&recorder, sha)
                .iter()
                .any(|s| s == "failure" || s == "error"),
            "#{number}: {:?}",
            statuses(&recorder, sha)
        );
        for (_, body) in recorder.comments(*number) {
            assert!(
                !body.contains("revspec") && !body.contains("git:"),
                "{body}"
            );
        }
    }
}
