//! Linked repos: which namespaces follow a branch on a forge, with the webhook secret and
//! forge token sealed like config values, and what the last fetch and delivery did.

use crate::{Store, StoreError, now_millis};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A namespace's link to a repo on a forge.
#[derive(Clone, PartialEq, Eq)]
pub struct Link {
    pub namespace: String,
    /// The webhook endpoint's name: random, not the namespace (which it must not reveal).
    pub id: String,
    pub url: String,
    pub branch: String,
    /// `github`, `gitea` or `gitlab`.
    pub forge: String,
    /// The forge's REST API base, when not the one its URL implies.
    pub api: Option<String>,
    /// Signs (GitHub, Gitea) or is (GitLab) every delivery.
    pub secret: String,
    /// For comments, statuses and fetching a private repo.
    pub token: Option<String>,
    pub created_at: i64,
    pub fetched_revision: Option<String>,
    pub fetched_at: Option<i64>,
    pub fetch_error: Option<String>,
    pub delivery: Option<Delivery>,
}

// Never the secret or the token.
impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("namespace", &self.namespace)
            .field("url", &self.url)
            .field("branch", &self.branch)
            .field("forge", &self.forge)
            .finish_non_exhaustive()
    }
}

/// The last delivery a link's endpoint took, and what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub at: i64,
    pub event: String,
    pub result: String,
}

/// `SELECT <every column> FROM links <tail>`, as the static text sqlx wants.
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT namespace, id, url, branch, forge, api, secret, token, created_at, ",
            "fetched_revision, fetched_at, fetch_error, delivery_at, delivery_event, ",
            "delivery_result FROM links ",
            $tail
        )
    };
}

impl Store {
    /// Links `link.namespace`, replacing any link it had (and what that one fetched).
    pub async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM links WHERE namespace = $1")
            .bind(&link.namespace)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO links (namespace, id, url, branch, forge, api, secret, token, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&link.namespace)
        .bind(&link.id)
        .bind(&link.url)
        .bind(&link.branch)
        .bind(&link.forge)
        .bind(link.api.as_deref())
        .bind(self.seal(&link.namespace, "link/secret", &link.secret))
        .bind(
            link.token
                .as_deref()
                .map(|t| self.seal(&link.namespace, "link/token", t)),
        )
        .bind(link.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.links_changed();
        Ok(())
    }

    /// Unlinks `namespace`; whether it was linked.
    pub async fn delete_link(&self, namespace: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM links WHERE namespace = $1")
            .bind(namespace)
            .execute(&self.pool)
            .await?;
        self.links_changed();
        Ok(done.rows_affected() > 0)
    }

    pub async fn link(&self, namespace: &str) -> Result<Option<Link>, StoreError> {
        let row = sqlx::query(select!("WHERE namespace = $1"))
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.link_row(&r)).transpose()
    }

    /// The link whose webhook endpoint is `id`.
    pub async fn link_by_id(&self, id: &str) -> Result<Option<Link>, StoreError> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.link_row(&r)).transpose()
    }

    /// Every link, by namespace.
    pub async fn links(&self) -> Result<Vec<Link>, StoreError> {
        let rows = sqlx::query(select!("ORDER BY namespace"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.link_row(r)).collect()
    }

    /// What the last fetch of `namespace`'s link did: the revision it found, or why it
    /// failed (the revision found before stays).
    pub async fn record_link_fetch(
        &self,
        namespace: &str,
        outcome: Result<&str, &str>,
    ) -> Result<(), StoreError> {
        let query = match outcome {
            Ok(revision) => sqlx::query(
                "UPDATE links SET fetched_revision = $2, fetched_at = $3, fetch_error = NULL \
                 WHERE namespace = $1",
            )
            .bind(namespace)
            .bind(revision)
            .bind(now_millis()),
            Err(error) => sqlx::query(
                "UPDATE links SET fetch_error = $2, fetched_at = $3 WHERE namespace = $1",
            )
            .bind(namespace)
            .bind(error)
            .bind(now_millis()),
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// The last delivery `namespace`'s endpoint took.
    pub async fn record_link_delivery(
        &self,
        namespace: &str,
        delivery: &Delivery,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE links SET delivery_at = $2, delivery_event = $3, delivery_result = $4 \
             WHERE namespace = $1",
        )
        .bind(namespace)
        .bind(delivery.at)
        .bind(&delivery.event)
        .bind(&delivery.result)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Changes whenever a link is made or removed (in this process), so caches of links
    /// drop what they hold at once.
    pub fn watch_links(&self) -> tokio::sync::watch::Receiver<u64> {
        self.link_changes.subscribe()
    }

    fn links_changed(&self) {
        self.link_changes.send_modify(|n| *n += 1);
    }

    fn link_row(&self, r: &AnyRow) -> Result<Link, StoreError> {
        let namespace: String = r.try_get("namespace")?;
        let secret: String = r.try_get("secret")?;
        let token: Option<String> = r.try_get("token")?;
        let delivery_at: Option<i64> = r.try_get("delivery_at")?;
        Ok(Link {
            id: r.try_get("id")?,
            url: r.try_get("url")?,
            branch: r.try_get("branch")?,
            forge: r.try_get("forge")?,
            api: r.try_get("api")?,
            secret: self.open_sealed(&namespace, "link/secret", &secret)?,
            token: token
                .map(|t| self.open_sealed(&namespace, "link/token", &t))
                .transpose()?,
            created_at: r.try_get("created_at")?,
            fetched_revision: r.try_get("fetched_revision")?,
            fetched_at: r.try_get("fetched_at")?,
            fetch_error: r.try_get("fetch_error")?,
            delivery: match delivery_at {
                Some(at) => Some(Delivery {
                    at,
                    event: r.try_get("delivery_event")?,
                    result: r.try_get("delivery_result")?,
                }),
                None => None,
            },
            namespace,
        })
    }
}

/// A new link's defaults, for callers that fill in the rest.
impl Link {
    pub fn new(namespace: &str, id: &str, url: &str, branch: &str, forge: &str) -> Self {
        Link {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            url: url.to_owned(),
            branch: branch.to_owned(),
            forge: forge.to_owned(),
            api: None,
            secret: String::new(),
            token: None,
            created_at: now_millis(),
            fetched_revision: None,
            fetched_at: None,
            fetch_error: None,
            delivery: None,
        }
    }
}
