//! Custom domains: hosts a namespace claims for its public services, with what proved
//! them and where their certificate stands. One host belongs to one namespace: a second
//! claim is refused. The token a claim prints is what a TXT record
//! `_micro-challenge.<host>` must hold to prove it without pointing DNS here first.

use crate::{Store, StoreError, now_millis};

/// Most domains one namespace may claim.
pub const MAX_DOMAINS: i64 = 20;

/// One claimed host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub host: String,
    pub namespace: String,
    pub service: String,
    /// What a `_micro-challenge.<host>` TXT record must hold.
    pub token: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// `http-01` or `txt` once proven; served only then.
    pub proven_by: Option<String>,
    /// When its certificate ends (milliseconds since the epoch), once it has one.
    pub cert_expires_at: Option<i64>,
    /// Why it is not live yet, or what its last renewal said.
    pub message: String,
}

type Row = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    String,
);

fn domain(row: Row) -> Domain {
    let (host, namespace, service, token, created_at, proven_by, cert_expires_at, message) = row;
    Domain {
        host,
        namespace,
        service,
        token,
        created_at,
        proven_by,
        cert_expires_at,
        message,
    }
}

/// Where a domain stands, as the platform last found it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainState {
    pub proven_by: Option<String>,
    pub cert_expires_at: Option<i64>,
    pub message: String,
}

impl Store {
    /// Claims `host` for `service` of `namespace`; the token that proves it by TXT.
    pub async fn claim_domain(
        &self,
        namespace: &str,
        host: &str,
        service: &str,
    ) -> Result<Domain, StoreError> {
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM domains WHERE namespace = $1")
            .bind(namespace)
            .fetch_one(&self.pool)
            .await?;
        if held >= MAX_DOMAINS {
            return Err(StoreError::Exists(format!(
                "the most domains a namespace may claim ({MAX_DOMAINS}): remove one first"
            )));
        }
        let token = hex::encode(rand::random::<[u8; 16]>());
        let created_at = now_millis();
        let made = sqlx::query(
            "INSERT INTO domains (host, namespace, service, token, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (host) DO NOTHING",
        )
        .bind(host)
        .bind(namespace)
        .bind(service)
        .bind(&token)
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        if made.rows_affected() == 0 {
            return Err(StoreError::Exists(format!(
                "domain {host} is claimed already (one host belongs to one namespace)"
            )));
        }
        Ok(Domain {
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            token,
            created_at,
            proven_by: None,
            cert_expires_at: None,
            message: String::new(),
        })
    }

    /// `namespace`'s domains, by host.
    pub async fn domains(&self, namespace: &str) -> Result<Vec<Domain>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT host, namespace, service, token, created_at, proven_by, cert_expires_at, \
             message FROM domains WHERE namespace = $1 ORDER BY host",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(domain).collect())
    }

    /// Every namespace's domains, by host: what the edge serves and certifies.
    pub async fn all_domains(&self) -> Result<Vec<Domain>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT host, namespace, service, token, created_at, proven_by, cert_expires_at, \
             message FROM domains ORDER BY host",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(domain).collect())
    }

    /// Gives up `host`; whether `namespace` had it.
    pub async fn remove_domain(&self, namespace: &str, host: &str) -> Result<bool, StoreError> {
        let gone = sqlx::query("DELETE FROM domains WHERE namespace = $1 AND host = $2")
            .bind(namespace)
            .bind(host)
            .execute(&self.pool)
            .await?;
        Ok(gone.rows_affected() > 0)
    }

    /// Records where `host` stands, if it is still claimed by `namespace`.
    pub async fn set_domain_state(
        &self,
        namespace: &str,
        host: &str,
        state: &DomainState,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE domains SET proven_by = $1, cert_expires_at = $2, message = $3 \
             WHERE namespace = $4 AND host = $5",
        )
        .bind(&state.proven_by)
        .bind(state.cert_expires_at)
        .bind(&state.message)
        .bind(namespace)
        .bind(host)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
