//! A pull request's preview as forge comments: pure text, from a plan (or the reason the
//! head does not validate). One comment, found again by a hidden marker naming the
//! namespace and edited in place on every push; over the forge's size limit, "part i/n"
//! comments split on service boundaries. Never a secret: config shows as key and version,
//! env values that look like credentials are masked, tokens are never in a plan.

use micro_reconciler::plan::{Plan, StepKind};
use std::fmt::Write;

/// GitHub's limit on a comment body; Gitea's and GitLab's are larger.
pub const GITHUB_LIMIT: usize = 65_536;
const MARKER: &str = "<!-- micro-preview ";

/// What a preview says.
pub enum Outcome<'a> {
    Plan(&'a Plan),
    /// `file:line:col: message`.
    Invalid(&'a str),
}

/// Where the preview is and what it is of.
pub struct Heading<'a> {
    pub namespace: &'a str,
    pub number: u64,
    pub head: &'a str,
    /// The preview environment's section ([`environment`]), if previews are on.
    pub environment: Option<&'a str>,
}

/// What encloses the environment's section in the first part, so it can be rewritten
/// alone when the environment moves on.
pub const ENV_START: &str = "<!-- micro-env -->";
pub const ENV_END: &str = "<!-- /micro-env -->";

/// What became of a preview environment, for its section.
pub enum EnvironmentNote<'a> {
    Now(&'a micro_previews::View),
    /// Removed, saying why (`the pull request closed`, `it expired`).
    Removed(&'a str),
}

/// The environment's section of the comment, markers included: its namespace, state,
/// URLs and expiry; a failing service's last lines (secrets masked already) in a block
/// nothing breaks out of.
pub fn environment(namespace: &str, note: &EnvironmentNote<'_>) -> String {
    use micro_previews::Phase;
    let mut out = format!("{ENV_START}\n");
    match note {
        EnvironmentNote::Removed(why) => {
            let _ = writeln!(
                out,
                "**Preview environment** {}: removed ({why}); nothing of it remains.",
                code(namespace)
            );
        }
        EnvironmentNote::Now(view) => {
            let _ = writeln!(
                out,
                "**Preview environment** {} at {}: **{}**",
                code(namespace),
                code(view.env.head.get(..7).unwrap_or(&view.env.head)),
                view.phase.as_str()
            );
            match &view.phase {
                Phase::Waiting { ahead, max } => {
                    let _ = writeln!(
                        out,
                        "\nWaiting: {max} previews are open, the most this namespace allows; {ahead} ahead of this one. It starts when one closes."
                    );
                }
                Phase::Approval => {
                    let _ = writeln!(
                        out,
                        "\nThis pull request comes from a fork: its plan is above, and nothing of it runs until someone of the namespace approves it with `micro previews approve {}`.",
                        view.env.number.unwrap_or(0)
                    );
                }
                Phase::Failed { reason, logs } => {
                    let _ = writeln!(out, "\n{}", code(reason));
                    if !logs.is_empty() {
                        let _ = writeln!(
                            out,
                            "\n```\n{}\n```",
                            // Nothing in a line closes the block or fakes our markers.
                            logs.join("\n")
                                .replace("```", "ˋˋˋ")
                                .replace("<!--", "‹!--")
                        );
                    }
                }
                Phase::Building | Phase::Ready => {}
            }
            if !view.urls.is_empty() {
                out.push('\n');
                for (service, url) in &view.urls {
                    let _ = writeln!(out, "- {}: {url}", code(service));
                }
            }
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(view.expires_at).unwrap_or(0));
            let _ = writeln!(
                out,
                "\nExpires {} unless pushed to again.",
                humantime::format_rfc3339_seconds(at)
            );
        }
    }
    out.push_str(ENV_END);
    out.push('\n');
    out
}

