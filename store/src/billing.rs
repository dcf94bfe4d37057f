//! Paid namespaces: suspension (billing or an admin's hand), the subscription Stripe
//! last reported, sign-ups waiting for their payment, and the billing events already
//! applied (so a redelivered event changes nothing).

use crate::{Store, StoreError, now_millis};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Why a namespace is suspended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suspension {
    /// Unpaid: lifted by a payment (or an admin).
    Billing,
    /// By an admin's hand: lifted by an admin only.
    Admin,
}

impl Suspension {
    pub fn as_str(self) -> &'static str {
        match self {
            Suspension::Billing => "billing",
            Suspension::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "billing" => Ok(Suspension::Billing),
            "admin" => Ok(Suspension::Admin),
            other => Err(StoreError::Corrupt(format!("suspension {other:?}"))),
        }
    }
}

/// Where a paid namespace's subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingState {
    Active,
    /// A payment failed: suspended once the grace period is over, unless paid.
    PastDue,
    /// The subscription ended.
    Canceled,
}

impl BillingState {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingState::Active => "active",
            BillingState::PastDue => "past_due",
            BillingState::Canceled => "canceled",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(BillingState::Active),
            "past_due" => Ok(BillingState::PastDue),
            "canceled" => Ok(BillingState::Canceled),
            other => Err(StoreError::Corrupt(format!("billing state {other:?}"))),
        }
    }
}

/// A paid namespace's subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Billing {
    pub namespace: String,
    pub customer: String,
    pub subscription: String,
    pub state: BillingState,
    /// Since when (ms) it is past due.
    pub past_due_since: Option<i64>,
}

impl Billing {
    fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(Billing {
            namespace: r.try_get("namespace")?,
            customer: r.try_get("customer")?,
            subscription: r.try_get("subscription")?,
            state: BillingState::parse(&r.try_get::<String, _>("state")?)?,
            past_due_since: r.try_get("past_due_since")?,
        })
    }
}

/// An unpaid sign-up, as its password's owner may learn of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpaid {
    /// Where to pay, if a checkout was made.
    pub checkout_url: Option<String>,
    /// When its checkout was made (or, with none, when it was verified), in ms.
    pub since: i64,
}

/// A verified sign-up waiting for its payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSignup {
    /// The Checkout session's client reference.
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub checkout_session: Option<String>,
    pub checkout_url: Option<String>,
    /// Set once paid: the namespace made for it.
    pub namespace: Option<String>,
    pub created_at: i64,
}

