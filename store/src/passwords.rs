//! Passwords: argon2id hashes in PHC format, hashed off the async threads.

use crate::StoreError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Verified against when the email is unknown, so a miss costs the same time as a hit.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$kqn+sPDv2JpW2AaOYmvfPoOuUyb/7r1SyN4S2zVQ/9E";

pub(crate) async fn hash(password: String) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Task(format!("cannot hash password: {e}")))
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?
}

pub(crate) async fn verify(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY.to_owned());
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        ok && known
    })
    .await
    .unwrap_or(false)
}