/// `body` with its environment section replaced by `section`; `None` when it has none.
pub fn with_environment(body: &str, section: &str) -> Option<String> {
    let start = body.find(ENV_START)?;
    let end = body[start..].find(ENV_END)? + start + ENV_END.len();
    let end = if body[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Some(format!("{}{section}{}", &body[..start], &body[end..]))
}

/// The marker a comment of ours starts with: `namespace` and the part it is.
pub fn marker(namespace: &str, part: usize, parts: usize) -> String {
    format!("{MARKER}ns={namespace} part={part}/{parts} -->")
}

/// The part a comment is, if it is one of `namespace`'s previews.
pub fn part_of(body: &str, namespace: &str) -> Option<usize> {
    let rest = body.strip_prefix(MARKER)?;
    let line = rest.lines().next()?;
    let rest = line.strip_prefix(&format!("ns={namespace} part="))?;
    let (part, _) = rest.split_once('/')?;
    part.parse().ok()
}

/// The comment bodies of a preview, each within `limit` characters.
pub fn render(heading: &Heading<'_>, outcome: &Outcome<'_>, limit: usize) -> Vec<String> {
    let short = heading.head.get(..7).unwrap_or(heading.head);
    let (summary, blocks) = match outcome {
        Outcome::Invalid(error) => (
            format!(
                "**This head does not validate**; merged as it is, nothing would change and the namespace would report:\n\n```\n{}\n```",
                error.replace("```", "ˋˋˋ")
            ),
            Vec::new(),
        ),
        Outcome::Plan(plan) => plan_blocks(plan),
    };
    let footer = format!(
        "\n---\nComputed for `{}` against what runs now. Full plan: `micro diff --pr {} --namespace {}`\n",
        heading.head, heading.number, heading.namespace
    );
    let title = |part: usize, parts: usize| {
        let mut t = format!(
            "### micro · `{}` · #{} at `{short}`",
            heading.namespace, heading.number
        );
        if parts > 1 {
            let _ = write!(t, " (part {part}/{parts})");
        }
        t
    };
    // Room for the marker, title, footer and environment on every part.
    let overhead = marker(heading.namespace, 999, 999).len()
        + title(999, 999).len()
        + footer.len()
        + heading.environment.map_or(0, |e| e.len() + 1)
        + 8;
    let room = limit.saturating_sub(overhead).max(1024);
    let mut chunks: Vec<String> = vec![format!("{summary}\n")];
    for block in blocks {
        let block = fit(block, room);
        let last = chunks.last_mut().filter(|c| c.len() + block.len() <= room);
        match last {
            Some(chunk) => chunk.push_str(&block),
            None => chunks.push(block),
        }
    }
    let parts = chunks.len();
    let environment = heading
        .environment
        .map(|e| format!("{e}\n"))
        .unwrap_or_default();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            format!(
                "{}\n{}\n\n{}{chunk}{footer}",
                marker(heading.namespace, i + 1, parts),
                title(i + 1, parts),
                if i == 0 { environment.as_str() } else { "" }
            )
        })
        .collect()
}

/// The summary line, then one block per created or updated service and one for every
/// delete together (collapsed).
fn plan_blocks(plan: &Plan) -> (String, Vec<String>) {
    let s = plan.summary();
    let summary = if plan.is_empty() {
        format!(
            "**No change**: what runs already matches ({} unchanged).",
            s.unchanged
        )
    } else {
        format!(
            "**{} to create, {} to update, {} to delete** ({} unchanged)",
            s.create, s.update, s.delete, s.unchanged
        )
    };
    let mut blocks = Vec::new();
    let mut deletes = Vec::new();
    for step in plan.steps() {
        let mut block = match step.kind {
            StepKind::Create => format!("\n#### + {}\n", code(&step.name)),
            StepKind::Update => format!(
                "\n#### ~ {} (running {})\n",
                code(&step.name),
                code(
                    step.from_revision
                        .as_deref()
                        .map_or("", |r| r.get(..7).unwrap_or(r))
                )
            ),
            StepKind::Delete => {
                deletes.push(format!("- {}\n", code(&step.name)));
                continue;
            }
        };
        for c in &step.changes {
            let secret = looks_secret(&c.field, c.from.as_deref())
                || looks_secret(&c.field, c.to.as_deref());
            let show = |v: &Option<String>| match v {
                None => "(none)".to_owned(),
                Some(_) if secret => "`••••` (masked)".to_owned(),
                Some(v) => code(v),
            };
            let _ = match step.kind {
                StepKind::Create => writeln!(block, "- {}: {}", code(&c.field), show(&c.to)),
                _ => writeln!(
                    block,
                    "- {}: {} → {}",
                    code(&c.field),
                    show(&c.from),
                    show(&c.to)
                ),
            };
        }
        blocks.push(block);
    }
    if !deletes.is_empty() {
        blocks.push(format!(
            "\n<details><summary>{} to delete</summary>\n\n{}\n</details>\n",
            deletes.len(),
            deletes.concat()
        ));
    }
    (summary, blocks)
}

