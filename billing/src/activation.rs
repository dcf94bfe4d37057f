//! Paid mode's back half: the account and its namespace once Stripe says a sign-up is
//! paid, and what a subscription's state does to its namespace: paid → runs (a billing
//! suspension lifted), past due → suspended once the grace period is over, ended →
//! suspended. Nothing is ever deleted.

use crate::BillingError;
use crate::checkout::{PaidPlan, UNPAID_SIGNUP_KEPT};
use crate::events::AccountEvent;
use crate::suspension::Suspensions;
use micro_store::{BillingState, Store, Suspension};
use std::sync::Arc;
use std::time::Duration;

/// Who makes accounts (the API, which owns sign-up): billing decides when, not how.
#[async_trait::async_trait]
pub trait Accounts: Send + Sync {
    /// Makes a developer account with this password hash, and its namespace; the
    /// namespace's name.
    async fn open(&self, email: &str, password_hash: &str) -> Result<String, BillingError>;
    /// Tells the new account's owner their namespace is ready (a failed mail is theirs
    /// to log: the account exists whatever the mail does).
    async fn welcome(&self, email: &str, namespace: &str);
    /// Tells someone whose sign-up's payment failed that it was forgotten, and how to
    /// start again.
    async fn payment_failed(&self, email: &str);
}

/// What applies account events and sweeps past-due namespaces.
#[derive(Clone)]
pub struct Billing {
    pub store: Store,
    pub plan: PaidPlan,
    pub suspensions: Suspensions,
    pub accounts: Arc<dyn Accounts>,
}

impl Billing {
    /// Applies one account event; an error makes Stripe deliver it again.
    pub async fn apply(&self, event: AccountEvent) -> Result<(), BillingError> {
        match event {
            AccountEvent::Paid {
                reference,
                session,
                customer,
                subscription,
                state,
            } => {
                self.paid(&reference, &session, &customer, &subscription, state)
                    .await
            }
            AccountEvent::Changed {
                subscription,
                customer,
                state,
            } => self.changed(&subscription, &customer, state).await,
            AccountEvent::PaymentFailed { reference, session } => {
                self.payment_failed(&reference, &session).await
            }
            AccountEvent::Awaiting {
                reference,
                session,
                subscription,
            } => {
                let _one_at_a_time = self.plan.activation.lock().await;
                if let Some(pending) = self.store.pending_signup(&reference).await?
                    && pending.checkout_session.as_deref() == Some(session.as_str())
                {
                    self.store
                        .set_pending_subscription(&pending.id, &subscription)
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// `checkout.session.async_payment_failed`: the sign-up the session was made for is
    /// forgotten (no account was made for it) and its person is told by mail.
    async fn payment_failed(&self, reference: &str, session: &str) -> Result<(), BillingError> {
        let _one_at_a_time = self.plan.activation.lock().await;
        let Some(pending) = self.store.pending_signup(reference).await? else {
            return Ok(());
        };
        if pending.checkout_session.as_deref() != Some(session) || pending.namespace.is_some() {
            return Ok(());
        }
        if self.store.forget_unpaid_signup(&pending.id).await? {
            tracing::info!(reference, "a sign-up's payment failed; forgotten");
            self.accounts.payment_failed(&pending.email).await;
        }
        Ok(())
    }

    /// `checkout.session.completed`: makes the account and its namespace, once, for the
    /// pending sign-up the session was made for (a session of another sign-up is refused).
    async fn paid(
        &self,
        reference: &str,
        session: &str,
        customer: &str,
        subscription: &str,
        billing: BillingState,
    ) -> Result<(), BillingError> {
        let _one_at_a_time = self.plan.activation.lock().await;
        let Some(pending) = self.store.pending_signup(reference).await? else {
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
        if self.store.account_by_email(&pending.email).await?.is_some() {
            tracing::warn!(
                reference,
                "paid, but the address has an account already; ignored"
            );
            return Ok(());
        }
        let namespace = self
            .accounts
            .open(&pending.email, &pending.password_hash)
            .await?;
        let record = self
            .store
            .set_billing(&namespace, customer, subscription, billing)
            .await?;
        self.store
            .finish_pending_signup(&pending.id, &namespace)
            .await?;
        tracing::info!(namespace, "paid sign-up activated");
        self.enforce(&record).await?;
        self.accounts.welcome(&pending.email, &namespace).await;
        Ok(())
    }

    /// A subscription's current state (read from Stripe when an event about it arrived).
    async fn changed(
        &self,
        subscription: &str,
        customer: &str,
        billing: BillingState,
    ) -> Result<(), BillingError> {
        // Before its checkout is applied, a subscription has no namespace yet; the
        // checkout reads its state itself. A delayed payment's subscription turning
        // active pays for the sign-up it was recorded for.
        let Some(known) = self.store.billing_by_subscription(subscription).await? else {
            if billing == BillingState::Active
                && let Some(reference) = self.store.pending_by_subscription(subscription).await?
                && let Some(pending) = self.store.pending_signup(&reference).await?
                && let Some(session) = pending.checkout_session
            {
                return self
                    .paid(&reference, &session, customer, subscription, billing)
                    .await;
            }
            return Ok(());
        };
        let record = self
            .store
            .set_billing(&known.namespace, customer, subscription, billing)
            .await?;
        tracing::info!(namespace = %record.namespace, state = billing.as_str(), "subscription changed");
        self.enforce(&record).await
    }

    /// What a subscription's state does to its namespace.
    async fn enforce(&self, record: &micro_store::Billing) -> Result<(), BillingError> {
        let ns = &record.namespace;
        match record.state {
            BillingState::Active => {
                self.suspensions
                    .resume(ns, Some(Suspension::Billing))
                    .await?;
            }
            BillingState::PastDue => {
                let since = record
                    .past_due_since
                    .unwrap_or_else(micro_store::now_millis);
                if since <= self.plan.grace_ends_before() {
                    self.suspensions.suspend(ns, Suspension::Billing).await?;
                }
            }
            BillingState::Canceled => {
                self.suspensions.suspend(ns, Suspension::Billing).await?;
            }
        }
        Ok(())
    }

    /// Suspends namespaces whose grace period ran out, and forgets sign-ups left unpaid
    /// for [`UNPAID_SIGNUP_KEPT`], every `every`.
    pub async fn sweep(self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.forget_unpaid().await;
            match self.store.overdue(self.plan.grace_ends_before()).await {
                Ok(namespaces) => {
                    for ns in namespaces {
                        if let Err(e) = self.suspensions.suspend(&ns, Suspension::Billing).await {
                            tracing::warn!(namespace = %ns, error = %e, "cannot suspend");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read past-due namespaces"),
            }
        }
    }

    async fn forget_unpaid(&self) {
        let kept = i64::try_from(UNPAID_SIGNUP_KEPT.as_millis()).unwrap_or(i64::MAX);
        let before = micro_store::now_millis().saturating_sub(kept);
        match self.store.forget_unpaid_signups(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "forgot sign-ups left unpaid"),
            Err(e) => tracing::warn!(error = %e, "cannot forget unpaid sign-ups"),
        }
    }
}
