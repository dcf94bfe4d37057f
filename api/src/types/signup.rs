//! `micro signup` and the outbox.

use serde::{Deserialize, Serialize};

/// How people get accounts on this platform (`micro server --signup`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    /// Admins create accounts.
    #[default]
    Closed,
    /// Anyone with a verified email, no payment.
    Open,
    /// As `open`, for the addresses an admin invited (`micro admin invite EMAIL`).
    Invite,
    /// A verified email and a subscription.
    Paid,
}

/// `GET /api/v1/signup`: sign-up is open here, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupOpen {
    pub mode: SignupMode,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
}

/// The same answer whether or not the address has an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupStarted {
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupVerify {
    pub email: String,
    pub code: String,
}

/// A verified sign-up: the new account, its namespace and a token for the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupDone {
    pub email: String,
    pub namespace: String,
    pub token: String,
}

/// A mail the platform did not send by SMTP (`micro admin outbox`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailView {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Milliseconds since the epoch.
    pub at: i64,
}

/// A verified sign-up on a paid platform: pay at `checkout_url`; `claim` (a secret only
/// this client holds) fetches the account's token once the payment is confirmed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupPayment {
    pub email: String,
    pub checkout_url: String,
    pub claim: String,
}

/// Where a sign-up stands after its code (or its claim).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SignupResult {
    /// The account and its namespace exist; the token logs the CLI in.
    Active(SignupDone),
    /// Paid mode: the payment comes next.
    Payment(SignupPayment),
    /// Paid mode: the payment is not confirmed yet.
    Waiting,
}

/// `POST /api/v1/signup/claim`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupClaim {
    pub claim: String,
}

/// An invitation, as `micro admin invite list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    pub email: String,
    pub invited_by: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// `POST /api/v1/admin/invites`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteRequest {
    pub email: String,
}
