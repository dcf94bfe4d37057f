use crate::{Account, Store, StoreError, now_millis};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every API token, so a leaked one is easy to recognise and scan for.
const TOKEN_PREFIX: &str = "mt_";

const DEPLOYMENT_LABEL: &str = "service deployment ";

/// The label of a service token: which deployment holds it.
fn deployment_label(deployment: &str) -> String {
    format!("{DEPLOYMENT_LABEL}{deployment}")
}

/// One deployment of a service whose token is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveDeployment {
    pub namespace: String,
    pub service: String,
    pub deployment: String,
    /// When its token (and so its first certificate) was issued, ms since the epoch.
    pub issued_ms: i64,
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Tokens are 256 random bits, so a plain SHA-256 is enough to store them safely.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The deployment a service's certificate names (its SPIFFE identity, as `micro-pki`
/// reads it).
#[derive(Clone, Copy, Debug)]
pub struct DeploymentId<'a> {
    pub namespace: &'a str,
    pub service: &'a str,
    pub deployment: &'a str,
}

impl Store {
    /// Mints a new API token for `account` that does not expire; only its hash is stored.
    pub async fn mint_token(&self, account: &Account, label: &str) -> Result<String, StoreError> {
        self.mint_token_for(account, label, None).await
    }

    /// Mints a token valid for `ttl` (forever with `None`).
    pub async fn mint_token_for(
        &self,
        account: &Account,
        label: &str,
        ttl: Option<std::time::Duration>,
    ) -> Result<String, StoreError> {
        let token = format!("{TOKEN_PREFIX}{}", random_hex(32));
        let now = now_millis();
        let expires =
            ttl.map(|t| now.saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)));
        sqlx::query(
            "INSERT INTO tokens (hash, account_id, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash(&token))
        .bind(&account.id)
        .bind(label)
        .bind(now)
        .bind(expires)
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// A fresh token for the identity of service `name` (created on first use) with every
    /// older token of it deleted, in one transaction: one commit per deployment, and the
    /// old token stops working exactly when the new one starts.
    /// A new token for one deployment of a service. The tokens of its earlier
    /// deployments stay valid: one of them may still serve until this one is ready (or
    /// for good, if it never is). [`Store::retain_service_token`] retires them.
    pub async fn issue_service_token(
        &self,
        namespace: &str,
        name: &str,
        deployment: &str,
    ) -> Result<String, StoreError> {
        let email = crate::accounts::service_email(namespace, name);
        let token = format!("{TOKEN_PREFIX}{}", random_hex(32));
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        sqlx::query(crate::accounts::INSERT_SERVICE_ACCOUNT)
            .bind(random_hex(16))
            .bind(&email)
            .bind(crate::Role::Service.as_str())
            .bind(namespace)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Found by what it is, never by address: no person can become a service's identity.
        let id: String = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE role = $1 AND namespace = $2 AND service = $3",
        )
        .bind(crate::Role::Service.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO tokens (hash, account_id, label, created_at, expires_at) VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(token_hash(&token))
        .bind(&id)
        .bind(deployment_label(deployment))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Keeps only the token of `deployment` of a service (the one that now serves alone):
    /// the others are deleted, not kept as revoked, so the table holds about one row per
    /// running service however often it is deployed.
    pub async fn retain_service_token(
        &self,
        namespace: &str,
        name: &str,
        deployment: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM tokens WHERE label <> $1 AND account_id IN \
             (SELECT id FROM accounts WHERE role = $2 AND namespace = $3 AND service = $4)",
        )
        .bind(deployment_label(deployment))
        .bind(crate::Role::Service.as_str())
        .bind(namespace)
        .bind(name)
        .execute(&self.pool)
        .await?;
        self.auth.forget_service(namespace, name);
        Ok(())
    }

    /// The service identity of deployment `deployment` of service `name`, while that
    /// deployment is live: its token neither revoked nor dropped by a rollout (so a
    /// certificate naming it lives and dies with the token).
    pub async fn service_by_deployment(
        &self,
        namespace: &str,
        name: &str,
        deployment: &str,
    ) -> Result<Option<Account>, StoreError> {
        let key = (namespace.to_owned(), name.to_owned(), deployment.to_owned());
        if let Some(account) = self.auth.deployment(&key) {
            return Ok(Some(account));
        }
        let ticket = self.auth.ticket();
        let row = sqlx::query(
            "SELECT a.id, a.email, a.role, a.namespace, a.service FROM tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE t.label = $1 AND t.revoked_at IS NULL AND a.role = $2 AND a.namespace = $3 AND a.service = $4",
        )
        .bind(deployment_label(deployment))
        .bind(crate::Role::Service.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let account = row.as_ref().map(Account::from_row).transpose()?;
        if let Some(a) = &account {
            self.auth.put_deployment(ticket, key, a);
        }
        Ok(account)
    }

    /// Every live deployment of every service (its token neither revoked nor retired),
    /// with when its token was issued: the renewal of certificate identities walks these.
    pub async fn live_deployments(&self) -> Result<Vec<LiveDeployment>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT a.namespace, a.service, t.label, t.created_at FROM tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE a.role = $1 AND t.revoked_at IS NULL AND t.label LIKE $2 \
             ORDER BY t.created_at",
        )
        .bind(crate::Role::Service.as_str())
        .bind(format!("{DEPLOYMENT_LABEL}%"))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(namespace, service, label, issued_ms)| {
                Some(LiveDeployment {
                    deployment: label.strip_prefix(DEPLOYMENT_LABEL)?.to_owned(),
                    namespace,
                    service,
                    issued_ms,
                })
            })
            .collect())
    }

    /// Revokes every live token of an account (a service being replaced or removed).
    pub async fn revoke_account_tokens(&self, account: &Account) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_millis())
        .bind(&account.id)
        .execute(&self.pool)
        .await?;
        self.auth.forget_account(&account.id);
        Ok(())
    }

    /// Revokes a token; `false` if it was not a live token.
    pub async fn revoke_token(&self, token: &str) -> Result<bool, StoreError> {
        let hash = token_hash(token);
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL")
                .bind(now_millis())
                .bind(&hash)
                .execute(&self.pool)
                .await?;
        self.auth.forget_token(&hash);
        Ok(done.rows_affected() > 0)
    }

    /// Who is calling, for every door that asks (the API, git): a token if one was sent
    /// (a wrong token is never made good by a certificate), else the service whose
    /// certificate names a live deployment, as its token would.
    pub async fn caller(
        &self,
        token: Option<&str>,
        certified: Option<DeploymentId<'_>>,
    ) -> Result<Option<Account>, StoreError> {
        if let Some(token) = token {
            return self.authenticate(token.trim()).await;
        }
        match certified {
            Some(d) => {
                self.service_by_deployment(d.namespace, d.service, d.deployment)
                    .await
            }
            None => Ok(None),
        }
    }

    /// The account a token belongs to, if the token is known, unexpired and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Account>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = token_hash(token);
        let now = now_millis();
        if let Some(account) = self.auth.token(&hash, now) {
            return Ok(Some(account));
        }
        let ticket = self.auth.ticket();
        let row = sqlx::query(
            "SELECT a.id, a.email, a.role, a.namespace, a.service, t.expires_at FROM tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let account = Account::from_row(&row)?;
        let expires: Option<i64> = sqlx::Row::try_get(&row, "expires_at")?;
        self.auth.put_token(ticket, &hash, &account, expires);
        Ok(Some(account))
    }
}
