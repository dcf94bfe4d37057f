//! Sign-ups waiting for their emailed code, and the outbox of mail not sent by SMTP.
//! Codes are kept as digests only; every limit counts per address, whether or not it
//! already has an account, so no answer or limit tells who has one.

use crate::{Store, StoreError, now_millis};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// How long a code is good for.
pub const CODE_TTL_MS: i64 = 15 * 60 * 1000;
/// Wrong codes before a sign-up must start again.
pub const MAX_ATTEMPTS: i64 = 5;
/// Codes sent to one address per window.
pub const MAX_SENDS: i64 = 5;
const SEND_WINDOW_MS: i64 = 60 * 60 * 1000;

/// What asking for a code did.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRequest {
    /// A code to send (the only time it exists in clear).
    Send(String),
    /// The address reached its limit of codes for now.
    Limited,
}

/// What checking a code found.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right: the password hash to create the account with (the sign-up is gone).
    Verified { password_hash: String },
    /// Wrong, expired, used up, never asked for, or for an address with an account:
    /// one answer for all.
    Refused,
}

/// One mail in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
}

fn digest(email: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{email}\n{code}").as_bytes()))
}

/// Six digits, uniformly.
fn new_code() -> String {
    format!("{:06}", rand::random_range(0..1_000_000u32))
}

impl Store {
    /// A new code for `email`, replacing any earlier one. For an address that has an
    /// account already (`existing`: it is told so instead of getting a code that works)
    /// everything happens the same, hashing included, so timing tells nobody either.
    pub async fn request_code(
        &self,
        email: &str,
        password: &str,
        existing: bool,
    ) -> Result<CodeRequest, StoreError> {
        let now = now_millis();
        // A request whose code and send window are both over can serve no one: forgotten
        // with its address and password hash, so the table holds about an hour of requests.
        sqlx::query("DELETE FROM signups WHERE expires_at < $1 AND window_start < $2")
            .bind(now)
            .bind(now - SEND_WINDOW_MS)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT sends, window_start FROM signups WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        let (sends, window) = match row {
            Some(r) => {
                let (sends, window): (i64, i64) = (r.try_get("sends")?, r.try_get("window_start")?);
                if now - window > SEND_WINDOW_MS {
                    (0, now)
                } else {
                    (sends, window)
                }
            }
            None => (0, now),
        };
        if sends >= MAX_SENDS {
            return Ok(CodeRequest::Limited);
        }
        let mut hash = crate::passwords::hash(password.to_owned()).await?;
        if existing {
            hash.clear();
        }
        let code = new_code();
        sqlx::query(
            "INSERT INTO signups (email, password_hash, code_hash, expires_at, attempts, sends, \
             window_start, created_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $7) \
             ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, \
             code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0, \
             sends = excluded.sends, window_start = excluded.window_start",
        )
        .bind(email)
        .bind(&hash)
        .bind(digest(email, &code))
        .bind(now + CODE_TTL_MS)
        .bind(sends + 1)
        .bind(window)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(CodeRequest::Send(code))
    }

    /// Checks `code` for `email`: right once, within its time and attempts.
    pub async fn check_code(&self, email: &str, code: &str) -> Result<CodeCheck, StoreError> {
        let row = sqlx::query(
            "SELECT password_hash, code_hash, expires_at, attempts FROM signups WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(CodeCheck::Refused);
        };
        let (hash, code_hash, expires, attempts): (String, String, i64, i64) = (
            row.try_get("password_hash")?,
            row.try_get("code_hash")?,
            row.try_get("expires_at")?,
            row.try_get("attempts")?,
        );
        let right = digest(email, code.trim());
        // Equal-length hex digests, compared without an early exit.
        let same = right.len() == code_hash.len()
            && right
                .bytes()
                .zip(code_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if attempts >= MAX_ATTEMPTS || now_millis() > expires || !same || hash.is_empty() {
            sqlx::query("UPDATE signups SET attempts = attempts + 1 WHERE email = $1")
                .bind(email)
                .execute(&self.pool)
                .await?;
            return Ok(CodeCheck::Refused);
        }
        // One use: whoever deletes the row verified it.
        let done = sqlx::query("DELETE FROM signups WHERE email = $1 AND code_hash = $2")
            .bind(email)
            .bind(&code_hash)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(CodeCheck::Refused);
        }
        Ok(CodeCheck::Verified {
            password_hash: hash,
        })
    }

    /// Puts a mail in the outbox.
    pub async fn put_mail(
        &self,
        recipient: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox (id, recipient, subject, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hex::encode(rand::random::<[u8; 12]>()))
        .bind(recipient)
        .bind(subject)
        .bind(body)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The outbox, newest first.
    pub async fn outbox(&self, limit: i64) -> Result<Vec<Mail>, StoreError> {
        // The limit is written in, not bound: see `kv_read`.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, recipient, subject, body, created_at FROM outbox ORDER BY created_at DESC, id LIMIT {limit}"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Mail {
                    id: r.try_get("id")?,
                    recipient: r.try_get("recipient")?,
                    subject: r.try_get("subject")?,
                    body: r.try_get("body")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
