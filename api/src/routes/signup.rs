//! Self-service sign-up: an email, a password, a six-digit code by mail, then (open mode)
//! an account with a namespace of its own. Every step is rate-limited per client address,
//! and every answer is the same whether or not the address has an account.

use crate::extract::Caller;
use crate::serve::Client;
use crate::types::{
    MailView, SignupClaim, SignupDone, SignupMode, SignupPayment, SignupRequest, SignupResult,
    SignupStarted, SignupVerify,
};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use micro_store::{Account, CodeCheck, CodeRequest, Role};

/// How long a token from a sign-up lives (as one from `micro login`).
const TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// Tries at a free namespace name before giving up.
const NAME_TRIES: usize = 50;

/// Whether anyone may sign up here: what `micro signup` asks before it asks anything.
pub async fn open(
    State(state): State<ApiState>,
) -> Result<Json<crate::types::SignupOpen>, ApiError> {
    open_only(&state)?;
    Ok(Json(crate::types::SignupOpen { mode: state.signup }))
}

pub(crate) fn open_only(state: &ApiState) -> Result<(), ApiError> {
    match (state.signup, &state.paid) {
        (SignupMode::Closed, _) => Err(ApiError::Forbidden(
            "sign-up is closed on this platform: ask its admin for an account".into(),
        )),
        (SignupMode::Paid, None) => Err(ApiError::Unavailable(
            "paid sign-up is not set up on this server: ask its admin".into(),
        )),
        _ => Ok(()),
    }
}

fn limited(state: &ApiState, client: &Client) -> Result<(), ApiError> {
    state.address_limiter.check_key(client).map_err(|_| {
        ApiError::TooMany("too many requests from your address; try again in a minute".into())
    })
}

/// The bound on polls while a payment is confirmed.
pub(crate) fn polled(state: &ApiState, client: &Client) -> Result<(), ApiError> {
    state.poll_limiter.check_key(client).map_err(|_| {
        ApiError::TooMany("too many requests from your address; try again in a minute".into())
    })
}

/// Step 1: sends a code to the address (or, if it has an account, a notice instead).
pub async fn start(
    State(state): State<ApiState>,
    client: Client,
    Json(body): Json<SignupRequest>,
) -> Result<(StatusCode, Json<SignupStarted>), ApiError> {
    let message = begin(&state, &client, &body.email, &body.password).await?;
    Ok((StatusCode::ACCEPTED, Json(SignupStarted { message })))
}

/// Step 2: the code; in open mode the account and its namespace are made at once, in
/// paid mode the answer says where to pay.
pub async fn verify(
    State(state): State<ApiState>,
    client: Client,
    Json(body): Json<SignupVerify>,
) -> Result<(StatusCode, Json<SignupResult>), ApiError> {
    let result = finish(&state, &client, &body.email, &body.code).await?;
    let status = match result {
        SignupResult::Active(_) => StatusCode::CREATED,
        _ => StatusCode::ACCEPTED,
    };
    Ok((status, Json(result)))
}

/// Step 3 (paid): the token, once the payment is confirmed; the claim works once.
pub async fn claim(
    State(state): State<ApiState>,
    client: Client,
    Json(body): Json<SignupClaim>,
) -> Result<(StatusCode, Json<SignupResult>), ApiError> {
    polled(&state, &client)?;
    let unknown = || ApiError::NotFound("that sign-up (or it was claimed already)".into());
    let pending = state
        .store
        .pending_by_claim(body.claim.trim())
        .await?
        .ok_or_else(unknown)?;
    let Some(namespace) = pending.namespace else {
        return Ok((StatusCode::ACCEPTED, Json(SignupResult::Waiting)));
    };
    if !state.store.spend_claim(body.claim.trim()).await? {
        return Err(unknown());
    }
    let account = state
        .store
        .account_by_email(&pending.email)
        .await?
        .ok_or_else(unknown)?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResult::Active(
            signed_in(&state, &account, namespace).await?,
        )),
    ))
}

/// Sends the code (or the notice); what to tell the user, the same either way.
pub(crate) async fn begin(
    state: &ApiState,
    client: &Client,
    email: &str,
    password: &str,
) -> Result<String, ApiError> {
    open_only(state)?;
    limited(state, client)?;
    let email = email.trim().to_lowercase();
    crate::routes::admin::check_new_account(&email, password)?;
    let existing = state.store.account_by_email(&email).await?.is_some();
    // By invitation: an address nobody invited gets the answer anyone gets, and no mail
    // (whether an address is invited is not told).
    let said = format!("a code is on its way to {email}: it works for 15 minutes");
    if state.signup == SignupMode::Invite && !existing && !state.store.is_invited(&email).await? {
        tracing::info!("sign-up asked for by an address not invited");
        return Ok(said);
    }
    match state.store.request_code(&email, password, existing).await? {
        CodeRequest::Limited => {
            return Err(ApiError::TooMany(format!(
                "{email} was sent its limit of codes for now; use the last one, or try again in an hour"
            )));
        }
        CodeRequest::Send(code) if !existing => {
            let text = format!(
                "Your code for signing up to micro is {code}.\n\nIt works once, for 15 minutes. \
                 If you did not ask for it, ignore this mail.\n"
            );
            state
                .mailer
                .send(&state.store, &email, "Your micro sign-up code", &text)
                .await?;
        }
        CodeRequest::Send(_) => {
            let text = "Someone, perhaps you, asked to sign up to micro with this address, \
                        which already has an account: `micro login` gets you in. \
                        If it was not you, ignore this mail.\n";
            state
                .mailer
                .send(&state.store, &email, "Your micro sign-up", text)
                .await?;
        }
    }
    tracing::info!("sign-up code requested");
    Ok(said)
}

