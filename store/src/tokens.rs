use crate::{Account, Store, StoreError, now_millis};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every API token, so a leaked one is easy to recognise and scan for.
const TOKEN_PREFIX: &str = "mt_";

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Tokens are 256 random bits, so a plain SHA-256 is enough to store them safely.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Mints a new API token for `account`; only its hash is stored.
    pub async fn mint_token(&self, account: &Account, label: &str) -> Result<String, StoreError> {
        let token = format!("{TOKEN_PREFIX}{}", random_hex(32));
        sqlx::query(
            "INSERT INTO tokens (hash, account_id, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(&token))
        .bind(&account.id)
        .bind(label)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// The account a token belongs to, if the token is known, unexpired and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Account>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT a.id, a.email, a.role, a.namespace FROM tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(token_hash(token))
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Account::from_row).transpose()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Role, Store};

    #[tokio::test]
    async fn tokens_authenticate_their_account_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        store.create_namespace("a").await.unwrap();
        let alice = store
            .create_account("alice@example.com", Role::Developer, Some("a"))
            .await
            .unwrap();
        let token = store.mint_token(&alice, "cli").await.unwrap();
        let who = store.authenticate(&token).await.unwrap().unwrap();
        assert_eq!(who.email, "alice@example.com");
        assert!(who.may_access("a"));
        assert!(!who.may_access("b"));
        assert!(store.authenticate("mt_forged").await.unwrap().is_none());
        assert!(store.authenticate("not-a-token").await.unwrap().is_none());
        // The plaintext token is never stored.
        let leaked: Option<(String,)> = sqlx::query_as("SELECT hash FROM tokens WHERE hash = $1")
            .bind(&token)
            .fetch_optional(&store.pool)
            .await
            .unwrap();
        assert!(leaked.is_none());
    }

    #[tokio::test]
    async fn namespaces_and_accounts_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).await.unwrap();
        store.create_namespace("a").await.unwrap();
        assert!(store.create_namespace("a").await.is_err());
        assert_eq!(store.list_namespaces().await.unwrap(), vec!["a".to_owned()]);
        store
            .create_account("x@example.com", Role::Admin, None)
            .await
            .unwrap();
        assert!(
            store
                .create_account("x@example.com", Role::Admin, None)
                .await
                .is_err()
        );
    }
}
