//! The paid plan: a Checkout Session for each verified sign-up, the account and its
//! namespace once Stripe says it is paid, and what a subscription's state does to its
//! namespace: paid → runs (a billing suspension lifted), past due → suspended once the
//! grace period is over, ended → suspended. Nothing is ever deleted.

use crate::types::SignupPayment;
use crate::{ApiError, ApiState};
use futures_util::future::BoxFuture;
use micro_store::{BillingState, Suspension};
use std::sync::Arc;
use std::time::Duration;

/// A Checkout Session to make for one pending sign-up.
#[derive(Clone, Debug)]
pub struct CheckoutOrder {
    pub reference: String,
    /// Which of the sign-up's sessions this is: the same when a request is sent again,
    /// new once the last session may have expired (it keys Stripe's idempotency).
    pub attempt: String,
    pub email: String,
    pub success_url: String,
    pub cancel_url: String,
}

/// A made Checkout Session: its id, and where the payer goes.
#[derive(Clone, Debug)]
pub struct CheckoutLink {
    pub id: String,
    pub url: String,
}

/// Makes a Checkout Session (the Stripe client lives in a crate the API does not use).
pub type CreateCheckout =
    Arc<dyn Fn(CheckoutOrder) -> BoxFuture<'static, Result<CheckoutLink, String>> + Send + Sync>;

/// What paid mode needs.
#[derive(Clone)]
pub struct PaidPlan {
    pub checkout: CreateCheckout,
    /// How long a past-due namespace keeps running.
    pub grace: Duration,
    /// Activations one at a time, so a redelivered event cannot make two namespaces.
    pub activation: Arc<tokio::sync::Mutex<()>>,
}

impl PaidPlan {
    /// Past due since this time (ms) or earlier: the grace period is over.
    fn grace_ends_before(&self) -> i64 {
        let grace = i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
        micro_store::now_millis().saturating_sub(grace)
    }
}

/// A Checkout Session older than this may have expired (Stripe's default is 24 hours):
/// a sign-up started again gets a new one.
const CHECKOUT_REUSE_MS: i64 = 23 * 3600 * 1000;

/// Whether a Checkout Session made at `made_at` (ms) can still be paid.
fn payable(made_at: i64) -> bool {
    micro_store::now_millis() - made_at < CHECKOUT_REUSE_MS
}

/// Unpaid sign-ups are forgotten this long after their checkout was made: past the day a
/// Checkout Session lives and the three days Stripe retries a completed one's webhook.
pub const UNPAID_SIGNUP_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the owner of an unpaid sign-up is told at login: where to pay while its link can
/// still work, else how to get a new one.
pub(crate) fn payment_required(unpaid: &micro_store::Unpaid) -> ApiError {
    ApiError::PaymentRequired(match &unpaid.checkout_url {
        Some(url) if payable(unpaid.since) => format!(
            "payment is required: finish it at {url} (or `micro signup` again for a new link)"
        ),
        _ => "payment is required: this sign-up's payment link has expired; `micro signup` again for a new one".into(),
    })
}

/// After a verified code (paid mode): the pending sign-up and where to pay for it.
pub(crate) async fn start_checkout(
    state: &ApiState,
    plan: &PaidPlan,
    email: &str,
    password_hash: &str,
) -> Result<SignupPayment, ApiError> {
    let (pending, claim) = state.store.put_pending_signup(email, password_hash).await?;
    let checkout_url = match (&pending.checkout_session, &pending.checkout_url) {
        (Some(_), Some(url)) if payable(pending.created_at) => url.clone(),
        _ => {
            let order = CheckoutOrder {
                reference: pending.id.clone(),
                // When its last session was made: a new session past that one's life.
                attempt: pending.created_at.to_string(),
                email: email.to_owned(),
                // Stripe fills in {CHECKOUT_SESSION_ID}.
                success_url: format!(
                    "{}/signup/done?session_id={{CHECKOUT_SESSION_ID}}",
                    state.public_url
                ),
                cancel_url: format!("{}/signup/cancelled", state.public_url),
            };
            let link = (plan.checkout)(order).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot create a Checkout Session");
                ApiError::Unavailable(
                    "the payment provider cannot be reached just now; try again in a minute".into(),
                )
            })?;
            state
                .store
                .set_pending_checkout(&pending.id, &link.id, &link.url)
                .await?;
            link.url
        }
    };
    tracing::info!("checkout started");
    Ok(SignupPayment {
        email: email.to_owned(),
        checkout_url,
        claim,
    })
}