/// A block longer than a whole part is cut (a service with thousands of env entries).
fn fit(block: String, room: usize) -> String {
    if block.len() <= room {
        return block;
    }
    let mut out = String::new();
    let mut left = 0;
    for line in block.lines() {
        if out.len() + line.len() + 80 < room {
            out.push_str(line);
            out.push('\n');
        } else {
            left += 1;
        }
    }
    let _ = writeln!(
        out,
        "- … and {left} more changes (`micro diff --pr` shows all)"
    );
    out
}

/// A value as inline code that nothing in it can break out of.
fn code(v: &str) -> String {
    let clean: String = v
        .chars()
        .map(|c| match c {
            '`' => 'ˋ',
            '\n' | '\r' => '⏎',
            '<' => '‹',
            '>' => '›',
            c => c,
        })
        .take(200)
        .collect();
    format!("`{clean}`")
}

/// An env entry whose name or value looks like a credential.
pub fn looks_secret(field: &str, value: Option<&str>) -> bool {
    let Some(name) = field.strip_prefix("env.") else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    let by_name = [
        "pass",
        "secret",
        "token",
        "key",
        "credential",
        "auth",
        "private",
        "cert",
        "dsn",
        "session",
        "cookie",
        "signature",
        "salt",
    ]
    .iter()
    .any(|w| name.contains(w));
    let Some(value) = value else { return by_name };
    let by_prefix = [
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "sk_live_",
        "sk_test_",
        "rk_live_",
        "xoxb-",
        "xoxp-",
        "AKIA",
        "ASIA",
        "AIza",
        "eyJ",
        "-----BEGIN",
    ]
    .iter()
    .any(|p| value.starts_with(p));
    // URLs with a password in them (`postgres://u:pw@host`).
    let in_url = value.split_once("://").is_some_and(|(_, rest)| {
        rest.split('/')
            .next()
            .is_some_and(|a| a.contains(':') && a.contains('@'))
    });
    by_name || by_prefix || in_url || random_looking(value)
}

