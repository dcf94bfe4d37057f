//! The forges' REST APIs, for what the platform writes back: commit statuses and the
//! pull-request comment holding a preview. GitHub (and GitHub Enterprise), Gitea and
//! Forgejo, GitLab; each in its documented shape. The API base is the tenant's to choose,
//! so it passes the same address policy as fetches, and redirects are never followed.

use micro_gitnet::http::{Answer, checked_client, exchange};
use micro_tenant::forge::Forge;
use micro_tenant::sources::SourcePolicy;
use serde::Deserialize;
use serde_json::json;

/// Where a repo's API is and how to sign in to it.
#[derive(Clone, Debug)]
pub struct ApiRepo {
    pub forge: Forge,
    /// `https://api.github.com`, `https://host/api/v4`, `https://host/api/v1`, …
    pub api: String,
    /// `owner/name` (GitLab: the full `group/sub/name` path).
    pub path: String,
    pub token: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Success,
    Failure,
}

/// A comment on a pull (merge) request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{0}")]
    NotAllowed(String),
    #[error("the forge answered {status} to {what}")]
    Status { what: &'static str, status: u16 },
    #[error("the forge cannot be reached ({0})")]
    Transport(String),
}

impl From<micro_gitnet::http::ExchangeError> for RestError {
    fn from(e: micro_gitnet::http::ExchangeError) -> Self {
        RestError::Transport(e.to_string())
    }
}

/// Pages of comments read at most (100 a page): a pull request with more than 10,000
/// comments gets a new preview comment rather than a stalled worker.
const MAX_PAGES: u32 = 100;
/// A client of the forges' REST APIs: gitnet's checked client (reqwest, never a redirect
/// followed), connecting only to addresses the policy allows.
pub struct Rest {
    http: reqwest::Client,
    policy: SourcePolicy,
}

#[derive(Deserialize)]
struct RawComment {
    id: u64,
    #[serde(default)]
    body: String,
}

impl Rest {
    pub fn new(policy: SourcePolicy) -> Result<Self, RestError> {
        Ok(Rest {
            http: checked_client(&policy)?,
            policy,
        })
    }

