//! Stripe, as the platform uses it: the `Stripe-Signature` check on billing events, what
//! an event means for an account, and the two REST calls the platform makes (create a
//! Checkout Session for a sign-up; read a subscription's state). Parsing and checking are
//! pure; the client is gitnet's plain one (reqwest, no redirects), with Stripe's
//! form-encoded bodies.

use hmac::{Hmac, Mac};
use micro_gitnet::http::{exchange, plain_client};
use micro_store::BillingState;
use serde_json::Value;
use sha2::Sha256;

/// Why a call to Stripe's API failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("{0}")]
    NotAllowed(String),
    #[error("Stripe answered {status} to {what}")]
    Status { what: &'static str, status: u16 },
    #[error("Stripe cannot be reached ({0})")]
    Transport(String),
}

impl From<micro_gitnet::http::ExchangeError> for StripeError {
    fn from(e: micro_gitnet::http::ExchangeError) -> Self {
        StripeError::Transport(e.to_string())
    }
}

/// Seconds an event's timestamp may be from now (Stripe's libraries' default).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a billing event was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the event's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// Checks `header` (`t=<unix time>,v1=<hex>[,v1=<hex>…][,v0=…]`) for `payload`: any
/// `v1` equal to HMAC-SHA256(secret, "<t>.<payload>"), compared in constant time, with
/// `t` within `tolerance` seconds of `now`. Other schemes (`v0`) are ignored.
pub fn verify(
    header: &str,
    payload: &[u8],
    secret: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                let t: i64 = value.parse().map_err(|_| SignatureError::Malformed)?;
                timestamp = Some((t, value));
            }
            "v1" => signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let (t, t_text) = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Missing);
    }
    if (now - t).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::NoSecret)?;
    mac.update(t_text.as_bytes());
    mac.update(b".");
    mac.update(payload);
    // Every candidate is compared in full (`verify_slice` is constant-time).
    let matched = signatures.iter().fold(false, |any, sig| {
        mac.clone().verify_slice(sig).is_ok() | any
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Stripe would send for `payload` at `t` (tests and benchmarks sign with it).
pub fn sign(payload: &[u8], secret: &[u8], t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(format!("{t}.").as_bytes());
    mac.update(payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a billing event asks of the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// A Checkout Session was paid: activate the sign-up it references.
    CheckoutCompleted {
        reference: String,
        session: String,
        subscription: String,
    },
    /// A Checkout Session completed by a payment that settles later (SEPA, ACH): nothing
    /// is activated until `checkout.session.async_payment_succeeded` says it was paid.
    CheckoutAwaiting {
        reference: String,
        session: String,
        subscription: String,
    },
    /// That later payment failed: the sign-up is forgotten and its person told.
    CheckoutFailed { reference: String, session: String },
    /// Something about a subscription changed; its current state decides what.
    SubscriptionChanged { subscription: String },
    /// Nothing the platform acts on.
    Ignored,
}

/// A billing event: its id (applied once), its type, and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub meaning: Meaning,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a Stripe event: {0}")]
pub struct ParseError(String);

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for key in path {
        v = v.get(key)?;
    }
    // Expanded objects carry their id.
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(_) => v.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Reads an event (`{"id", "type", "data": {"object": …}}`).
pub fn parse(payload: &[u8]) -> Result<Event, ParseError> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| ParseError(e.to_string()))?;
    let id = text(&v, &["id"]).ok_or_else(|| ParseError("no id".into()))?;
    let kind = text(&v, &["type"]).ok_or_else(|| ParseError("no type".into()))?;
    let object = v
        .get("data")
        .and_then(|d| d.get("object"))
        .ok_or_else(|| ParseError("no data.object".into()))?;
    let session_of = || {
        (
            text(object, &["client_reference_id"]),
            text(object, &["id"]),
            text(object, &["subscription"]),
        )
    };
    // `paid`, `no_payment_required`, or `unpaid` for a delayed method (Stripe's
    // Checkout Session object).
    let unpaid = text(object, &["payment_status"]).as_deref() == Some("unpaid");
    let meaning = match kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            match session_of() {
                (Some(reference), Some(session), Some(subscription)) if unpaid => {
                    Meaning::CheckoutAwaiting {
                        reference,
                        session,
                        subscription,
                    }
                }
                (Some(reference), Some(session), Some(subscription)) => {
                    Meaning::CheckoutCompleted {
                        reference,
                        session,
                        subscription,
                    }
                }
                // A session the platform did not make (no reference) or not a subscription.
                _ => Meaning::Ignored,
            }
        }
        "checkout.session.async_payment_failed" => match session_of() {
            (Some(reference), Some(session), _) => Meaning::CheckoutFailed { reference, session },
            _ => Meaning::Ignored,
        },
        // Invoices name their subscription at the top (older API versions) or under
        // `parent.subscription_details` (newer ones).
        "invoice.paid" | "invoice.payment_failed" | "invoice.payment_succeeded" => {
            match text(object, &["subscription"])
                .or_else(|| text(object, &["parent", "subscription_details", "subscription"]))
            {
                Some(subscription) => Meaning::SubscriptionChanged { subscription },
                None => Meaning::Ignored,
            }
        }
        "customer.subscription.deleted" | "customer.subscription.updated" => {
            match text(object, &["id"]) {
                Some(subscription) => Meaning::SubscriptionChanged { subscription },
                None => Meaning::Ignored,
            }
        }
        _ => Meaning::Ignored,
    };
    Ok(Event { id, kind, meaning })
}