/// Checks the code and makes the account with its namespace.
pub(crate) async fn finish(
    state: &ApiState,
    client: &Client,
    email: &str,
    code: &str,
) -> Result<SignupResult, ApiError> {
    open_only(state)?;
    limited(state, client)?;
    let email = email.trim().to_lowercase();
    let wrong = || {
        ApiError::BadRequest(
            "wrong or expired code (5 tries per code; `micro signup` again sends a new one)".into(),
        )
    };
    // An invitation revoked after its code was sent: the code no longer works.
    if state.signup == SignupMode::Invite && !state.store.is_invited(&email).await? {
        return Err(wrong());
    }
    let CodeCheck::Verified { password_hash } = state.store.check_code(&email, code).await? else {
        return Err(wrong());
    };
    if let Some(plan) = &state.paid {
        let payment = plan
            .start_checkout(&state.store, &state.public_url, &email, &password_hash)
            .await?;
        return Ok(SignupResult::Payment(SignupPayment {
            email,
            checkout_url: payment.checkout_url,
            claim: payment.claim,
        }));
    }
    let (account, namespace) = new_developer(state, &email, &password_hash).await?;
    tracing::info!(namespace, "signed up");
    Ok(SignupResult::Active(
        signed_in(state, &account, namespace).await?,
    ))
}

/// A developer account with a namespace of its own and the password its sign-up
/// verified (already hashed): how sign-up ends, open or paid.
async fn new_developer(
    state: &ApiState,
    email: &str,
    password_hash: &str,
) -> Result<(Account, String), ApiError> {
    let namespace = new_namespace(state).await?;
    let account = state
        .store
        .create_account(email, Role::Developer, Some(&namespace))
        .await?;
    // Used up (there is one only while sign-up is by invitation).
    state.store.revoke_invite(email).await?;
    state
        .store
        .set_password_hash(&account, password_hash)
        .await?;
    Ok((account, namespace))
}

/// Paid mode makes accounts through the API, which owns sign-up: once Stripe says a
/// sign-up is paid, billing asks for the account and its welcome mail.
#[async_trait::async_trait]
impl micro_billing::Accounts for ApiState {
    async fn open(
        &self,
        email: &str,
        password_hash: &str,
    ) -> Result<String, micro_billing::BillingError> {
        new_developer(self, email, password_hash)
            .await
            .map(|(_, namespace)| namespace)
            .map_err(|e| micro_billing::BillingError::Accounts(e.to_string()))
    }

    async fn payment_failed(&self, email: &str) {
        let text = format!(
            "The payment for your micro sign-up did not go through, so no account was made and what you gave us was forgotten.\n\nTo try again, sign up anew: {url}/signup (or `micro signup`).\n",
            url = self.public_url,
        );
        if let Err(e) = self
            .mailer
            .send(
                &self.store,
                email,
                "Your micro sign-up's payment failed",
                &text,
            )
            .await
        {
            tracing::warn!(error = %e, "payment-failed mail not sent");
        }
    }

    async fn welcome(&self, email: &str, namespace: &str) {
        let text = format!(
            "Your micro namespace {namespace} is ready.\n\nOn your machine:\n  {add} && micro env set mine\n  micro login --email {email}\n",
            add = self.env_add_command("mine"),
        );
        // The account exists whatever the mail does; a failed mail is logged, not retried.
        if let Err(e) = self
            .mailer
            .send(&self.store, email, "Your micro namespace is ready", &text)
            .await
        {
            tracing::warn!(error = %e, "welcome mail not sent");
        }
    }
}

/// What the CLI gets at the end of a sign-up: a token for the new account.
async fn signed_in(
    state: &ApiState,
    account: &Account,
    namespace: String,
) -> Result<SignupDone, ApiError> {
    let token = state
        .store
        .mint_token_for(account, "micro signup", Some(TOKEN_TTL))
        .await?;
    Ok(SignupDone {
        email: account.email.clone(),
        namespace,
        token,
    })
}

/// A namespace with a fresh readable name, made the one way namespaces are made.
async fn new_namespace(state: &ApiState) -> Result<String, ApiError> {
    for _ in 0..NAME_TRIES {
        let name = crate::names::random_name();
        match crate::namespaces::create(state, &name).await {
            Ok(()) => return Ok(name),
            Err(ApiError::Conflict(_)) if state.store.namespace_exists(&name).await? => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Unavailable(
        "no free namespace name found; try again".into(),
    ))
}

/// `micro admin outbox`: mail the platform did not send by SMTP.
pub async fn outbox(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<MailView>>, ApiError> {
    if caller.role != Role::Admin {
        return Err(ApiError::NotFound("route".into()));
    }
    let mail = state.store.outbox(200).await?;
    Ok(Json(
        mail.into_iter()
            .map(|m| MailView {
                to: m.recipient,
                subject: m.subject,
                body: m.body,
                at: m.created_at,
            })
            .collect(),
    ))
}