    async fn call(
        &self,
        repo: &ApiRepo,
        method: http::Method,
        url: String,
        body: Option<serde_json::Value>,
        what: &'static str,
    ) -> Result<Answer, RestError> {
        // The address is checked before every request (the forge's DNS may change).
        let (policy, api) = (self.policy.clone(), repo.api.clone());
        tokio::task::spawn_blocking(move || policy.check(&api))
            .await
            .map_err(|e| RestError::Transport(e.to_string()))?
            .map_err(|e| RestError::NotAllowed(e.to_string()))?;
        let (name, value) = repo.forge.auth_header(&repo.token);
        let mut req = self
            .http
            .request(method, url)
            .header(name, value)
            .header("accept", "application/json");
        if repo.forge == Forge::GitHub {
            req = req
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28");
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer = exchange(req).await?;
        if !(200..300).contains(&answer.status) {
            return Err(RestError::Status {
                what,
                status: answer.status,
            });
        }
        Ok(answer)
    }

    fn project(repo: &ApiRepo) -> String {
        match repo.forge {
            Forge::GitLab => format!("{}/projects/{}", repo.api, repo.path.replace('/', "%2F")),
            _ => format!("{}/repos/{}", repo.api, repo.path),
        }
    }

    /// Sets the commit status of `sha` under `context`.
    pub async fn status(
        &self,
        repo: &ApiRepo,
        sha: &str,
        state: State,
        context: &str,
        description: &str,
        target_url: &str,
    ) -> Result<(), RestError> {
        let description: String = description.chars().take(140).collect();
        let url = format!("{}/statuses/{sha}", Self::project(repo));
        let body = match repo.forge {
            Forge::GitLab => json!({
                "state": match state {
                    State::Pending => "pending",
                    State::Success => "success",
                    State::Failure => "failed",
                },
                "name": context, "description": description, "target_url": target_url,
            }),
            _ => json!({
                "state": match state {
                    State::Pending => "pending",
                    State::Success => "success",
                    State::Failure => "failure",
                },
                "context": context, "description": description, "target_url": target_url,
            }),
        };
        self.call(repo, http::Method::POST, url, Some(body), "a commit status")
            .await
            .map(drop)
    }

    fn comments_url(repo: &ApiRepo, number: u64) -> String {
        match repo.forge {
            Forge::GitLab => format!("{}/merge_requests/{number}/notes", Self::project(repo)),
            _ => format!("{}/issues/{number}/comments", Self::project(repo)),
        }
    }

    fn comment_url(repo: &ApiRepo, number: u64, id: u64) -> String {
        match repo.forge {
            Forge::GitLab => format!("{}/{id}", Self::comments_url(repo, number)),
            _ => format!("{}/issues/comments/{id}", Self::project(repo)),
        }
    }

    /// Every comment of pull request `number`, page by page.
    pub async fn comments(&self, repo: &ApiRepo, number: u64) -> Result<Vec<Comment>, RestError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let size = match repo.forge {
                Forge::Gitea => "limit",
                _ => "per_page",
            };
            let url = format!(
                "{}?{size}=100&page={page}",
                Self::comments_url(repo, number)
            );
            let res = self
                .call(repo, http::Method::GET, url, None, "listing comments")
                .await?;
            let more = has_next(&res.headers);
            let batch: Vec<RawComment> = serde_json::from_slice(&res.body)
                .map_err(|e| RestError::Transport(format!("comments: {e}")))?;
            let empty = batch.is_empty();
            out.extend(batch.into_iter().map(|c| Comment {
                id: c.id,
                body: c.body,
            }));
            if !more || empty {
                break;
            }
        }
        Ok(out)
    }

    pub async fn create_comment(
        &self,
        repo: &ApiRepo,
        number: u64,
        body: &str,
    ) -> Result<u64, RestError> {
        let url = Self::comments_url(repo, number);
        let res = self
            .call(
                repo,
                http::Method::POST,
                url,
                Some(json!({ "body": body })),
                "posting a comment",
            )
            .await?;
        let c: RawComment = serde_json::from_slice(&res.body)
            .map_err(|e| RestError::Transport(format!("comment: {e}")))?;
        Ok(c.id)
    }

    pub async fn edit_comment(
        &self,
        repo: &ApiRepo,
        number: u64,
        id: u64,
        body: &str,
    ) -> Result<(), RestError> {
        let method = match repo.forge {
            Forge::GitLab => http::Method::PUT,
            _ => http::Method::PATCH,
        };
        let url = Self::comment_url(repo, number, id);
        self.call(
            repo,
            method,
            url,
            Some(json!({ "body": body })),
            "editing a comment",
        )
        .await
        .map(drop)
    }

    pub async fn delete_comment(
        &self,
        repo: &ApiRepo,
        number: u64,
        id: u64,
    ) -> Result<(), RestError> {
        let url = Self::comment_url(repo, number, id);
        self.call(repo, http::Method::DELETE, url, None, "deleting a comment")
            .await
            .map(drop)
    }
}

/// Whether another page follows: a `Link: <…>; rel="next"` (GitHub, Gitea, GitLab) or
/// GitLab's `X-Next-Page`.
fn has_next(headers: &http::HeaderMap) -> bool {
    let link = headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|part| part.contains("rel=\"next\"")));
    let next_page = headers
        .get("x-next-page")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    link || next_page
}

