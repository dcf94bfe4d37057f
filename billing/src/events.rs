//! `POST /hooks/stripe`: billing events, signed with the endpoint's secret. A checked
//! event becomes an account event, which [`Billing`] applies; each event is applied once, and the subscription's state is read from Stripe as it
//! is *now*, so events arriving out of order cannot leave a stale state behind.

use crate::Billing;
use crate::stripe::{self, Meaning};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use micro_store::BillingState;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

/// What a billing event means for an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountEvent {
    /// The Checkout Session `session` of pending sign-up `reference` was paid.
    Paid {
        reference: String,
        session: String,
        customer: String,
        subscription: String,
        state: BillingState,
    },
    /// Sign-up `reference`'s Checkout Session `session` completed, its payment (for
    /// `subscription`) still settling.
    Awaiting {
        reference: String,
        session: String,
        subscription: String,
    },
    /// The delayed payment for sign-up `reference`'s Checkout Session `session` failed.
    PaymentFailed { reference: String, session: String },
    /// A paid namespace's subscription is now in `state`.
    Changed {
        subscription: String,
        customer: String,
        state: BillingState,
    },
}

/// What the billing endpoint needs.
#[derive(Clone)]
pub struct BillingHook {
    pub secret: Arc<[u8]>,
    /// Applies account events; an error makes Stripe deliver the event again.
    pub billing: Billing,
}

/// Largest event accepted: axum's default, applied to what a sender announces too.
const EVENT_LIMIT: usize = 2 << 20;

pub fn router(state: BillingHook) -> Router {
    Router::new()
        .route("/hooks/stripe", post(receive))
        // Stripe's events are a few kilobytes; one announcing more is refused unread.
        .layer(RequestBodyLimitLayer::new(EVENT_LIMIT))
        .with_state(state)
}

fn answer(status: StatusCode, text: &str) -> (StatusCode, String) {
    (status, format!("{text}\n"))
}

async fn receive(
    State(hook): State<BillingHook>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = micro_store::now_millis() / 1000;
    if let Err(e) = stripe::verify(signature, &body, &hook.secret, now, stripe::TOLERANCE_SECS) {
        tracing::warn!(error = %e, "billing event refused");
        return answer(StatusCode::BAD_REQUEST, &format!("refused: {e}"));
    }
    let event = match stripe::parse(&body) {
        Ok(event) => event,
        Err(e) => return answer(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let span = tracing::info_span!("billing event", id = %event.id, kind = %event.kind);
    match apply(&hook, &event).instrument(span).await {
        Ok(said) => answer(StatusCode::OK, said),
        Err(e) => {
            tracing::warn!(error = %e, "billing event not applied; Stripe will deliver it again");
            answer(StatusCode::INTERNAL_SERVER_ERROR, "not applied; try again")
        }
    }
}

async fn apply(hook: &BillingHook, event: &stripe::Event) -> Result<&'static str, String> {
    let store = &hook.billing.store;
    let stripe = &hook.billing.plan.stripe;
    if store
        .billing_event_seen(&event.id)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok("already applied");
    }
    let account_event = match &event.meaning {
        Meaning::Ignored => None,
        Meaning::CheckoutCompleted {
            reference,
            session,
            subscription,
        } => {
            let now = stripe
                .subscription(subscription)
                .await
                .map_err(|e| e.to_string())?;
            Some(AccountEvent::Paid {
                reference: reference.clone(),
                session: session.clone(),
                customer: now.customer,
                subscription: subscription.clone(),
                // A completed checkout whose first invoice is still settling counts as paid.
                state: stripe::state_of(&now.status).unwrap_or(BillingState::Active),
            })
        }
        Meaning::CheckoutAwaiting {
            reference,
            session,
            subscription,
        } => {
            tracing::info!(reference, "checkout completed, its payment still settling");
            Some(AccountEvent::Awaiting {
                reference: reference.clone(),
                session: session.clone(),
                subscription: subscription.clone(),
            })
        }
        Meaning::CheckoutFailed { reference, session } => Some(AccountEvent::PaymentFailed {
            reference: reference.clone(),
            session: session.clone(),
        }),
        Meaning::SubscriptionChanged { subscription } => {
            let now = stripe
                .subscription(subscription)
                .await
                .map_err(|e| e.to_string())?;
            stripe::state_of(&now.status).map(|state| AccountEvent::Changed {
                subscription: subscription.clone(),
                customer: now.customer,
                state,
            })
        }
    };
    let said = match account_event {
        Some(e) => {
            hook.billing.apply(e).await.map_err(|e| e.to_string())?;
            "applied"
        }
        None => "ignored",
    };
    store
        .record_billing_event(&event.id, &event.kind)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(said, "billing event");
    Ok(said)
}
