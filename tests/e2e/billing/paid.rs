//! The paid journey against a recording Stripe and a real SMTP server: sign up, pay,
//! get a namespace and a logged-in CLI; then what billing events do to it.

use super::smtp::{SmtpSink, code_in};
use crate::harness::Platform;
use crate::signup::with_stdin;
use micro_testkit::StripeRecorder;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const SECRET: &str = "whsec_e2e_0123456789";
const PRICE: &str = "price_developer_35";

pub(super) struct Paid {
    pub p: Platform,
    pub stripe: StripeRecorder,
    pub smtp: SmtpSink,
    pub url: String,
    _files: tempfile::TempDir,
}

pub(super) fn start_paid(grace: &str) -> Paid {
    start_paid_with(grace, &[])
}

/// [`start_paid`] with more of the server's environment.
pub(super) fn start_paid_with(grace: &str, more: &[(&str, &str)]) -> Paid {
    let stripe = StripeRecorder::start();
    let smtp = SmtpSink::start();
    let files = tempfile::tempdir().unwrap();
    let key = files.path().join("stripe.key");
    let hook = files.path().join("stripe-webhook.secret");
    std::fs::write(&key, "sk_test_e2e_key\n").unwrap();
    std::fs::write(&hook, format!("{SECRET}\n")).unwrap();
    crate::harness::owner_only(&key);
    crate::harness::owner_only(&hook);
    let smtp_url = smtp.url();
    let mut env = vec![
        ("MICRO_SIGNUP", "paid"),
        ("MICRO_STRIPE_SECRET_KEY_FILE", key.to_str().unwrap()),
        ("MICRO_STRIPE_WEBHOOK_SECRET_FILE", hook.to_str().unwrap()),
        ("MICRO_STRIPE_PRICE", PRICE),
        ("MICRO_STRIPE_API", &stripe.url),
        ("MICRO_SMTP", &smtp_url),
        ("MICRO_BILLING_GRACE", grace),
    ];
    env.extend_from_slice(more);
    let p = Platform::start_with(&env);
    let url = p.url();
    let add = p.env_add_args("mine");
    p.ok(&add.iter().map(String::as_str).collect::<Vec<_>>());
    Paid {
        p,
        stripe,
        smtp,
        url,
        _files: files,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// POSTs `body` to `/hooks/stripe` with `signature` as the Stripe-Signature header.
fn post_event(t: &Paid, body: &[u8], signature: &str) -> (u16, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let res =
            t.p.http()
                .post(format!("{}/hooks/stripe", t.url))
                .header("stripe-signature", signature)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

fn get_text(t: &Paid, url: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let res = t.p.http().get(url).send().await.unwrap();
        res.text().await.unwrap()
    })
}

/// An event as Stripe sends it, signed with the endpoint's secret, now.
fn event(t: &Paid, id: &str, kind: &str, object: Value) -> (u16, String) {
    let body = json!({"id": id, "object": "event", "type": kind, "created": now(),
        "data": {"object": object}})
    .to_string();
    let signature = micro_billing::stripe::sign(body.as_bytes(), SECRET.as_bytes(), now());
    post_event(t, body.as_bytes(), &signature)
}

fn completed(session: &str, reference: &str, subscription: &str) -> Value {
    json!({"id": session, "object": "checkout.session", "mode": "subscription",
        "client_reference_id": reference, "customer": "cus_1",
        "subscription": subscription, "payment_status": "paid", "status": "complete"})
}

/// `micro signup --password-stdin` for `email`, then the code from the mail.
fn code_for(t: &Paid, email: &str, nth_mail: usize) -> String {
    let out = with_stdin(
        t.p.command(&[
            "signup",
            "--env",
            "mine",
            "--email",
            email,
            "--password-stdin",
        ]),
        "correct horse",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    code_in(&t.smtp.wait_for_message(email, nth_mail))
}

/// `micro signup --code CODE --no-wait` for `email`: prints where to pay, and exits.
fn pay_later(p: &Platform, email: &str, code: &str) -> std::process::Output {
    p.micro(&[
        "signup",
        "--env",
        "mine",
        "--email",
        email,
        "--code",
        code,
        "--no-wait",
    ])
}

/// `micro login` as `email`, the password on standard input.
fn login_as(p: &Platform, email: &str, password: &str) -> std::process::Output {
    with_stdin(
        p.command(&[
            "login",
            "--env",
            "mine",
            "--email",
            email,
            "--password-stdin",
        ]),
        password,
    )
}

fn accounts_named(p: &Platform, email: &str) -> Vec<String> {
    p.ok(&["admin", "account", "list"])
        .lines()
        .filter(|l| l.starts_with(email))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_new_user_signs_up_pays_and_gets_a_logged_in_namespace() {
    let t = start_paid("7d");
    let p = &t.p;
    let code = code_for(&t, "payer@dev.example", 1);

    // The CLI verifies the code, prints where to pay, and waits.
    let mut waiting = p
        .command(&[
            "signup",
            "--env",
            "mine",
            "--email",
            "payer@dev.example",
            "--code",
            &code,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(waiting.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let sessions = t.stripe.sessions();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!(line.trim(), session.url, "the CLI prints the Checkout URL");
    let form = &session.form;
    assert_eq!(form["mode"], "subscription");
    assert_eq!(form["line_items[0][price]"], PRICE);
    assert_eq!(form["line_items[0][quantity]"], "1");
    assert_eq!(form["customer_email"], "payer@dev.example");
    assert_eq!(
        form["success_url"],
        format!("{}/signup/done?session_id={{CHECKOUT_SESSION_ID}}", t.url)
    );
    assert_eq!(form["cancel_url"], format!("{}/signup/cancelled", t.url));
    assert_eq!(session.credential, "Bearer sk_test_e2e_key");
    let reference = form["client_reference_id"].clone();

    // Forged, stale and tampered events: 400, nothing made.
    let body = json!({"id": "evt_forged", "type": "checkout.session.completed",
        "data": {"object": completed(&session.id, &reference, "sub_1")}})
    .to_string();
    let forged = micro_billing::stripe::sign(body.as_bytes(), b"whsec_not_ours", now());
    assert_eq!(post_event(&t, body.as_bytes(), &forged).0, 400);
    let stale = micro_billing::stripe::sign(body.as_bytes(), SECRET.as_bytes(), now() - 600);
    assert_eq!(post_event(&t, body.as_bytes(), &stale).0, 400);
    let good = micro_billing::stripe::sign(body.as_bytes(), SECRET.as_bytes(), now());
    let tampered = body.replace("sub_1", "sub_2");
    assert_eq!(post_event(&t, tampered.as_bytes(), &good).0, 400);
    assert_eq!(post_event(&t, body.as_bytes(), "").0, 400);
    // One announcing more than any event holds is refused before it is read.
    assert_eq!(t.p.announce_body("/hooks/stripe", 3 << 20).0, 413);
    assert!(accounts_named(p, "payer@dev.example").is_empty());

    // Another pending sign-up's session does not pay for this one.
    let other_code = code_for(&t, "other@dev.example", 1);
    let out = pay_later(p, "other@dev.example", &other_code);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = t.stripe.sessions()[1].clone();
    t.stripe.set_subscription("sub_1", "cus_1", "active");
    let (status, _) = event(
        &t,
        "evt_cross",
        "checkout.session.completed",
        completed(&other.id, &reference, "sub_1"),
    );
    assert_eq!(status, 200);
    assert!(accounts_named(p, "payer@dev.example").is_empty());
    assert!(accounts_named(p, "other@dev.example").is_empty());

    // Stripe says it is paid: the account and its namespace, and the waiting CLI logs in.
    let (status, said) = event(
        &t,
        "evt_paid",
        "checkout.session.completed",
        completed(&session.id, &reference, "sub_1"),
    );
    assert_eq!(status, 200, "{said}");
    let out = waiting.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Waiting for the payment"), "{said}");
    assert!(said.contains("Welcome"), "{said}");
    let me: Value =
        serde_json::from_str(&p.ok(&["whoami", "--env", "mine", "-o", "json"])).unwrap();
    assert_eq!(me["role"], "developer");
    let ns = me["namespace"].as_str().unwrap().to_owned();
    assert_eq!(ns.split('-').count(), 3, "{ns}");
    // Seeded from the template: the repo clones, and the namespace is theirs alone.
    let clone = p.work.join("mine-clone");
    p.ok(&["clone", clone.to_str().unwrap(), "--env", "mine"]);
    assert!(clone.join(".git").exists());
    assert!(
        p.fails(&["status", "--env", "mine", "--namespace", "default"])
            .contains("not found")
    );
    let welcome = t.smtp.wait_for_message("payer@dev.example", 2);
    assert!(welcome.contains(&ns), "{welcome}");

    // A redelivery changes nothing; the admin sees the plan and its state.
    let (status, said) = event(
        &t,
        "evt_paid",
        "checkout.session.completed",
        completed(&session.id, &reference, "sub_1"),
    );
    assert_eq!((status, said.trim()), (200, "already applied"));
    let rows = accounts_named(p, "payer@dev.example");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains(&ns) && rows[0].contains("developer") && rows[0].contains("active"),
        "{rows:?}"
    );
    let namespaces = p.ok(&["admin", "namespace", "list"]);
    assert_eq!(namespaces.matches(&ns).count(), 1);
}

#[test]
fn billing_events_suspend_and_resume_a_paid_namespace() {
    let t = start_paid("1s");
    let p = &t.p;
    let code = code_for(&t, "late@dev.example", 1);
    // --no-wait: the URL, then `micro login` once it is paid.
    let out = pay_later(p, "late@dev.example", &code);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("micro login --email late@dev.example"),
        "{said}"
    );
    let login = |p: &Platform| login_as(p, "late@dev.example", "correct horse");
    let first_url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // Signing up again before paying makes nothing twice: the same Checkout Session.
    let code = code_for(&t, "late@dev.example", 2);
    let again = pay_later(p, "late@dev.example", &code);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), first_url);
    assert_eq!(t.stripe.sessions().len(), 1);
    let session = t.stripe.sessions()[0].clone();
    // No account before the payment: the password's owner is told where to pay.
    let out = login(p);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("payment is required") && said.contains(&session.url),
        "{said}"
    );
    let out = login_as(p, "late@dev.example", "not the password");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("wrong email or password"), "{said}");
    t.stripe.set_subscription("sub_9", "cus_9", "active");
    let reference = session.form["client_reference_id"].clone();
    assert_eq!(
        event(
            &t,
            "evt_1",
            "checkout.session.completed",
            completed(&session.id, &reference, "sub_9")
        )
        .0,
        200
    );
    let out = login(p);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = get_text(
        &t,
        &format!("{}/signup/done?session_id={}", t.url, session.id),
    );
    assert!(
        page.contains("micro login --email late@dev.example"),
        "{page}"
    );
    p.ok(&["store", "write", "k", "v", "--env", "mine"]);

    // A failed payment: past due, suspended once the grace period (1 s here) is over.
    t.stripe.set_subscription("sub_9", "cus_9", "past_due");
    let invoice = json!({"id": "in_1", "object": "invoice", "subscription": "sub_9"});
    assert_eq!(
        event(&t, "evt_2", "invoice.payment_failed", invoice.clone()).0,
        200
    );
    p.wait_for("the grace period to end", || {
        !p.micro(&["store", "write", "k2", "v", "--env", "mine"])
            .status
            .success()
    });
    let err = p.fails(&["store", "write", "k2", "v", "--env", "mine"]);
    assert!(err.contains("is suspended: billing"), "{err}");
    assert_eq!(
        p.ok(&["store", "read", "k", "--env", "mine"]).trim(),
        "v",
        "reads stay open"
    );
    let row = accounts_named(p, "late@dev.example").remove(0);
    assert!(
        row.contains("past_due") && row.trim_end().ends_with("billing"),
        "{row}"
    );

    // Paid: resumed. A late copy of the failure (Stripe says active now) changes nothing.
    t.stripe.set_subscription("sub_9", "cus_9", "active");
    assert_eq!(event(&t, "evt_3", "invoice.paid", invoice.clone()).0, 200);
    p.ok(&["store", "write", "k2", "v", "--env", "mine"]);
    assert_eq!(event(&t, "evt_4", "invoice.payment_failed", invoice).0, 200);
    p.ok(&["store", "write", "k3", "v", "--env", "mine"]);

    // The subscription ends: suspended, nothing deleted.
    t.stripe.set_subscription("sub_9", "cus_9", "canceled");
    let sub = json!({"id": "sub_9", "object": "subscription", "status": "canceled"});
    assert_eq!(
        event(&t, "evt_5", "customer.subscription.deleted", sub).0,
        200
    );
    let err = p.fails(&["store", "write", "k4", "v", "--env", "mine"]);
    assert!(err.contains("is suspended: billing"), "{err}");
    assert_eq!(p.ok(&["store", "read", "k3", "--env", "mine"]).trim(), "v");
    assert!(t.stripe.reads().iter().all(|s| s == "sub_9"));
}

