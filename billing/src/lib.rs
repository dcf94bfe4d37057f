//! Billing with Stripe, all of it: the `Stripe-Signature` check and what an event means
//! (`stripe`), a Checkout Session per sign-up (`checkout`), `POST /hooks/stripe`
//! (`events`), the account and namespace once paid and what a subscription's state does
//! to its namespace, with the grace sweep (`activation`), and suspensions made visible
//! to git's hook and the reconciler (`suspension`).
//!
//! It knows no runtime, reconciler, git or HTTP API: accounts are made through the
//! [`Accounts`] the API implements, and a changed suspension is told through a callback.

pub mod activation;
pub mod checkout;
pub mod events;
pub mod stripe;
pub mod suspension;

pub use activation::{Accounts, Billing};
pub use checkout::{PaidPlan, Payment, payment_required};
pub use suspension::{Suspensions, refusal};

/// Why billing could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// A write to a suspended namespace: the line it is refused with.
    #[error("{0}")]
    Suspended(String),
    #[error(transparent)]
    Store(#[from] micro_store::StoreError),
    #[error(transparent)]
    Stripe(#[from] stripe::StripeError),
    /// The mark beside a repo could not be written.
    #[error("{0}")]
    Mark(String),
    /// Making the account failed.
    #[error("{0}")]
    Accounts(String),
}

/// The crate's one door to the blocking pool (the marks beside repos are files).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BillingError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BillingError::Mark(format!("a blocking task failed: {e}")))
}
