//! The sign-up web page: a plain HTML form that works without JavaScript and reads on a
//! phone, for people who would rather not install the CLI first. Same steps, same rules
//! and limits as `micro signup` (it calls the same code).

use crate::serve::Client;
use crate::types::SignupResult;
use crate::{ApiError, ApiState};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct StartForm {
    email: String,
    password: String,
    again: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    email: String,
    code: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · micro</title><style>body{{font-family:system-ui,sans-serif;max-width:28em;\
         margin:2em auto;padding:0 1em;line-height:1.5}}label,input,button{{display:block;width:100%;\
         font-size:1.1em;box-sizing:border-box}}input{{margin:.2em 0 1em;padding:.4em}}\
         button{{padding:.5em}}.error{{color:#a00}}code{{word-break:break-all}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>\n",
        title = escape(title)
    );
    (status, Html(html)).into_response()
}

fn error_line(e: &ApiError) -> String {
    format!(
        "<p class=\"error\" role=\"alert\">{}</p>",
        escape(&e.to_string())
    )
}

fn start_form(email: &str, error: Option<&ApiError>) -> String {
    format!(
        "{}<form method=\"post\" action=\"/signup\">\
         <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" \
         autocomplete=\"email\" required value=\"{}\">\
         <label for=\"password\">Password (8 characters or more)</label><input id=\"password\" \
         name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" required>\
         <label for=\"again\">Password again</label><input id=\"again\" name=\"again\" \
         type=\"password\" autocomplete=\"new-password\" minlength=\"8\" required>\
         <button type=\"submit\">Send me a code</button></form>",
        error.map(error_line).unwrap_or_default(),
        escape(email)
    )
}

fn code_form(email: &str, said: &str, error: Option<&ApiError>) -> String {
    format!(
        "{}<p>{}</p><form method=\"post\" action=\"/signup/verify\">\
         <input type=\"hidden\" name=\"email\" value=\"{}\">\
         <label for=\"code\">Code from the mail</label><input id=\"code\" name=\"code\" \
         inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" required>\
         <button type=\"submit\">Create my account</button></form>",
        error.map(error_line).unwrap_or_default(),
        escape(said),
        escape(email)
    )
}

/// `GET /signup`.
pub async fn form(State(state): State<ApiState>) -> Response {
    if let Err(e) = super::signup::open_only(&state) {
        return page(e.status(), "Sign up", &error_line(&e));
    }
    page(StatusCode::OK, "Sign up", &start_form("", None))
}

/// `POST /signup`: sends the code, then asks for it.
pub async fn start(
    State(state): State<ApiState>,
    client: Client,
    Form(f): Form<StartForm>,
) -> Response {
    if f.password != f.again {
        let e = ApiError::BadRequest("the two passwords differ".into());
        return page(
            StatusCode::BAD_REQUEST,
            "Sign up",
            &start_form(&f.email, Some(&e)),
        );
    }
    match super::signup::begin(&state, &client, &f.email, &f.password).await {
        Ok(said) => page(
            StatusCode::OK,
            "Check your mail",
            &code_form(&f.email.trim().to_lowercase(), &said, None),
        ),
        Err(e) => page(e.status(), "Sign up", &start_form(&f.email, Some(&e))),
    }
}

/// What to type to start, once the namespace exists.
fn welcome(state: &ApiState, namespace: &str, email: &str) -> String {
    format!(
        "<p>Your namespace <strong>{ns}</strong> is ready. On your machine:</p>\
         <pre><code>{add} &amp;&amp; micro env set mine\nmicro login --email {email}</code></pre>\
         <p>Then <code>micro new hello &amp;&amp; micro run ./hello --wait</code>.</p>",
        ns = escape(namespace),
        add = escape(&state.env_add_command("mine")),
        email = escape(email),
    )
}

/// `POST /signup/verify`: makes the account and says how to start (open), or sends the
/// browser on to pay (paid).
pub async fn verify(
    State(state): State<ApiState>,
    client: Client,
    Form(f): Form<CodeForm>,
) -> Response {
    match super::signup::finish(&state, &client, &f.email, &f.code).await {
        Ok(SignupResult::Active(done)) => page(
            StatusCode::CREATED,
            "Welcome",
            &welcome(&state, &done.namespace, &done.email),
        ),
        Ok(SignupResult::Payment(pay)) => Redirect::to(&pay.checkout_url).into_response(),
        Ok(SignupResult::Waiting) => page(
            StatusCode::ACCEPTED,
            "Almost there",
            "<p>Waiting for the payment.</p>",
        ),
        Err(e) => page(
            e.status(),
            "Check your mail",
            &code_form(&f.email, "Enter the code from the mail.", Some(&e)),
        ),
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    session_id: String,
}

/// `GET /signup/done?session_id=…`: where Stripe sends the payer back. It shows how to
/// start once the payment is confirmed, and refreshes itself until then (no JavaScript).
pub async fn done(
    State(state): State<ApiState>,
    client: Client,
    Query(q): Query<DoneQuery>,
) -> Response {
    if let Err(e) = super::signup::polled(&state, &client) {
        return page(e.status(), "Payment", &error_line(&e));
    }
    let found = match state.store.pending_by_checkout(q.session_id.trim()).await {
        Ok(found) => found,
        Err(e) => {
            let e = ApiError::from(e);
            return page(e.status(), "Payment", &error_line(&e));
        }
    };
    match found {
        Some(p) => match p.namespace {
            Some(ns) => page(StatusCode::OK, "Welcome", &welcome(&state, &ns, &p.email)),
            None => {
                let html = "<meta http-equiv=\"refresh\" content=\"3\">\
                     <p>Thank you. Your payment is being confirmed; this page refreshes \
                     until your namespace is ready (usually a few seconds).</p>";
                page(StatusCode::ACCEPTED, "Almost there", html)
            }
        },
        None => {
            let e = ApiError::NotFound("that payment".into());
            page(e.status(), "Payment", &error_line(&e))
        }
    }
}

/// `GET /signup/cancelled`: the payer went back from Checkout.
pub async fn cancelled() -> Response {
    page(
        StatusCode::OK,
        "Payment cancelled",
        "<p>Nothing was charged and no account was made.</p>\
         <p><a href=\"/signup\">Start again</a> whenever you like.</p>",
    )
}