/// Moves the server's pending sign-ups `days` into the past.
fn days_go_by(p: &Platform, days: i64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = micro_store::Store::open_sqlite(&p.data.join("store.db"))
            .await
            .unwrap();
        store
            .backdate_pending_signups(days * 24 * 3600 * 1000)
            .await;
    });
}

#[test]
fn a_stale_payment_link_is_not_offered_and_a_sign_up_left_unpaid_is_forgotten() {
    let t = start_paid("1s");
    let p = &t.p;
    let signup = |nth_mail: usize| {
        let code = code_for(&t, "idle@dev.example", nth_mail);
        let out = pay_later(p, "idle@dev.example", &code);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let login = || {
        let out = login_as(p, "idle@dev.example", "correct horse");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = signup(1);
    assert!(login().contains(&first));

    // A day on, Stripe has let that Checkout Session expire: its link is not offered.
    days_go_by(p, 1);
    let said = login();
    assert!(
        said.contains("payment link has expired") && said.contains("micro signup"),
        "{said}"
    );
    assert!(!said.contains(&first), "{said}");
    // Whoever lacks the password learns nothing of the sign-up.
    let out = login_as(p, "idle@dev.example", "a guess");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("wrong email or password"), "{said}");
    // Signing up again makes a new one, which login offers.
    let second = signup(2);
    assert_ne!(second, first);
    assert_eq!(t.stripe.sessions().len(), 2);
    assert!(login().contains(&second));

    // A week on, the sign-up is forgotten: address and password hash gone, the
    // password finds nothing, and a late event for its session makes no account.
    days_go_by(p, 8);
    p.wait_for("the unpaid sign-up to be forgotten", || {
        login().contains("wrong email or password")
    });
    let session = t.stripe.sessions()[1].clone();
    let reference = session.form["client_reference_id"].clone();
    t.stripe.set_subscription("sub_late", "cus_late", "active");
    let (status, _) = event(
        &t,
        "evt_late",
        "checkout.session.completed",
        completed(&session.id, &reference, "sub_late"),
    );
    assert_eq!(status, 200);
    assert!(accounts_named(p, "idle@dev.example").is_empty());
    // Starting over works as for anyone new.
    let third = signup(3);
    assert!(login().contains(&third));
}

/// Stripe's own `checkout.session` fixture (`billing/fixtures`) as the session of a
/// sign-up, with its `payment_status`.
fn fixture_session(session: &str, reference: &str, payment_status: &str) -> Value {
    fixture_session_of(session, reference, payment_status, "sub_delayed")
}

fn fixture_session_of(
    session: &str,
    reference: &str,
    payment_status: &str,
    subscription: &str,
) -> Value {
    let mut s: Value = serde_json::from_str(include_str!(
        "../../../billing/fixtures/checkout.session.json"
    ))
    .unwrap();
    s["id"] = session.into();
    s["mode"] = "subscription".into();
    s["client_reference_id"] = reference.into();
    s["subscription"] = subscription.into();
    s["customer"] = "cus_1".into();
    s["status"] = "complete".into();
    s["payment_status"] = payment_status.into();
    s
}

/// A delayed payment method (SEPA, ACH): a Checkout completed `unpaid` makes no account;
/// `async_payment_succeeded` makes it; `async_payment_failed` forgets the sign-up and
/// tells the person. Events built from Stripe's own fixture.
#[test]
fn a_delayed_payment_makes_the_account_only_once_it_is_paid() {
    let t = start_paid("7d");
    let p = &t.p;
    t.stripe
        .set_subscription("sub_delayed", "cus_1", "incomplete");
    for (email, settles) in [("sepa@dev.example", true), ("ach@dev.example", false)] {
        let code = code_for(&t, email, 1);
        let out = pay_later(p, email, &code);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let session = t.stripe.sessions().last().unwrap().clone();
        let reference = session.form["client_reference_id"].clone();
        let (status, said) = event(
            &t,
            &format!("evt_done_{email}"),
            "checkout.session.completed",
            fixture_session(&session.id, &reference, "unpaid"),
        );
        assert_eq!(status, 200, "{said}");
        assert!(
            accounts_named(p, email).is_empty(),
            "an unpaid checkout made an account"
        );
        assert!(!login_as(p, email, "correct horse").status.success());
        if settles {
            t.stripe.set_subscription("sub_delayed", "cus_1", "active");
            let (status, said) = event(
                &t,
                &format!("evt_settled_{email}"),
                "checkout.session.async_payment_succeeded",
                fixture_session(&session.id, &reference, "paid"),
            );
            assert_eq!(status, 200, "{said}");
            let rows = accounts_named(p, email);
            assert!(rows.len() == 1 && rows[0].contains("active"), "{rows:?}");
            let welcome = t.smtp.wait_for_message(email, 2);
            assert!(welcome.contains("is ready"), "{welcome}");
        } else {
            let (status, said) = event(
                &t,
                &format!("evt_failed_{email}"),
                "checkout.session.async_payment_failed",
                fixture_session(&session.id, &reference, "unpaid"),
            );
            assert_eq!(status, 200, "{said}");
            assert!(accounts_named(p, email).is_empty());
            let told = t.smtp.wait_for_message(email, 2);
            assert!(told.contains("did not go through"), "{told}");
            // Forgotten: the same address may sign up again from the start.
            let again = code_for(&t, email, 3);
            assert!(!again.is_empty());
        }
    }
    // Settled as the subscription turning active (no async_payment_succeeded seen).
    let email = "becs@dev.example";
    t.stripe
        .set_subscription("sub_later", "cus_2", "incomplete");
    let code = code_for(&t, email, 1);
    assert!(pay_later(p, email, &code).status.success());
    let session = t.stripe.sessions().last().unwrap().clone();
    let reference = session.form["client_reference_id"].clone();
    let (status, said) = event(
        &t,
        "evt_done_becs",
        "checkout.session.completed",
        fixture_session_of(&session.id, &reference, "unpaid", "sub_later"),
    );
    assert_eq!(status, 200, "{said}");
    assert!(accounts_named(p, email).is_empty());
    t.stripe.set_subscription("sub_later", "cus_2", "active");
    let (status, said) = event(
        &t,
        "evt_active_becs",
        "customer.subscription.updated",
        json!({"id": "sub_later", "object": "subscription", "status": "active", "customer": "cus_2"}),
    );
    assert_eq!(status, 200, "{said}");
    let rows = accounts_named(p, email);
    assert!(rows.len() == 1 && rows[0].contains("active"), "{rows:?}");
}
