use crate::{Store, StoreError, now_millis};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Platform-wide: every namespace.
    Admin,
    /// Its own namespace only.
    Developer,
    /// One service's identity in one namespace.
    Service,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Service => "service",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "admin" => Ok(Role::Admin),
            "developer" => Ok(Role::Developer),
            "service" => Ok(Role::Service),
            other => Err(StoreError::Corrupt(format!("role {other:?}"))),
        }
    }
}

/// Someone (or some service) that can authenticate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub role: Role,
    /// The account's own namespace (admins have one too: where their commands go by default).
    pub namespace: Option<String>,
    /// For a `service` identity: the service it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Account {
    /// The one namespace check every endpoint, git operation and runtime path uses.
    pub fn may_access(&self, namespace: &str) -> bool {
        self.role == Role::Admin || self.namespace.as_deref() == Some(namespace)
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Account {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            role: Role::parse(&row.try_get::<String, _>("role")?)?,
            namespace: row.try_get("namespace")?,
            service: row.try_get("service")?,
        })
    }

    /// Whether this is a running service's identity rather than a person.
    pub fn is_service(&self) -> bool {
        self.role == Role::Service
    }
}

/// Not an address anyone can log in with: service identities have no password.
pub(crate) fn service_email(namespace: &str, name: &str) -> String {
    format!("{name}@{namespace}{SERVICE_DOMAIN}")
}

/// The domain of service identities' addresses, which no person may use.
pub const SERVICE_DOMAIN: &str = ".service.micro";

/// Whether `email` belongs to the addresses reserved for service identities.
pub fn is_reserved_email(email: &str) -> bool {
    email.to_ascii_lowercase().ends_with(SERVICE_DOMAIN)
}

/// Binds: id, email, role, namespace, service, created_at. A no-op when it exists.
pub(crate) const INSERT_SERVICE_ACCOUNT: &str = "INSERT INTO accounts (id, email, role, namespace, service, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING";

impl Store {
    /// Creates an account; `Exists` when the email is taken.
    pub async fn create_account(
        &self,
        email: &str,
        role: Role,
        namespace: Option<&str>,
    ) -> Result<Account, StoreError> {
        if is_reserved_email(email) {
            return Err(StoreError::Exists(format!("account {email}")));
        }
        let id = crate::tokens::random_hex(16);
        let done = sqlx::query(
            "INSERT INTO accounts (id, email, role, namespace, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(&id)
        .bind(email)
        .bind(role.as_str())
        .bind(namespace)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Exists(format!("account {email}")));
        }
        Ok(Account {
            id,
            email: email.to_owned(),
            role,
            namespace: namespace.map(str::to_owned),
            service: None,
        })
    }

    /// Sets (replaces) an account's password.
    pub async fn set_password(&self, account: &Account, password: &str) -> Result<(), StoreError> {
        let hash = crate::passwords::hash(password.to_owned()).await?;
        self.set_password_hash(account, &hash).await
    }

    /// Sets a password already hashed (a sign-up's, hashed when it was asked for).
    pub async fn set_password_hash(&self, account: &Account, hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(&account.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The account if `password` is its password. Unknown emails take as long as known
    /// ones, so timing tells nobody which accounts exist.
    pub async fn check_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, role, namespace, service, password_hash FROM accounts WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        let (account, hash) = match &row {
            Some(r) => (
                Some(Account::from_row(r)?),
                r.try_get::<Option<String>, _>("password_hash")?,
            ),
            None => (None, None),
        };
        let ok = crate::passwords::verify(password.to_owned(), hash).await;
        Ok(account.filter(|_| ok))
    }

    /// Every account, by email.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows =
            sqlx::query("SELECT id, email, role, namespace, service FROM accounts ORDER BY email")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(Account::from_row).collect()
    }

    /// The identity of service `name` in `namespace`, created on first use.
    pub async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Account, StoreError> {
        let email = service_email(namespace, name);
        sqlx::query(INSERT_SERVICE_ACCOUNT)
            .bind(crate::tokens::random_hex(16))
            .bind(&email)
            .bind(Role::Service.as_str())
            .bind(namespace)
            .bind(name)
            .bind(now_millis())
            .execute(&self.pool)
            .await?;
        // Found by what it is, never by address: no person can become a service's identity.
        let row = sqlx::query(
            "SELECT id, email, role, namespace, service FROM accounts \
             WHERE role = $1 AND namespace = $2 AND service = $3",
        )
        .bind(Role::Service.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Account::from_row(&row),
            None => Err(StoreError::Exists(format!(
                "the address of service identity {email}"
            ))),
        }
    }

    /// Deletes a person's account and every token it holds, in one transaction; `false`
    /// if no person has that address (a service's identity is not deleted this way).
    pub async fn delete_account(&self, email: &str) -> Result<bool, StoreError> {
        // Writes first: on SQLite a transaction that read before writing fails at once
        // ("database is locked") if another writer committed meanwhile, instead of waiting.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM tokens WHERE account_id IN \
             (SELECT id FROM accounts WHERE email = $1 AND role <> $2)",
        )
        .bind(email)
        .bind(crate::Role::Service.as_str())
        .execute(&mut *tx)
        .await?;
        let id: Option<String> =
            sqlx::query_scalar("DELETE FROM accounts WHERE email = $1 AND role <> $2 RETURNING id")
                .bind(email)
                .bind(crate::Role::Service.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        tx.commit().await?;
        self.auth.forget_account(&id);
        Ok(true)
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, role, namespace, service FROM accounts WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Account::from_row).transpose()
    }
}
