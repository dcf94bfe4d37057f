//! Self-service sign-up in open mode: the code comes by mail (the outbox, without SMTP),
//! the account gets a namespace of its own, and no answer tells who has an account.

use crate::harness::Platform;
use serde_json::Value;
use std::io::Write;
use std::process::Stdio;

/// Runs `cmd` with `line` on its standard input.
pub(crate) fn with_stdin(mut cmd: std::process::Command, line: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    child.wait_with_output().unwrap()
}

/// `micro signup --email E --password-stdin` in the environment `env`.
fn start(p: &Platform, env: &str, email: &str, password: &str) -> (bool, String) {
    let cmd = p.command(&["signup", "--env", env, "--email", email, "--password-stdin"]);
    let out = with_stdin(cmd, password);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The mail to `email` in the outbox, newest first.
fn mail(p: &Platform, email: &str) -> Vec<Value> {
    let all: Vec<Value> = serde_json::from_str(&p.ok(&["admin", "outbox", "-o", "json"])).unwrap();
    all.into_iter().filter(|m| m["to"] == email).collect()
}

fn code_in(mail: &Value) -> String {
    let body = mail["body"].as_str().unwrap();
    body.split_whitespace()
        .map(|w| w.trim_end_matches('.'))
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_owned()
}

#[test]
fn a_new_user_signs_up_gets_a_namespace_and_runs_a_service() {
    let p = Platform::start_with(&[("MICRO_SIGNUP", "open")]);
    let add = p.env_add_args("mine");
    p.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, said) = start(&p, "mine", "Ann@Example.com", "correct horse");
    assert!(ok, "{said}");
    assert!(
        said.contains("a code is on its way to ann@example.com"),
        "{said}"
    );
    assert!(said.contains("--code"), "{said}");
    let sent = mail(&p, "ann@example.com");
    assert_eq!(sent.len(), 1);
    let code = code_in(&sent[0]);

    // A wrong code first: refused, nothing made.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = p.fails(&[
        "signup",
        "--env",
        "mine",
        "--email",
        "ann@example.com",
        "--code",
        wrong,
    ]);
    assert!(err.contains("wrong or expired code"), "{err}");
    let out = p.micro(&[
        "signup",
        "--env",
        "mine",
        "--email",
        "ann@example.com",
        "--code",
        &code,
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Welcome"), "{said}");

    // Logged in, as the developer of a three-word namespace of their own.
    let me: Value =
        serde_json::from_str(&p.ok(&["whoami", "--env", "mine", "-o", "json"])).unwrap();
    assert_eq!(me["role"], "developer");
    let ns = me["namespace"].as_str().unwrap().to_owned();
    assert_eq!(ns.split('-').count(), 3, "{ns}");
    p.ok(&["new", "hello"]);
    p.ok(&["run", "./hello", "--wait", "--env", "mine"]);
    let status: Vec<Value> =
        serde_json::from_str(&p.ok(&["status", "--env", "mine", "-o", "json"])).unwrap();
    assert_eq!(status[0]["name"], "hello", "{status:?}");
    // ... in their namespace, which the admin sees as one among others.
    assert!(p.ok(&["admin", "namespace", "list"]).contains(&ns));
    assert!(p.status(None).is_empty(), "nothing of theirs in default");
    // The code worked once; the password works for `micro login`.
    let err = p.fails(&[
        "signup",
        "--env",
        "mine",
        "--email",
        "ann@example.com",
        "--code",
        &code,
    ]);
    assert!(err.contains("wrong or expired code"), "{err}");
    let out = with_stdin(
        p.command(&[
            "login",
            "--env",
            "mine",
            "--email",
            "ann@example.com",
            "--password-stdin",
        ]),
        "correct horse",
    );
    assert!(out.status.success());
    // And nobody else's namespace is theirs.
    let err = p.fails(&["status", "--env", "mine", "--namespace", "default"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn sign_up_tells_nobody_who_has_an_account_and_is_bounded() {
    let p = Platform::start_with(&[("MICRO_SIGNUP", "open")]);
    let add = p.env_add_args("guest");
    p.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());
    // An address with an account answers exactly like a new one; its mail is a notice,
    // with no code that could open anything.
    p.ok(&[
        "admin",
        "account",
        "create",
        "known@x.io",
        "--namespace",
        "default",
        "--password",
        "secret-123",
    ]);
    let (ok_known, known) = start(&p, "guest", "known@x.io", "whatever-1");
    let (ok_new, new) = start(&p, "guest", "nobody@x.io", "whatever-1");
    assert!(ok_known && ok_new);
    assert_eq!(
        known.replace("known@x.io", "X"),
        new.replace("nobody@x.io", "X")
    );
    let notice = mail(&p, "known@x.io");
    assert!(
        notice[0]["body"]
            .as_str()
            .unwrap()
            .contains("already has an account"),
        "{notice:?}"
    );
    assert!(
        !notice[0]["body"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| c.is_ascii_digit())
    );
    // Bad input: one clear line, nothing sent.
    let (ok, said) = start(&p, "guest", "not-an-email", "whatever-1");
    assert!(!ok && said.contains("not an email address"), "{said}");
    let (ok, said) = start(&p, "guest", "short@x.io", "short");
    assert!(!ok && said.contains("at least 8 characters"), "{said}");
    assert!(mail(&p, "short@x.io").is_empty());
    // Codes per address are limited.
    for _ in 0..4 {
        assert!(start(&p, "guest", "nobody@x.io", "whatever-1").0);
    }
    let (ok, said) = start(&p, "guest", "nobody@x.io", "whatever-1");
    assert!(!ok && said.contains("limit of codes"), "{said}");
}

#[test]
fn sign_up_is_closed_unless_the_platform_opens_it() {
    let p = Platform::start();
    let (ok, said) = start(&p, "server", "ann@example.com", "correct horse");
    assert!(!ok, "{said}");
    assert!(
        said.contains("sign-up is closed on this platform"),
        "{said}"
    );
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request to the platform's web pages; the status and the page.
fn web(p: &Platform, path: &str, body: Option<String>) -> (u16, String) {
    let url = format!("{}{path}", p.url());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = p.http();
        let req = match body {
            Some(b) => client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(b),
            None => client.get(url),
        };
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

#[test]
fn the_sign_up_page_works_without_javascript() {
    let p = Platform::start_with(&[("MICRO_SIGNUP", "open")]);
    let (status, page) = web(&p, "/signup", None);
    assert_eq!(status, 200);
    assert!(
        page.contains("<form method=\"post\" action=\"/signup\">") && !page.contains("<script"),
        "{page}"
    );
    assert!(page.contains("name=\"viewport\""), "readable on a phone");

    let email = "Bea+test@example.com";
    let (status, page) = web(
        &p,
        "/signup",
        Some(form(&[
            ("email", email),
            ("password", "correct horse"),
            ("again", "other horse"),
        ])),
    );
    assert_eq!(status, 400);
    assert!(page.contains("the two passwords differ"), "{page}");
    let (status, page) = web(
        &p,
        "/signup",
        Some(form(&[
            ("email", email),
            ("password", "correct horse"),
            ("again", "correct horse"),
        ])),
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("action=\"/signup/verify\"") && page.contains("bea+test@example.com"),
        "{page}"
    );
    let code = code_in(&mail(&p, "bea+test@example.com")[0]);

    let (status, page) = web(
        &p,
        "/signup/verify",
        Some(form(&[
            ("email", "bea+test@example.com"),
            ("code", "12345x"),
        ])),
    );
    assert_eq!(status, 400);
    assert!(page.contains("wrong or expired code"), "{page}");
    let (status, page) = web(
        &p,
        "/signup/verify",
        Some(form(&[("email", "bea+test@example.com"), ("code", &code)])),
    );
    assert_eq!(status, 201, "{page}");
    let url = p.url();
    // The platform's own CA, pinned by its fingerprint in the command itself.
    let ca = std::fs::read_to_string(p.ca()).unwrap();
    let fingerprint = micro_pki::fingerprint(&ca).unwrap();
    let add = format!("micro env add mine {url} --ca-fingerprint {fingerprint}");
    assert!(page.contains(&add), "{page}");
    assert!(
        page.contains("micro login --email bea+test@example.com"),
        "{page}"
    );

    // The two commands the page shows work, as they are printed (no terminal to ask).
    let add: Vec<&str> = add.split(' ').skip(1).collect();
    p.ok(&add);
    let out = with_stdin(
        p.command(&[
            "login",
            "--env",
            "mine",
            "--email",
            "bea+test@example.com",
            "--password-stdin",
        ]),
        "correct horse",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Markup in what a user types never reaches the page as markup.
    let (_, page) = web(
        &p,
        "/signup",
        Some(form(&[
            ("email", "<script>x</script>@x.io"),
            ("password", "correct horse"),
            ("again", "correct horse"),
        ])),
    );
    assert!(!page.contains("<script>"), "{page}");
}

#[test]
fn the_sign_up_page_of_a_closed_platform_says_so() {
    let p = Platform::start();
    let (status, page) = web(&p, "/signup", None);
    assert_eq!(status, 403);
    assert!(
        page.contains("sign-up is closed on this platform"),
        "{page}"
    );
    // `micro signup` asks nothing of a platform that takes no sign-ups, or that it
    // cannot reach: it says so first (with no terminal, asking would fail otherwise).
    let said = p.fails(&["signup"]);
    assert!(said.contains("sign-up is closed"), "{said}");
    p.ok(&["env", "add", "gone", "https://127.0.0.1:9"]);
    let said = p.fails(&["signup", "--env", "gone"]);
    assert!(
        said.contains("127.0.0.1:9") && !said.contains("--email"),
        "{said}"
    );
}

/// `--signup invite`, as the product first launched: only addresses an admin invited can
/// sign up; anyone else is answered as any address is, and gets no mail; an invitation
/// is used up by its sign-up, and a revoked one's code stops working.
#[test]
fn sign_up_by_invitation_takes_only_invited_addresses() {
    let p = Platform::start_with(&[("MICRO_SIGNUP", "invite")]);
    let add = p.env_add_args("mine");
    p.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());

    let (ok, stranger) = start(&p, "mine", "stranger@example.com", "correct horse");
    assert!(ok, "{stranger}");
    assert!(
        mail(&p, "stranger@example.com").is_empty(),
        "a stranger got mail"
    );

    p.ok(&["admin", "invite", "guest@example.com", "late@example.com"]);
    let listed = p.ok(&["admin", "invite", "list"]);
    assert!(listed.contains("guest@example.com") && listed.contains("late@example.com"));
    let (ok, guest) = start(&p, "mine", "guest@example.com", "correct horse");
    assert!(ok, "{guest}");
    // The same words for both: whether an address is invited is not told.
    assert_eq!(
        stranger.replace("stranger@example.com", "X"),
        guest.replace("guest@example.com", "X")
    );
    let code = code_in(&mail(&p, "guest@example.com")[0]);
    p.ok(&[
        "signup",
        "--env",
        "mine",
        "--email",
        "guest@example.com",
        "--code",
        &code,
    ]);
    let me: Value =
        serde_json::from_str(&p.ok(&["whoami", "--env", "mine", "-o", "json"])).unwrap();
    assert_eq!(me["role"], "developer");
    assert!(
        !p.ok(&["admin", "invite", "list"])
            .contains("guest@example.com")
    );

    // Revoked after its code was sent: the code does not work.
    let (ok, _) = start(&p, "mine", "late@example.com", "correct horse");
    assert!(ok);
    let code = code_in(&mail(&p, "late@example.com")[0]);
    p.ok(&["admin", "invite", "revoke", "late@example.com"]);
    let said = p.fails(&[
        "signup",
        "--env",
        "mine",
        "--email",
        "late@example.com",
        "--code",
        &code,
    ]);
    assert!(said.contains("wrong or expired code"), "{said}");
}
