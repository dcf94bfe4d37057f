//! Which forge sent a webhook delivery ([`Sender`]: Forgejo's headers differ from
//! Gitea's, its API does not), and whether it is signed with the link's secret.
//! Detection goes Forgejo → Gitea → GitLab → GitHub, since Gitea (and Forgejo) also send
//! GitHub's headers. Every comparison is constant-time; a secret is mandatory.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use micro_tenant::forge::Forge;
use sha2::Sha256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    Forgejo,
    Gitea,
    GitLab,
    GitHub,
}

/// Why a delivery is not accepted as signed (answered 401, nothing triggered).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature header")]
    Missing,
    #[error("the signature is not well-formed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the link has no secret")]
    NoSecret,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Sender {
    /// The forge a delivery's headers name, if any.
    pub fn detect(headers: &HeaderMap) -> Option<Sender> {
        [
            ("x-forgejo-event", Sender::Forgejo),
            ("x-gitea-event", Sender::Gitea),
            ("x-gitlab-event", Sender::GitLab),
            ("x-github-event", Sender::GitHub),
        ]
        .into_iter()
        .find(|(name, _)| headers.contains_key(*name))
        .map(|(_, forge)| forge)
    }

    /// The forge a link names for this sender: Forgejo is Gitea's fork and is linked as
    /// Gitea.
    pub fn forge(self) -> Forge {
        match self {
            Sender::GitHub => Forge::GitHub,
            Sender::Gitea | Sender::Forgejo => Forge::Gitea,
            Sender::GitLab => Forge::GitLab,
        }
    }

    /// Whether a link made for `linked` takes deliveries signed the way this sender
    /// signs: only its own forge's scheme, so a Gitea link's secret is never accepted as
    /// GitLab's plain token or GitHub's header.
    pub fn serves(self, linked: Forge) -> bool {
        self.forge() == linked
    }

    /// The forge's name as people read it.
    pub fn name(self) -> &'static str {
        match self {
            Sender::Forgejo => "Forgejo",
            Sender::Gitea => "Gitea",
            Sender::GitLab => "GitLab",
            Sender::GitHub => "GitHub",
        }
    }

    /// The event's kind as the forge names it (`push`, `pull_request`, `Push Hook`, …).
    pub fn event(self, headers: &HeaderMap) -> Option<&str> {
        header(headers, self.event_header())
    }

    fn event_header(self) -> &'static str {
        match self {
            Sender::Forgejo => "x-forgejo-event",
            Sender::Gitea => "x-gitea-event",
            Sender::GitLab => "x-gitlab-event",
            Sender::GitHub => "x-github-event",
        }
    }

    /// The delivery's id, by which a redelivery is recognised.
    pub fn delivery(self, headers: &HeaderMap) -> Option<&str> {
        match self {
            Sender::Forgejo => header(headers, "x-forgejo-delivery"),
            Sender::Gitea => header(headers, "x-gitea-delivery"),
            Sender::GitLab => header(headers, "idempotency-key")
                .or_else(|| header(headers, "x-gitlab-event-uuid")),
            Sender::GitHub => header(headers, "x-github-delivery"),
        }
    }

    /// Checks the delivery against the link's secret: GitHub's `X-Hub-Signature-256:
    /// sha256=<hex>` and Gitea's/Forgejo's bare hex, both HMAC-SHA256 of the raw body;
    /// GitLab's `X-Gitlab-Token`, the secret itself.
    pub fn verify(
        self,
        headers: &HeaderMap,
        secret: &[u8],
        body: &[u8],
    ) -> Result<(), SignatureError> {
        if secret.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        let hmac_hex = match self {
            Sender::GitLab => {
                let token = header(headers, "x-gitlab-token").ok_or(SignatureError::Missing)?;
                // Equal lengths compared byte by byte, all of them: no early exit.
                let same = token.len() == secret.len()
                    && token
                        .bytes()
                        .zip(secret)
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0;
                return if same {
                    Ok(())
                } else {
                    Err(SignatureError::Mismatch)
                };
            }
            Sender::GitHub => header(headers, "x-hub-signature-256")
                .ok_or(SignatureError::Missing)?
                .strip_prefix("sha256=")
                .ok_or(SignatureError::Malformed)?,
            Sender::Gitea => header(headers, "x-gitea-signature").ok_or(SignatureError::Missing)?,
            Sender::Forgejo => header(headers, "x-forgejo-signature")
                .or_else(|| header(headers, "x-gitea-signature"))
                .ok_or(SignatureError::Missing)?,
        };
        let claimed = hex::decode(hmac_hex.trim()).map_err(|_| SignatureError::Malformed)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::NoSecret)?;
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&claimed)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// The example of GitHub's "Validating webhook deliveries" documentation.
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn detection_prefers_forgejo_then_gitea_over_the_github_headers_they_also_send() {
        let gitea = headers(&[("x-gitea-event", "push"), ("x-github-event", "push")]);
        assert_eq!(Sender::detect(&gitea), Some(Sender::Gitea));
        let forgejo = headers(&[
            ("x-forgejo-event", "push"),
            ("x-gitea-event", "push"),
            ("x-github-event", "push"),
        ]);
        assert_eq!(Sender::detect(&forgejo), Some(Sender::Forgejo));
        assert_eq!(
            Sender::detect(&headers(&[("x-gitlab-event", "Push Hook")])),
            Some(Sender::GitLab)
        );
        assert_eq!(
            Sender::detect(&headers(&[("x-github-event", "ping")])),
            Some(Sender::GitHub)
        );
        assert_eq!(Sender::detect(&headers(&[("x-other", "x")])), None);
    }

    #[test]
    fn github_signatures_as_documented() {
        let good = headers(&[("x-hub-signature-256", &format!("sha256={SIGNATURE}"))]);
        assert_eq!(Sender::GitHub.verify(&good, SECRET, BODY), Ok(()));
        assert_eq!(
            Sender::GitHub.verify(&good, SECRET, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            Sender::GitHub.verify(&good, b"another secret", BODY),
            Err(SignatureError::Mismatch)
        );
        let bare = headers(&[("x-hub-signature-256", SIGNATURE)]);
        assert_eq!(
            Sender::GitHub.verify(&bare, SECRET, BODY),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            Sender::GitHub.verify(&HeaderMap::new(), SECRET, BODY),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            Sender::GitHub.verify(&good, b"", BODY),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn gitea_and_forgejo_sign_with_bare_hex_and_gitlab_sends_the_secret() {
        let gitea = headers(&[("x-gitea-signature", SIGNATURE)]);
        assert_eq!(Sender::Gitea.verify(&gitea, SECRET, BODY), Ok(()));
        let forgejo = headers(&[("x-forgejo-signature", SIGNATURE)]);
        assert_eq!(Sender::Forgejo.verify(&forgejo, SECRET, BODY), Ok(()));
        let odd = headers(&[("x-gitea-signature", "zz")]);
        assert_eq!(
            Sender::Gitea.verify(&odd, SECRET, BODY),
            Err(SignatureError::Malformed)
        );
        let gitlab = headers(&[("x-gitlab-token", "It's a Secret to Everybody")]);
        assert_eq!(Sender::GitLab.verify(&gitlab, SECRET, BODY), Ok(()));
        let wrong = headers(&[("x-gitlab-token", "It's a Secret to Everybodz")]);
        assert_eq!(
            Sender::GitLab.verify(&wrong, SECRET, BODY),
            Err(SignatureError::Mismatch)
        );
        let short = headers(&[("x-gitlab-token", "It's")]);
        assert_eq!(
            Sender::GitLab.verify(&short, SECRET, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_link_takes_only_its_own_forges_scheme() {
        let [github, gitea, gitlab] = Forge::ALL;
        assert!(Sender::GitHub.serves(github));
        assert!(Sender::Gitea.serves(gitea) && Sender::Forgejo.serves(gitea));
        assert!(Sender::GitLab.serves(gitlab));
        for linked in [gitea, gitlab] {
            assert!(
                !Sender::GitHub.serves(linked),
                "GitHub's header on a {linked} link"
            );
        }
        for linked in [github, gitea] {
            assert!(
                !Sender::GitLab.serves(linked),
                "GitLab's token on a {linked} link"
            );
        }
        assert!(!Sender::Gitea.serves(github) && !Sender::Forgejo.serves(gitlab));
    }

    #[test]
    fn deliveries_are_named_per_forge() {
        let h = headers(&[
            ("x-github-delivery", "gh-1"),
            ("x-gitea-delivery", "gt-1"),
            ("idempotency-key", "gl-1"),
            ("x-forgejo-delivery", "fj-1"),
        ]);
        assert_eq!(Sender::GitHub.delivery(&h), Some("gh-1"));
        assert_eq!(Sender::Gitea.delivery(&h), Some("gt-1"));
        assert_eq!(Sender::GitLab.delivery(&h), Some("gl-1"));
        assert_eq!(Sender::Forgejo.delivery(&h), Some("fj-1"));
        let events = headers(&[("x-gitlab-event", "Merge Request Hook")]);
        assert_eq!(Sender::GitLab.event(&events), Some("Merge Request Hook"));
    }
}
