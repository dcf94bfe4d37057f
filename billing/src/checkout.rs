//! Paid mode's front half: a Checkout Session for each verified sign-up, and what the
//! owner of an unpaid one is told.

use crate::BillingError;
use crate::stripe::{CheckoutRequest, StripeApi};
use micro_store::{Store, Unpaid};
use std::sync::Arc;
use std::time::Duration;

/// What paid mode needs.
#[derive(Clone)]
pub struct PaidPlan {
    pub stripe: StripeApi,
    /// How long a past-due namespace keeps running.
    pub grace: Duration,
    /// Activations one at a time, so a redelivered event cannot make two namespaces.
    pub(crate) activation: Arc<tokio::sync::Mutex<()>>,
}

/// Where a verified sign-up pays, and the claim its CLI polls with.
#[derive(Clone, Debug)]
pub struct Payment {
    pub checkout_url: String,
    pub claim: String,
}

/// A Checkout Session older than this may have expired (Stripe's default is 24 hours):
/// a sign-up started again gets a new one.
const CHECKOUT_REUSE_MS: i64 = 23 * 3600 * 1000;

/// Unpaid sign-ups are forgotten this long after their checkout was made: past the day a
/// Checkout Session lives and the three days Stripe retries a completed one's webhook.
pub const UNPAID_SIGNUP_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether a Checkout Session made at `made_at` (ms) can still be paid.
fn payable(made_at: i64) -> bool {
    micro_store::now_millis() - made_at < CHECKOUT_REUSE_MS
}

/// What the owner of an unpaid sign-up is told at login: where to pay while its link can
/// still work, else how to get a new one.
pub fn payment_required(unpaid: &Unpaid) -> String {
    match &unpaid.checkout_url {
        Some(url) if payable(unpaid.since) => format!(
            "payment is required: finish it at {url} (or `micro signup` again for a new link)"
        ),
        _ => "payment is required: this sign-up's payment link has expired; `micro signup` again for a new one".into(),
    }
}

impl PaidPlan {
    pub fn new(stripe: StripeApi, grace: Duration) -> Self {
        PaidPlan {
            stripe,
            grace,
            activation: Arc::default(),
        }
    }

    /// Past due since this time (ms) or earlier: the grace period is over.
    pub(crate) fn grace_ends_before(&self) -> i64 {
        let grace = i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
        micro_store::now_millis().saturating_sub(grace)
    }

    /// After a verified code: the pending sign-up, and where to pay for it (a session
    /// made before is given again while it can still be paid). `public_url` is where
    /// Stripe sends the payer back.
    pub async fn start_checkout(
        &self,
        store: &Store,
        public_url: &str,
        email: &str,
        password_hash: &str,
    ) -> Result<Payment, BillingError> {
        let (pending, claim) = store.put_pending_signup(email, password_hash).await?;
        let checkout_url = match (&pending.checkout_session, &pending.checkout_url) {
            (Some(_), Some(url)) if payable(pending.created_at) => url.clone(),
            _ => {
                let request = CheckoutRequest {
                    reference: pending.id.clone(),
                    // When its last session was made: a new session past that one's life.
                    attempt: pending.created_at.to_string(),
                    email: email.to_owned(),
                    // Stripe fills in {CHECKOUT_SESSION_ID}.
                    success_url: format!(
                        "{public_url}/signup/done?session_id={{CHECKOUT_SESSION_ID}}"
                    ),
                    cancel_url: format!("{public_url}/signup/cancelled"),
                };
                let session = self.stripe.create_checkout(&request).await?;
                store
                    .set_pending_checkout(&pending.id, &session.id, &session.url)
                    .await?;
                session.url
            }
        };
        tracing::info!("checkout started");
        Ok(Payment {
            checkout_url,
            claim,
        })
    }
}
