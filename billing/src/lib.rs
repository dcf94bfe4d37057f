//! Billing with Stripe: the `Stripe-Signature` check and what an event means (`stripe`),
//! the REST calls the platform makes (Checkout Sessions, subscriptions), and
//! `POST /hooks/stripe` (`events`), which turns checked events into account events the
//! server applies.
//!
//! It applies nothing to accounts itself and knows no runtime, reconciler or git.

pub mod events;
pub mod stripe;
