//! What a delivery says, read from the forges' documented payloads: a push to a branch,
//! a pull (merge) request to preview or that closed, a ping, or something we ignore.

use crate::forge::Sender;
use serde_json::Value;

/// A delivery's meaning, as far as the platform cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A hook was set up (GitHub's `ping`): nothing to do but answer.
    Ping,
    /// A branch moved to `after`, or was deleted (`after` is `None`).
    Push {
        branch: String,
        after: Option<String>,
        /// Who pushed, as the forge names them (`github:octocat`, `gitlab:ann`).
        pusher: Option<String>,
    },
    /// A pull request's head to preview (opened, reopened, pushed to, ready for review).
    Preview {
        number: u64,
        head: String,
        base: String,
        /// From another repository (a fork, or one whose head repo is gone): its code is
        /// planned, never run until someone of the namespace approves it.
        fork: bool,
    },
    /// A pull request closed; `merge_commit` when it was merged.
    Closed {
        number: u64,
        head: String,
        merged: bool,
        merge_commit: Option<String>,
    },
    /// Anything else (tags, issues, a merge request's title edited, …), answered 2xx so
    /// the forge keeps the hook enabled.
    Ignored(String),
}

/// The body is not JSON: the one payload error answered 400.
#[derive(Debug, thiserror::Error)]
#[error("the body is not JSON: {0}")]
pub struct Malformed(String);

