//! Invitations: while sign-up is by invitation, the addresses an admin invited. One is
//! used up when its address signs up.

use crate::{Store, StoreError, now_millis};

/// Most addresses invited at once.
pub const MAX_INVITES: i64 = 10_000;

/// One invitation as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    pub email: String,
    pub invited_by: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl Store {
    /// Invites `email` (lower-cased); inviting it again changes nothing.
    pub async fn invite(&self, email: &str, by: &str) -> Result<(), StoreError> {
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invites")
            .fetch_one(&self.pool)
            .await?;
        if held >= MAX_INVITES {
            return Err(StoreError::Exists(format!(
                "the most invitations the platform keeps ({MAX_INVITES}): revoke some first"
            )));
        }
        sqlx::query(
            "INSERT INTO invites (email, invited_by, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(email.trim().to_lowercase())
        .bind(by)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every invitation, by address.
    pub async fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT email, invited_by, created_at FROM invites ORDER BY email")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(email, invited_by, created_at)| Invite {
                email,
                invited_by,
                created_at,
            })
            .collect())
    }

    /// Whether `email` is invited.
    pub async fn is_invited(&self, email: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invites WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Revokes (or uses up) the invitation of `email`; whether there was one.
    pub async fn revoke_invite(&self, email: &str) -> Result<bool, StoreError> {
        let gone = sqlx::query("DELETE FROM invites WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .execute(&self.pool)
            .await?;
        Ok(gone.rows_affected() > 0)
    }
}