/// `owner/name` of a repo URL: its path without `.git` (all of it, for GitLab's groups);
/// for a `file://` repo (tests, single-team installs), its last two folders.
pub fn repo_path(url: &str) -> String {
    let path = match url.strip_prefix("file://") {
        Some(p) => {
            let parts: Vec<&str> = p.trim_end_matches('/').rsplit('/').take(2).collect();
            parts.into_iter().rev().collect::<Vec<_>>().join("/")
        }
        None => url
            .split_once("://")
            .map_or(url, |(_, r)| r)
            .split_once('/')
            .map_or("", |(_, p)| p)
            .to_owned(),
    };
    path.trim_end_matches('/')
        .trim_end_matches(".git")
        .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use micro_testkit::Recorder;

    fn repo(forge: Forge, api: &str) -> ApiRepo {
        ApiRepo {
            forge,
            api: api.to_owned(),
            path: "acme/app".into(),
            token: "t0k".into(),
        }
    }

    fn local() -> SourcePolicy {
        SourcePolicy {
            allow_local: true,
            forbidden: vec![],
        }
    }

    #[tokio::test]
    async fn each_forge_in_its_documented_shape_with_paging() {
        let rec = Recorder::start();
        let rest = Rest::new(local()).unwrap();
        for (forge, status_path, auth, state, edit) in [
            (
                Forge::GitHub,
                "/repos/acme/app/statuses/abc",
                "Bearer t0k",
                "failure",
                "PATCH",
            ),
            (
                Forge::Gitea,
                "/repos/acme/app/statuses/abc",
                "token t0k",
                "failure",
                "PATCH",
            ),
            (
                Forge::GitLab,
                "/projects/acme%2Fapp/statuses/abc",
                "t0k",
                "failed",
                "PUT",
            ),
        ] {
            let r = repo(forge, &rec.url);
            let n = match forge {
                Forge::GitHub => 1,
                Forge::Gitea => 2,
                Forge::GitLab => 3,
            };
            rest.status(
                &r,
                "abc",
                State::Failure,
                "micro/acme",
                &"x".repeat(300),
                "http://p",
            )
            .await
            .unwrap();
            let sent = rec.requests().pop().unwrap();
            assert_eq!(sent.path, status_path);
            assert_eq!(sent.credential, auth);
            let key = if forge == Forge::GitLab {
                "name"
            } else {
                "context"
            };
            assert_eq!(sent.body[key], "micro/acme");
            assert_eq!(sent.body["state"], state);
            assert_eq!(sent.body["description"].as_str().unwrap().len(), 140);

            // 250 comments by others: every page is read.
            rec.seed(n, 250);
            let id = rest.create_comment(&r, n, "ours").await.unwrap();
            let all = rest.comments(&r, n).await.unwrap();
            assert_eq!(all.len(), 251, "{forge:?}");
            assert_eq!(
                all.last().unwrap(),
                &Comment {
                    id,
                    body: "ours".into()
                }
            );
            rest.edit_comment(&r, n, id, "edited").await.unwrap();
            assert_eq!(rec.requests().pop().unwrap().method, edit);
            assert!(rec.comments(n).contains(&(id, "edited".into())));
            rest.delete_comment(&r, n, id).await.unwrap();
            assert_eq!(rec.comments(n).len(), 250);
        }
    }

    #[tokio::test]
    async fn the_api_address_passes_the_platform_policy_on_every_call() {
        let rec = Recorder::start();
        let rest = Rest::new(SourcePolicy::default()).unwrap();
        let err = rest
            .status(
                &repo(Forge::GitHub, &rec.url),
                "abc",
                State::Pending,
                "c",
                "d",
                "u",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RestError::NotAllowed(_)), "{err}");
        assert!(rec.requests().is_empty(), "nothing was sent");
    }

    #[test]
    fn repo_paths_from_urls() {
        assert_eq!(repo_path("https://github.com/acme/app.git"), "acme/app");
        assert_eq!(repo_path("https://gitlab.com/acme/sub/app"), "acme/sub/app");
        assert_eq!(repo_path("file:///tmp/x/acme/app.git"), "acme/app");
    }
}