const ZERO: &str = "0000000000000000000000000000000000000000";

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn number(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

impl Event {
    /// Reads the delivery of `kind` (the forge's event header) from `forge`.
    pub fn parse(forge: Sender, kind: &str, body: &[u8]) -> Result<Event, Malformed> {
        let v: Value = serde_json::from_slice(body).map_err(|e| Malformed(e.to_string()))?;
        Ok(match (forge, kind) {
            (_, "ping") => Event::Ping,
            (Sender::GitLab, "Push Hook") | (_, "push") => push(&v),
            (Sender::GitLab, "Merge Request Hook") => merge_request(&v),
            (Sender::GitLab, _) => Event::Ignored(kind.to_owned()),
            (_, "pull_request") => pull_request(&v),
            _ => Event::Ignored(kind.to_owned()),
        })
    }

    /// A short name for logs and `micro repo show`.
    pub fn describe(&self) -> String {
        match self {
            Event::Ping => "ping".into(),
            Event::Push { branch, .. } => format!("push to {branch}"),
            Event::Preview { number, .. } => format!("pull request #{number}"),
            Event::Closed { number, .. } => format!("pull request #{number} closed"),
            Event::Ignored(kind) => format!("{kind} (ignored)"),
        }
    }
}

fn push(v: &Value) -> Event {
    let Some(branch) = text(v, &["ref"]).and_then(|r| r.strip_prefix("refs/heads/")) else {
        return Event::Ignored("push of a tag".into());
    };
    let after = text(v, &["after"])
        .filter(|a| *a != ZERO)
        // GitLab names no `checkout_sha` for a deleted branch.
        .filter(|_| v.get("checkout_sha").is_none_or(|c| !c.is_null()))
        .map(str::to_owned);
    let deleted = v.get("deleted").and_then(Value::as_bool).unwrap_or(false);
    // GitHub names the account that pushed in `sender.login` (and `pusher.name`), Gitea
    // and Forgejo in `pusher.login`, GitLab in `user_username`.
    let pusher = [
        &["sender", "login"][..],
        &["pusher", "login"][..],
        &["pusher", "name"][..],
        &["user_username"][..],
    ]
    .iter()
    .find_map(|path| text(v, path))
    .map(str::to_owned);
    Event::Push {
        branch: branch.to_owned(),
        after: after.filter(|_| !deleted),
        pusher,
    }
}

/// GitHub's and Gitea's (and Forgejo's) `pull_request`.
fn pull_request(v: &Value) -> Event {
    let (Some(action), Some(number), Some(head), Some(base)) = (
        text(v, &["action"]),
        number(v, &["number"]).or_else(|| number(v, &["pull_request", "number"])),
        text(v, &["pull_request", "head", "sha"]),
        text(v, &["pull_request", "base", "ref"]),
    ) else {
        return Event::Ignored("pull_request without number, head or base".into());
    };
    let (head, base) = (head.to_owned(), base.to_owned());
    match action {
        // GitHub says `synchronize`, Gitea `synchronized`.
        "opened" | "reopened" | "synchronize" | "synchronized" | "ready_for_review" => {
            // Both forges give each repo an id; a deleted head repo is null.
            let fork = match (
                v.pointer("/pull_request/head/repo/id")
                    .and_then(Value::as_u64),
                v.pointer("/pull_request/base/repo/id")
                    .and_then(Value::as_u64),
            ) {
                (Some(h), Some(b)) => h != b,
                (None, Some(_)) => true,
                _ => false,
            };
            Event::Preview {
                number,
                head,
                base,
                fork,
            }
        }
        "closed" => {
            let merged = v
                .pointer("/pull_request/merged")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Event::Closed {
                number,
                head,
                merged,
                merge_commit: text(v, &["pull_request", "merge_commit_sha"])
                    .filter(|_| merged)
                    .map(str::to_owned),
            }
        }
        other => Event::Ignored(format!("pull_request {other}")),
    }
}

/// GitLab's `Merge Request Hook`. An `update` is a push only with `oldrev`; one that
/// takes the draft flag off is "ready for review".
fn merge_request(v: &Value) -> Event {
    let attrs = &v["object_attributes"];
    let (Some(action), Some(number), Some(head), Some(base)) = (
        text(attrs, &["action"]),
        number(attrs, &["iid"]),
        text(attrs, &["last_commit", "id"]),
        text(attrs, &["target_branch"]),
    ) else {
        return Event::Ignored("merge request without iid, last commit or target".into());
    };
    let (head, base) = (head.to_owned(), base.to_owned());
    let undrafted = ["draft", "work_in_progress"].iter().any(|flag| {
        v.pointer(&format!("/changes/{flag}/current"))
            .and_then(Value::as_bool)
            == Some(false)
    });
    let fork = match (
        attrs.get("source_project_id").and_then(Value::as_u64),
        attrs.get("target_project_id").and_then(Value::as_u64),
    ) {
        (Some(s), Some(t)) => s != t,
        _ => false,
    };
    match action {
        "open" | "reopen" => Event::Preview {
            number,
            head,
            base,
            fork,
        },
        "update" if attrs.get("oldrev").is_some_and(|o| !o.is_null()) || undrafted => {
            Event::Preview {
                number,
                head,
                base,
                fork,
            }
        }
        "merge" => Event::Closed {
            number,
            head,
            merged: true,
            merge_commit: text(attrs, &["merge_commit_sha"]).map(str::to_owned),
        },
        "close" => Event::Closed {
            number,
            head,
            merged: false,
            merge_commit: None,
        },
        other => Event::Ignored(format!("merge request {other}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(forge: Sender, kind: &str, v: Value) -> Event {
        Event::parse(forge, kind, v.to_string().as_bytes()).unwrap()
    }

    const A: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    const B: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";

    #[test]
    fn a_push_names_who_pushed_on_every_forge() {
        let pusher = |sender, event, v| match parse(sender, event, v) {
            Event::Push { pusher, .. } => pusher,
            other => panic!("{other:?}"),
        };
        let gh = json!({"ref": "refs/heads/main", "after": B,
            "pusher": {"name": "octocat", "email": "o@x"}, "sender": {"login": "octocat"}});
        assert_eq!(
            pusher(Sender::GitHub, "push", gh).as_deref(),
            Some("octocat")
        );
        let gitea = json!({"ref": "refs/heads/main", "after": B,
            "pusher": {"login": "ann", "username": "ann"}});
        assert_eq!(pusher(Sender::Gitea, "push", gitea).as_deref(), Some("ann"));
        let gl = json!({"object_kind": "push", "ref": "refs/heads/main", "after": B,
            "user_username": "jsmith"});
        assert_eq!(
            pusher(Sender::GitLab, "Push Hook", gl).as_deref(),
            Some("jsmith")
        );
    }

    #[test]
    fn pushes_to_branches_and_deletions_on_every_forge() {
        // GitHub and Gitea: `ref`, `after`, and (GitHub) `deleted`.
        let gh = json!({"ref": "refs/heads/main", "before": A, "after": B, "deleted": false});
        let moved = Event::Push {
            branch: "main".into(),
            after: Some(B.into()),
            pusher: None,
        };
        assert_eq!(parse(Sender::GitHub, "push", gh), moved);
        let gitea = json!({"ref": "refs/heads/main", "before": A, "after": B});
        assert_eq!(parse(Sender::Gitea, "push", gitea), moved);
        // GitLab's Push Hook, shaped like its documented example.
        let gl = json!({"object_kind": "push", "ref": "refs/heads/main", "before": A,
            "after": B, "checkout_sha": B, "project": {"id": 15}});
        assert_eq!(parse(Sender::GitLab, "Push Hook", gl), moved);
        let deleted = Event::Push {
            branch: "main".into(),
            after: None,
            pusher: None,
        };
        let gh = json!({"ref": "refs/heads/main", "after": ZERO, "deleted": true});
        assert_eq!(parse(Sender::GitHub, "push", gh), deleted);
        let gl = json!({"object_kind": "push", "ref": "refs/heads/main", "after": ZERO, "checkout_sha": null});
        assert_eq!(parse(Sender::GitLab, "Push Hook", gl), deleted);
        let tag = json!({"ref": "refs/tags/v1", "after": B});
        assert!(matches!(
            parse(Sender::GitHub, "push", tag),
            Event::Ignored(_)
        ));
    }

    #[test]
    fn pull_requests_to_preview_and_closed_ones() {
        let pr = |action: &str| {
            json!({"action": action, "number": 7, "pull_request": {"number": 7,
                "head": {"sha": B, "ref": "feature"}, "base": {"ref": "main"},
                "merged": action == "closed", "merge_commit_sha": A}})
        };
        let preview = Event::Preview {
            number: 7,
            head: B.into(),
            base: "main".into(),
            fork: false,
        };
        for action in ["opened", "reopened", "synchronize", "ready_for_review"] {
            assert_eq!(
                parse(Sender::GitHub, "pull_request", pr(action)),
                preview,
                "{action}"
            );
        }
        assert_eq!(
            parse(Sender::Gitea, "pull_request", pr("synchronized")),
            preview
        );
        assert_eq!(
            parse(Sender::GitHub, "pull_request", pr("closed")),
            Event::Closed {
                number: 7,
                head: B.into(),
                merged: true,
                merge_commit: Some(A.into())
            }
        );
        assert!(matches!(
            parse(Sender::GitHub, "pull_request", pr("labeled")),
            Event::Ignored(_)
        ));
        assert_eq!(
            parse(Sender::GitHub, "ping", json!({"zen": "x"})),
            Event::Ping
        );
        assert!(matches!(
            parse(Sender::GitHub, "issues", json!({})),
            Event::Ignored(_)
        ));
    }

    #[test]
    fn a_gitlab_update_is_a_push_only_with_oldrev_or_when_it_leaves_draft() {
        let mr = |action: &str, extra: Value| {
            let mut v = json!({"object_kind": "merge_request", "object_attributes": {
                "iid": 3, "action": action, "last_commit": {"id": B}, "target_branch": "main",
                "merge_commit_sha": A}});
            if let Value::Object(extra) = extra {
                for (k, x) in extra {
                    if k == "changes" {
                        v["changes"] = x;
                    } else {
                        v["object_attributes"][k] = x;
                    }
                }
            }
            parse(Sender::GitLab, "Merge Request Hook", v)
        };
        let preview = Event::Preview {
            number: 3,
            head: B.into(),
            base: "main".into(),
            fork: false,
        };
        assert_eq!(mr("open", json!({})), preview);
        assert_eq!(mr("update", json!({"oldrev": A})), preview);
        assert!(
            matches!(mr("update", json!({})), Event::Ignored(_)),
            "a title edit"
        );
        let undraft = json!({"changes": {"draft": {"previous": true, "current": false}}});
        assert_eq!(mr("update", undraft), preview);
        assert_eq!(
            mr("merge", json!({})),
            Event::Closed {
                number: 3,
                head: B.into(),
                merged: true,
                merge_commit: Some(A.into())
            }
        );
    }

    #[test]
    fn only_a_body_that_is_not_json_is_malformed() {
        assert!(Event::parse(Sender::GitHub, "push", b"{not json").is_err());
        assert!(matches!(
            Event::parse(Sender::GitHub, "push", b"{}").unwrap(),
            Event::Ignored(_)
        ));
    }

    #[test]
    fn a_pull_request_from_another_repository_is_a_fork() {
        let pr = |head: Value, base: Value| {
            json!({"action": "opened", "number": 4, "pull_request": {"number": 4,
                "head": {"sha": B, "ref": "f", "repo": head}, "base": {"ref": "main", "repo": base}}})
        };
        let fork = |v: Value| matches!(parse(Sender::GitHub, "pull_request", v), Event::Preview { fork, .. } if fork);
        // GitHub's and Gitea's payloads name each side's repository by id.
        assert!(fork(pr(json!({"id": 2}), json!({"id": 1}))));
        assert!(!fork(pr(json!({"id": 1}), json!({"id": 1}))));
        // The fork was deleted: its head repo is null.
        assert!(fork(pr(Value::Null, json!({"id": 1}))));
        let mr = |source: u64, target: u64| {
            json!({"object_kind": "merge_request", "object_attributes": {"action": "open", "iid": 3,
                "last_commit": {"id": B}, "target_branch": "main",
                "source_project_id": source, "target_project_id": target}})
        };
        let gl = |v: Value| matches!(parse(Sender::GitLab, "Merge Request Hook", v), Event::Preview { fork, .. } if fork);
        assert!(gl(mr(9, 5)));
        assert!(!gl(mr(5, 5)));
    }
}