/// Long, mixed letters and digits with no spaces: an API key more than a word.
fn random_looking(v: &str) -> bool {
    v.len() >= 24
        && !v.contains(char::is_whitespace)
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().any(|c| c.is_ascii_lowercase())
        && v.chars().any(|c| c.is_ascii_uppercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use micro_reconciler::plan::Action;
    use micro_tenant::{DesiredService, desired::ServiceModel};

    fn service(name: &str, env: &[(&str, &str)]) -> DesiredService {
        let mut model = ServiceModel {
            run: Some("python3 main.py".into()),
            replicas: 1,
            ..ServiceModel::default()
        };
        for (k, v) in env {
            model.env.insert((*k).into(), (*v).into());
        }
        model.config.insert("db.password".into(), 4);
        DesiredService {
            name: name.into(),
            revision: "abc".into(),
            model,
            tree: String::new(),
        }
    }

    fn plan(creates: usize, deletes: usize, env: &[(&str, &str)]) -> Plan {
        let mut actions: Vec<Action> = (0..creates)
            .map(|i| Action::Create {
                service: service(&format!("svc{i:04}"), env),
            })
            .collect();
        actions.extend((0..deletes).map(|i| Action::Delete {
            name: format!("old{i}"),
            revision: "r".into(),
        }));
        Plan {
            namespace: "acme".into(),
            revision: "abc".into(),
            actions,
            unchanged: vec!["kept".into()],
        }
    }

    const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn one_comment_with_the_summary_first_and_deletes_collapsed() {
        let p = plan(1, 2, &[("GREETING", "hi")]);
        let heading = Heading {
            namespace: "acme",
            number: 7,
            head: HEAD,
            environment: None,
        };
        let bodies = render(&heading, &Outcome::Plan(&p), GITHUB_LIMIT);
        assert_eq!(bodies.len(), 1);
        let body = &bodies[0];
        assert_eq!(part_of(body, "acme"), Some(1));
        assert_eq!(part_of(body, "other"), None);
        let summary = body.lines().find(|l| l.starts_with("**")).unwrap();
        assert_eq!(
            summary,
            "**1 to create, 0 to update, 2 to delete** (1 unchanged)"
        );
        assert!(body.contains("- `env.GREETING`: `hi`"), "{body}");
        assert!(body.contains("- `config.db.password`: `v4`"), "{body}");
        assert!(
            body.contains("<details><summary>2 to delete</summary>"),
            "{body}"
        );
        assert!(
            body.contains(HEAD) && body.contains("micro diff --pr 7"),
            "{body}"
        );
    }

    #[test]
    fn credentials_in_env_are_masked_wherever_they_appear() {
        let planted = [
            ("API_TOKEN", "plain-words"),
            ("DATABASE_URL", "postgres://app:hunter2@db/app"),
            ("GITHUB", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
            ("OPAQUE", "Zk3Jd9sLq2Xv8Rt5Wm1Np7Yc"),
        ];
        let p = plan(1, 0, &planted);
        let body = render(
            &Heading {
                namespace: "a",
                number: 1,
                head: HEAD,
                environment: None,
            },
            &Outcome::Plan(&p),
            GITHUB_LIMIT,
        )
        .concat();
        for (_, value) in planted {
            assert!(!body.contains(value), "{value} leaked: {body}");
        }
        assert!(body.contains("`env.API_TOKEN`: `••••` (masked)"));
        assert!(!looks_secret("env.GREETING", Some("hello world")));
        assert!(!looks_secret("run", Some("python3 main.py")));
    }

    #[test]
    fn over_the_limit_parts_split_on_service_boundaries() {
        let p = plan(
            400,
            0,
            &[("GREETING", "hello there, a somewhat long greeting")],
        );
        let heading = Heading {
            namespace: "acme",
            number: 9,
            head: HEAD,
            environment: None,
        };
        let bodies = render(&heading, &Outcome::Plan(&p), 8_000);
        assert!(bodies.len() > 2, "{}", bodies.len());
        let n = bodies.len();
        for (i, body) in bodies.iter().enumerate() {
            assert!(body.len() <= 8_000, "part {} is {} long", i + 1, body.len());
            assert_eq!(part_of(body, "acme"), Some(i + 1));
            assert!(body.contains(&format!("(part {}/{n})", i + 1)));
        }
        // Every service is in exactly one part, whole.
        for i in 0..400 {
            let name = format!("#### + `svc{i:04}`");
            assert_eq!(
                bodies.iter().filter(|b| b.contains(&name)).count(),
                1,
                "{name}"
            );
        }
    }

    #[test]
    fn an_invalid_head_says_where_and_nothing_breaks_out_of_code() {
        let heading = Heading {
            namespace: "a",
            number: 2,
            head: HEAD,
            environment: None,
        };
        let body = render(
            &heading,
            &Outcome::Invalid("services/web/service.yaml:3:1: unknown field `prot`"),
            GITHUB_LIMIT,
        )
        .concat();
        assert!(
            body.contains("does not validate") && body.contains("service.yaml:3:1"),
            "{body}"
        );
        assert_eq!(code("a`b\n<!-- x -->"), "`aˋb⏎‹!-- x --›`");
    }

    #[test]
    fn the_environment_section_is_rewritten_alone() {
        let p = plan(1, 0, &[]);
        let first = environment(
            "acme-pr-2",
            &EnvironmentNote::Removed("the pull request closed"),
        );
        let heading = Heading {
            namespace: "acme",
            number: 2,
            head: HEAD,
            environment: Some(&first),
        };
        let body = render(&heading, &Outcome::Plan(&p), GITHUB_LIMIT).remove(0);
        assert!(body.contains("removed (the pull request closed)"), "{body}");
        let failed = micro_previews::View {
            env: micro_store::Environment {
                namespace: "acme-pr-2".into(),
                parent: "acme".into(),
                source: "#2".into(),
                number: Some(2),
                head: HEAD.into(),
                state: "running".into(),
                fork: false,
                approved: false,
                active_at: 0,
                created_at: 0,
            },
            phase: micro_previews::Phase::Failed {
                reason: "web: exited".into(),
                logs: vec!["boom ``` <!-- /micro-env -->".into()],
            },
            urls: vec![("web".into(), "https://web-acme-pr-2.apps.test".into())],
            expires_at: 0,
        };
        let second = environment("acme-pr-2", &EnvironmentNote::Now(&failed));
        let rewritten = with_environment(&body, &second).unwrap();
        assert!(!rewritten.contains("removed"), "{rewritten}");
        assert!(
            rewritten.contains("**failed**")
                && rewritten.contains("https://web-acme-pr-2.apps.test")
        );
        assert!(rewritten.contains("1970-01-01T00:00:00Z"), "{rewritten}");
        // The plan around it is untouched, and a log line cannot close the block.
        assert_eq!(rewritten.matches("#### + `svc0000`").count(), 1);
        assert!(rewritten.contains("boom ˋˋˋ"));
        assert_eq!(with_environment("no section", &second), None);
        let again = with_environment(&rewritten, &first).unwrap();
        assert_eq!(with_environment(&again, &second).unwrap(), rewritten);
    }
}