impl PendingSignup {
    fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(PendingSignup {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            password_hash: r.try_get("password_hash")?,
            checkout_session: r.try_get("checkout_session")?,
            checkout_url: r.try_get("checkout_url")?,
            namespace: r.try_get("namespace")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

fn claim_digest(claim: &str) -> String {
    hex::encode(Sha256::digest(claim.as_bytes()))
}

impl Store {
    /// Suspends `namespace`; an admin's suspension replaces a billing one, not the other
    /// way round. Whether anything changed.
    pub async fn suspend_namespace(
        &self,
        namespace: &str,
        why: Suspension,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE namespaces SET suspended = $2 WHERE name = $1 \
             AND (suspended IS NULL OR (suspended = 'billing' AND $2 = 'admin'))",
        )
        .bind(namespace)
        .bind(why.as_str())
        .execute(&self.pool)
        .await?;
        self.auth.forget_suspension(namespace);
        Ok(done.rows_affected() > 0)
    }

    /// Lifts a suspension: any (an admin), or only one for `only` (a payment lifts a
    /// billing suspension, never an admin's). Whether anything changed.
    pub async fn resume_namespace(
        &self,
        namespace: &str,
        only: Option<Suspension>,
    ) -> Result<bool, StoreError> {
        let done = match only {
            Some(why) => {
                sqlx::query(
                    "UPDATE namespaces SET suspended = NULL WHERE name = $1 AND suspended = $2",
                )
                .bind(namespace)
                .bind(why.as_str())
                .execute(&self.pool)
                .await?
            }
            None => sqlx::query(
                "UPDATE namespaces SET suspended = NULL WHERE name = $1 AND suspended IS NOT NULL",
            )
            .bind(namespace)
            .execute(&self.pool)
            .await?,
        };
        self.auth.forget_suspension(namespace);
        Ok(done.rows_affected() > 0)
    }

    /// Why `namespace` is suspended, if it is.
    pub async fn suspension(&self, namespace: &str) -> Result<Option<Suspension>, StoreError> {
        if let Some(known) = self.auth.suspension(namespace) {
            return Ok(known);
        }
        let ticket = self.auth.ticket();
        let row = sqlx::query("SELECT suspended FROM namespaces WHERE name = $1")
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await?;
        let suspension = match row.map(|r| r.try_get::<Option<String>, _>("suspended")) {
            Some(Ok(Some(s))) => Some(Suspension::parse(&s)?),
            Some(Err(e)) => return Err(e.into()),
            _ => None,
        };
        self.auth.put_suspension(ticket, namespace, suspension);
        Ok(suspension)
    }

    /// Every suspended namespace and why.
    pub async fn suspended_namespaces(&self) -> Result<Vec<(String, Suspension)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, suspended FROM namespaces WHERE suspended IS NOT NULL ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name")?,
                    Suspension::parse(&r.try_get::<String, _>("suspended")?)?,
                ))
            })
            .collect()
    }

    /// Records what Stripe says of `namespace`'s subscription. Past due keeps the time it
    /// first became so; any other state clears it.
    pub async fn set_billing(
        &self,
        namespace: &str,
        customer: &str,
        subscription: &str,
        state: BillingState,
    ) -> Result<Billing, StoreError> {
        let now = now_millis();
        let since = (state == BillingState::PastDue).then_some(now);
        sqlx::query(
            "INSERT INTO billing (namespace, customer, subscription, state, past_due_since, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (namespace) DO UPDATE SET \
             customer = excluded.customer, subscription = excluded.subscription, state = excluded.state, \
             past_due_since = CASE WHEN excluded.state = 'past_due' \
             THEN COALESCE(billing.past_due_since, excluded.past_due_since) ELSE NULL END, \
             updated_at = excluded.updated_at",
        )
        .bind(namespace)
        .bind(customer)
        .bind(subscription)
        .bind(state.as_str())
        .bind(since)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.billing_of(namespace)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("billing of {namespace} vanished")))
    }

    /// The subscription of a paid namespace.
    pub async fn billing_of(&self, namespace: &str) -> Result<Option<Billing>, StoreError> {
        let row = sqlx::query("SELECT namespace, customer, subscription, state, past_due_since FROM billing WHERE namespace = $1")
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Billing::from_row).transpose()
    }

    /// The paid namespace of a Stripe subscription.
    pub async fn billing_by_subscription(
        &self,
        subscription: &str,
    ) -> Result<Option<Billing>, StoreError> {
        let row = sqlx::query("SELECT namespace, customer, subscription, state, past_due_since FROM billing WHERE subscription = $1")
        .bind(subscription)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Billing::from_row).transpose()
    }

    /// Every paid namespace's subscription.
    pub async fn all_billing(&self) -> Result<Vec<Billing>, StoreError> {
        let rows = sqlx::query("SELECT namespace, customer, subscription, state, past_due_since FROM billing ORDER BY namespace")
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Billing::from_row).collect()
    }

    /// Namespaces past due since `before` (ms) or earlier: their grace is over.
    pub async fn overdue(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT namespace FROM billing WHERE state = 'past_due' AND past_due_since <= $1 \
             ORDER BY namespace",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("namespace").map_err(StoreError::from))
            .collect()
    }

    /// A verified sign-up now waiting for payment, or the one `email` already has (its
    /// password and claim replaced by the newest). Its id, and the claim secret whose
    /// holder may fetch a token once it is paid (only a digest is kept).
    pub async fn put_pending_signup(
        &self,
        email: &str,
        password_hash: &str,
    ) -> Result<(PendingSignup, String), StoreError> {
        let claim = format!("mc_{}", crate::tokens::random_hex(32));
        sqlx::query(
            "INSERT INTO pending_signups (id, email, password_hash, claim_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO UPDATE SET \
             password_hash = excluded.password_hash, claim_hash = excluded.claim_hash",
        )
        .bind(crate::tokens::random_hex(16))
        .bind(email)
        .bind(password_hash)
        .bind(claim_digest(&claim))
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT id, email, password_hash, checkout_session, checkout_url, namespace, created_at FROM pending_signups WHERE email = $1")
        .bind(email)
        .fetch_one(&self.pool)
        .await?;
        Ok((PendingSignup::from_row(&row)?, claim))
    }

    /// The unpaid sign-up of `email`, if it has one whose password is `password` (a miss
    /// costs the same time as a hit, as for logins).
    pub async fn unpaid_signup(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<Unpaid>, StoreError> {
        let row = sqlx::query(
            "SELECT password_hash, checkout_url, created_at FROM pending_signups WHERE email = $1 AND namespace IS NULL",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        let (hash, unpaid) = match &row {
            Some(r) => (
                Some(r.try_get::<String, _>("password_hash")?),
                Some(Unpaid {
                    checkout_url: r.try_get("checkout_url")?,
                    since: r.try_get("created_at")?,
                }),
            ),
            None => (None, None),
        };
        let ok = crate::passwords::verify(password.to_owned(), hash).await;
        Ok(unpaid.filter(|_| ok))
    }

    /// Forgets every sign-up still unpaid whose checkout was made (or, with none, which
    /// was verified) before `before` (ms): its address and password hash are not kept for
    /// someone who never became a customer. Paid ones stay. How many were forgotten.
    pub async fn forget_unpaid_signups(&self, before: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM pending_signups WHERE namespace IS NULL AND created_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// Records the subscription of pending sign-up `id`, whose payment still settles.
    pub async fn set_pending_subscription(
        &self,
        id: &str,
        subscription: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pending_signups SET subscription = $2 WHERE id = $1 AND namespace IS NULL",
        )
        .bind(id)
        .bind(subscription)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unpaid sign-up a subscription was recorded for, by its id.
    pub async fn pending_by_subscription(
        &self,
        subscription: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM pending_signups WHERE subscription = $1 AND namespace IS NULL",
        )
        .bind(subscription)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Forgets pending sign-up `id` if it is still unpaid (its payment failed): whether
    /// it was there to forget.
    pub async fn forget_unpaid_signup(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pending_signups WHERE id = $1 AND namespace IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the Checkout session made for pending sign-up `id`.
    pub async fn set_pending_checkout(
        &self,
        id: &str,
        session: &str,
        url: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pending_signups SET checkout_session = $2, checkout_url = $3, created_at = $4 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(session)
        .bind(url)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A pending sign-up by its client reference.
    pub async fn pending_signup(&self, id: &str) -> Result<Option<PendingSignup>, StoreError> {
        let row = sqlx::query("SELECT id, email, password_hash, checkout_session, checkout_url, namespace, created_at FROM pending_signups WHERE id = $1")
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(PendingSignup::from_row).transpose()
    }

    /// A pending sign-up by its Checkout session (the page Stripe sends the payer back to).
    pub async fn pending_by_checkout(
        &self,
        session: &str,
    ) -> Result<Option<PendingSignup>, StoreError> {
        let row = sqlx::query("SELECT id, email, password_hash, checkout_session, checkout_url, namespace, created_at FROM pending_signups WHERE checkout_session = $1")
        .bind(session)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(PendingSignup::from_row).transpose()
    }

    /// A pending sign-up by the claim secret its client holds.
    pub async fn pending_by_claim(&self, claim: &str) -> Result<Option<PendingSignup>, StoreError> {
        let row = sqlx::query("SELECT id, email, password_hash, checkout_session, checkout_url, namespace, created_at FROM pending_signups WHERE claim_hash = $1")
        .bind(claim_digest(claim))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(PendingSignup::from_row).transpose()
    }

    /// Uses up a claim: true once, for a paid sign-up (the caller then mints its token).
    pub async fn spend_claim(&self, claim: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pending_signups SET claim_hash = '' WHERE claim_hash = $1 AND namespace IS NOT NULL",
        )
        .bind(claim_digest(claim))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks pending sign-up `id` paid, with the namespace made for it.
    pub async fn finish_pending_signup(&self, id: &str, namespace: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pending_signups SET namespace = $2, password_hash = '' WHERE id = $1 AND namespace IS NULL",
        )
        .bind(id)
        .bind(namespace)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether billing event `id` was applied already.
    pub async fn billing_event_seen(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM billing_events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Remembers that billing event `id` was applied.
    pub async fn record_billing_event(&self, id: &str, kind: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO billing_events (id, kind, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