/// What a subscription's Stripe status means for its namespace; `None` while the first
/// payment is still under way (`incomplete`).
pub fn state_of(status: &str) -> Option<BillingState> {
    match status {
        "active" | "trialing" => Some(BillingState::Active),
        "past_due" | "unpaid" => Some(BillingState::PastDue),
        "canceled" | "incomplete_expired" | "paused" => Some(BillingState::Canceled),
        _ => None,
    }
}

/// A Checkout Session the platform made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

/// What a Checkout Session is made of.
#[derive(Clone, Debug)]
pub struct CheckoutRequest {
    /// The pending sign-up it pays for (`client_reference_id`).
    pub reference: String,
    /// Which of the sign-up's sessions this is: a request sent again for the same one
    /// gets the same session (the idempotency key), a new one once the last expired.
    pub attempt: String,
    pub email: String,
    pub success_url: String,
    pub cancel_url: String,
}

/// A subscription as Stripe reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
}

/// Stripe's REST API with the platform's secret key.
#[derive(Clone)]
pub struct StripeApi {
    http: reqwest::Client,
    base: String,
    key: String,
    price: String,
}

impl StripeApi {
    /// `base` is Stripe's API (or a local stand-in); `price` the plan's price id.
    pub fn new(base: &str, key: &str, price: &str) -> Result<Self, StripeError> {
        Ok(StripeApi {
            http: plain_client()?,
            base: base.trim_end_matches('/').to_owned(),
            key: key.trim().to_owned(),
            price: price.to_owned(),
        })
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        form: Option<(String, &str)>,
        what: &'static str,
    ) -> Result<Value, StripeError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some((body, idempotency)) = form {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                // A retried creation makes no second session.
                .header("idempotency-key", idempotency)
                .body(body);
        }
        let answer = exchange(req).await?;
        if !(200..300).contains(&answer.status) {
            return Err(StripeError::Status {
                what,
                status: answer.status,
            });
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| StripeError::Transport(format!("{what}: {e}")))
    }

    /// Creates a subscription Checkout Session for one sign-up.
    pub async fn create_checkout(
        &self,
        r: &CheckoutRequest,
    ) -> Result<CheckoutSession, StripeError> {
        let form = [
            ("mode", "subscription"),
            ("line_items[0][price]", self.price.as_str()),
            ("line_items[0][quantity]", "1"),
            ("customer_email", r.email.as_str()),
            ("client_reference_id", r.reference.as_str()),
            ("success_url", r.success_url.as_str()),
            ("cancel_url", r.cancel_url.as_str()),
        ];
        let body =
            serde_urlencoded::to_string(form).map_err(|e| StripeError::Transport(e.to_string()))?;
        let idempotency = format!("checkout-{}-{}", r.reference, r.attempt);
        let v = self
            .call(
                http::Method::POST,
                "/v1/checkout/sessions",
                Some((body, &idempotency)),
                "creating a Checkout Session",
            )
            .await?;
        match (text(&v, &["id"]), text(&v, &["url"])) {
            (Some(id), Some(url)) => Ok(CheckoutSession { id, url }),
            _ => Err(StripeError::Transport(
                "Stripe's Checkout Session has no id or url".into(),
            )),
        }
    }

    /// Reads a subscription's current state.
    pub async fn subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        // Stripe's ids are word characters and underscores; anything else is not one.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StripeError::NotAllowed(format!(
                "{id:?} is not a subscription id"
            )));
        }
        let v = self
            .call(
                http::Method::GET,
                &format!("/v1/subscriptions/{id}"),
                None,
                "reading a subscription",
            )
            .await?;
        Ok(Subscription {
            id: id.to_owned(),
            customer: text(&v, &["customer"]).unwrap_or_default(),
            status: text(&v, &["status"]).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    #[test]
    fn a_valid_signature_passes_and_a_tampered_body_fails() {
        let header = sign(BODY, SECRET, 1_700_000_000);
        assert_eq!(
            verify(&header, BODY, SECRET, 1_700_000_000, TOLERANCE_SECS),
            Ok(())
        );
        assert_eq!(
            verify(
                &header,
                br#"{"id":"evt_1","type":"invoice.paid "}"#,
                SECRET,
                1_700_000_000,
                300
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_vector_computed_elsewhere_matches() {
        // HMAC-SHA256 of "1700000000.<BODY>" with SECRET, computed with Python's hmac.
        let header =
            "t=1700000000,v1=46dc069361a7691082640523fa33fe5d6c8c88d5f5e257cdf8cf11539d166595";
        assert_eq!(verify(header, BODY, SECRET, 1_700_000_000, 300), Ok(()));
        assert_eq!(sign(BODY, SECRET, 1_700_000_000), header);
    }

    #[test]
    fn old_and_future_timestamps_fail() {
        let header = sign(BODY, SECRET, 1_700_000_000);
        assert_eq!(
            verify(&header, BODY, SECRET, 1_700_000_000 + 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&header, BODY, SECRET, 1_700_000_000 - 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&header, BODY, SECRET, 1_700_000_000 + 300, 300),
            Ok(())
        );
    }

    #[test]
    fn any_matching_v1_among_several_passes() {
        let good = sign(BODY, SECRET, 1_700_000_000);
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t=1700000000,v1={},v1={v1},v0=abcd", "00".repeat(32));
        assert_eq!(verify(&header, BODY, SECRET, 1_700_000_000, 300), Ok(()));
        let none = format!("t=1700000000,v1={},v0={v1}", "00".repeat(32));
        assert_eq!(
            verify(&none, BODY, SECRET, 1_700_000_000, 300),
            Err(SignatureError::Mismatch),
            "v0 is not a scheme we accept"
        );
    }

    #[test]
    fn a_wrong_secret_or_a_malformed_header_fails() {
        let header = sign(BODY, b"whsec_other", 1_700_000_000);
        assert_eq!(
            verify(&header, BODY, SECRET, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            "t=abc,v1=00",
            "v1=00",
            "t=1700000000",
            "t=1700000000,v1=zz",
        ] {
            assert!(
                verify(bad, BODY, SECRET, 1_700_000_000, 300).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&sign(BODY, SECRET, 1), BODY, b"", 1, 300),
            Err(SignatureError::NoSecret)
        );
    }

    /// Stripe's own `checkout.session` fixture as a sign-up's session: paid, or
    /// completed with a delayed payment (`unpaid`) and then settled or failed.
    fn session_event(kind: &str, payment_status: &str) -> Vec<u8> {
        let mut session: Value =
            serde_json::from_str(include_str!("../fixtures/checkout.session.json")).unwrap();
        session["mode"] = "subscription".into();
        session["client_reference_id"] = "ref_1".into();
        session["subscription"] = "sub_1".into();
        session["customer"] = "cus_1".into();
        session["status"] = "complete".into();
        session["payment_status"] = payment_status.into();
        serde_json::json!({"id": "evt_1", "object": "event", "type": kind,
            "data": {"object": session}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_delayed_payment_activates_nothing_until_it_settles() {
        let id = || {
            serde_json::from_str::<Value>(include_str!("../fixtures/checkout.session.json"))
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let paid = parse(&session_event("checkout.session.completed", "paid")).unwrap();
        assert_eq!(
            paid.meaning,
            Meaning::CheckoutCompleted {
                reference: "ref_1".into(),
                session: id(),
                subscription: "sub_1".into()
            }
        );
        let waiting = parse(&session_event("checkout.session.completed", "unpaid")).unwrap();
        assert_eq!(
            waiting.meaning,
            Meaning::CheckoutAwaiting {
                reference: "ref_1".into(),
                session: id(),
                subscription: "sub_1".into()
            }
        );
        let settled = parse(&session_event(
            "checkout.session.async_payment_succeeded",
            "paid",
        ))
        .unwrap();
        assert!(matches!(settled.meaning, Meaning::CheckoutCompleted { .. }));
        let failed = parse(&session_event(
            "checkout.session.async_payment_failed",
            "unpaid",
        ))
        .unwrap();
        assert_eq!(
            failed.meaning,
            Meaning::CheckoutFailed {
                reference: "ref_1".into(),
                session: id()
            }
        );
    }

    #[test]
    fn events_mean_what_stripe_documents() {
        let completed = br#"{"id":"evt_a","type":"checkout.session.completed","data":{"object":
            {"id":"cs_1","object":"checkout.session","client_reference_id":"ref1",
             "customer":"cus_1","subscription":"sub_1","mode":"subscription"}}}"#;
        assert_eq!(
            parse(completed).unwrap().meaning,
            Meaning::CheckoutCompleted {
                reference: "ref1".into(),
                session: "cs_1".into(),
                subscription: "sub_1".into()
            }
        );
        let old_invoice = br#"{"id":"evt_b","type":"invoice.payment_failed","data":{"object":
            {"id":"in_1","subscription":"sub_1"}}}"#;
        let new_invoice = br#"{"id":"evt_c","type":"invoice.paid","data":{"object":
            {"id":"in_2","parent":{"subscription_details":{"subscription":"sub_1"}}}}}"#;
        let deleted = br#"{"id":"evt_d","type":"customer.subscription.deleted","data":{"object":
            {"id":"sub_1","status":"canceled"}}}"#;
        for e in [&old_invoice[..], &new_invoice[..], &deleted[..]] {
            assert_eq!(
                parse(e).unwrap().meaning,
                Meaning::SubscriptionChanged {
                    subscription: "sub_1".into()
                }
            );
        }
        let other = br#"{"id":"evt_e","type":"charge.refunded","data":{"object":{}}}"#;
        assert_eq!(parse(other).unwrap().meaning, Meaning::Ignored);
        assert!(parse(b"{}").is_err());
        assert_eq!(state_of("past_due"), Some(BillingState::PastDue));
        assert_eq!(state_of("incomplete"), None);
    }
}