/// `checkout.session.completed`: makes the account and its namespace, once, for the
/// pending sign-up the session was made for (a session of another sign-up is refused).
pub async fn paid(
    state: &ApiState,
    reference: &str,
    session: &str,
    customer: &str,
    subscription: &str,
    billing: BillingState,
) -> Result<(), ApiError> {
    let Some(plan) = &state.paid else {
        tracing::warn!("a paid checkout, but this server does not take payments; ignored");
        return Ok(());
    };
    let _one_at_a_time = plan.activation.lock().await;
    let Some(pending) = state.store.pending_signup(reference).await? else {
        tracing::warn!(reference, "a paid checkout for no pending sign-up; ignored");
        return Ok(());
    };
    if pending.checkout_session.as_deref() != Some(session) {
        tracing::warn!(
            reference,
            session,
            "a paid checkout that was not made for this sign-up; ignored"
        );
        return Ok(());
    }
    if pending.namespace.is_some() {
        return Ok(());
    }
    if state
        .store
        .account_by_email(&pending.email)
        .await?
        .is_some()
    {
        tracing::warn!(
            reference,
            "paid, but the address has an account already; ignored"
        );
        return Ok(());
    }
    let (_, namespace) =
        crate::routes::new_developer(state, &pending.email, &pending.password_hash).await?;
    let record = state
        .store
        .set_billing(&namespace, customer, subscription, billing)
        .await?;
    state
        .store
        .finish_pending_signup(&pending.id, &namespace)
        .await?;
    tracing::info!(namespace, "paid sign-up activated");
    enforce(state, plan, &record).await?;
    let text = format!(
        "Your micro namespace {namespace} is ready.\n\nOn your machine:\n  micro env add mine {url} && micro env set mine\n  micro login --email {email}\n",
        url = state.public_url,
        email = pending.email,
    );
    // The account exists whatever the mail does; a failed mail is logged, not retried.
    if let Err(e) = state
        .mailer
        .send(
            &state.store,
            &pending.email,
            "Your micro namespace is ready",
            &text,
        )
        .await
    {
        tracing::warn!(error = %e, "welcome mail not sent");
    }
    Ok(())
}

/// A subscription's current state (read from Stripe when an event about it arrived).
pub async fn changed(
    state: &ApiState,
    subscription: &str,
    customer: &str,
    billing: BillingState,
) -> Result<(), ApiError> {
    let Some(plan) = &state.paid else {
        return Ok(());
    };
    // Before its checkout is applied, a subscription has no namespace yet; the checkout
    // reads its state itself.
    let Some(known) = state.store.billing_by_subscription(subscription).await? else {
        return Ok(());
    };
    let record = state
        .store
        .set_billing(&known.namespace, customer, subscription, billing)
        .await?;
    tracing::info!(namespace = %record.namespace, state = billing.as_str(), "subscription changed");
    enforce(state, plan, &record).await
}

/// What a subscription's state does to its namespace.
async fn enforce(
    state: &ApiState,
    plan: &PaidPlan,
    record: &micro_store::Billing,
) -> Result<(), ApiError> {
    let ns = &record.namespace;
    match record.state {
        BillingState::Active => {
            crate::suspension::resume(state, ns, Some(Suspension::Billing)).await?;
        }
        BillingState::PastDue => {
            let since = record
                .past_due_since
                .unwrap_or_else(micro_store::now_millis);
            if since <= plan.grace_ends_before() {
                crate::suspension::suspend(state, ns, Suspension::Billing).await?;
            }
        }
        BillingState::Canceled => {
            crate::suspension::suspend(state, ns, Suspension::Billing).await?;
        }
    }
    Ok(())
}

/// Suspends namespaces whose grace period ran out, and forgets sign-ups left unpaid for
/// [`UNPAID_SIGNUP_KEPT`], every `every`.
pub async fn sweep_grace(state: ApiState, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(plan) = &state.paid else { return };
        forget_unpaid(&state).await;
        match state.store.overdue(plan.grace_ends_before()).await {
            Ok(namespaces) => {
                for ns in namespaces {
                    if let Err(e) =
                        crate::suspension::suspend(&state, &ns, Suspension::Billing).await
                    {
                        tracing::warn!(namespace = %ns, error = %e, "cannot suspend");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read past-due namespaces"),
        }
    }
}

async fn forget_unpaid(state: &ApiState) {
    let kept = i64::try_from(UNPAID_SIGNUP_KEPT.as_millis()).unwrap_or(i64::MAX);
    let before = micro_store::now_millis().saturating_sub(kept);
    match state.store.forget_unpaid_signups(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "forgot sign-ups left unpaid"),
        Err(e) => tracing::warn!(error = %e, "cannot forget unpaid sign-ups"),
    }
}
