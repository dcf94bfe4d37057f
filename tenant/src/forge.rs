//! The forges a namespace can follow: GitHub (and GitHub Enterprise), Gitea (and
//! Forgejo), GitLab. One type knows what differs between them for the platform: the name
//! a link stores, how a repo's URL tells which forge it is, where its REST API is, the
//! ref of a pull (merge) request's head, how a token signs in to its API, and the user
//! name a token fetches as.

/// A forge, as a link names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forge {
    GitHub,
    Gitea,
    GitLab,
}

impl Forge {
    pub const ALL: [Forge; 3] = [Forge::GitHub, Forge::Gitea, Forge::GitLab];

    /// The forge a link's stored name (`github`, `gitea`, `gitlab`) names.
    pub fn parse(name: &str) -> Option<Forge> {
        Forge::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The forge of a stored link: links are only made with one of [`Forge::ALL`]'s
    /// names; Gitea's API shape is the fallback, as for any Gitea-like host.
    pub fn of_link(name: &str) -> Forge {
        Forge::parse(name).unwrap_or(Forge::Gitea)
    }

    /// The name a link stores and the CLI's `--forge` takes.
    pub fn name(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::Gitea => "gitea",
            Forge::GitLab => "gitlab",
        }
    }

    /// The forge a repo's URL names: github.com (and `github.*`) and hosts named gitlab,
    /// gitea, forgejo or codeberg; any other host must be said.
    pub fn guess(url: &str) -> Option<Forge> {
        let host = host(url).to_ascii_lowercase();
        if host == "github.com" || host.starts_with("github.") {
            Some(Forge::GitHub)
        } else if host.contains("gitlab") {
            Some(Forge::GitLab)
        } else if ["gitea", "forgejo", "codeberg"]
            .iter()
            .any(|f| host.contains(f))
        {
            Some(Forge::Gitea)
        } else {
            None
        }
    }

    /// The REST API of the forge serving the repo at `url`: GitHub's (GitHub
    /// Enterprise's under `/api/v3`), GitLab's `/api/v4`, Gitea's and Forgejo's
    /// `/api/v1`; none for a repo that is not served over HTTP(S).
    pub fn api_base(self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://").filter(|(s, _)| s.starts_with("http"))
        else {
            // A local repo (a path, `file://`) has no API; `--api` names one if there is.
            return String::new();
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        match self {
            Forge::GitHub if host == "github.com" => "https://api.github.com".into(),
            Forge::GitHub => format!("{scheme}://{host}/api/v3"),
            Forge::GitLab => format!("{scheme}://{host}/api/v4"),
            Forge::Gitea => format!("{scheme}://{host}/api/v1"),
        }
    }

    /// The ref of pull (merge) request `number`'s head.
    pub fn pull_head_ref(self, number: u64) -> String {
        match self {
            Forge::GitLab => format!("refs/merge-requests/{number}/head"),
            Forge::GitHub | Forge::Gitea => format!("refs/pull/{number}/head"),
        }
    }

    /// The user name a token fetches over git as (each forge's documented one; Gitea
    /// takes any).
    pub fn git_user(self) -> &'static str {
        match self {
            Forge::GitLab => "oauth2",
            Forge::GitHub => "x-access-token",
            Forge::Gitea => "micro",
        }
    }

    /// The header a token signs in to the REST API with.
    pub fn auth_header(self, token: &str) -> (&'static str, String) {
        match self {
            Forge::GitHub => ("authorization", format!("Bearer {token}")),
            Forge::Gitea => ("authorization", format!("token {token}")),
            Forge::GitLab => ("private-token", token.to_owned()),
        }
    }
}

impl std::fmt::Display for Forge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The host (and port) part of a URL.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_forge_from_its_url_name_and_api() {
        let g = |u: &str| Forge::guess(u);
        assert_eq!(g("https://github.com/acme/app"), Some(Forge::GitHub));
        assert_eq!(g("https://gitlab.example.com/a/b"), Some(Forge::GitLab));
        assert_eq!(g("https://codeberg.org/acme/app"), Some(Forge::Gitea));
        assert_eq!(g("https://git.example.com/a/b"), None);
        for f in Forge::ALL {
            assert_eq!(Forge::parse(f.name()), Some(f));
        }
        assert_eq!(Forge::parse("bitbucket"), None);
        assert_eq!(
            Forge::GitHub.api_base("https://github.com/a/b"),
            "https://api.github.com"
        );
        assert_eq!(
            Forge::GitHub.api_base("https://ghe.corp/a/b"),
            "https://ghe.corp/api/v3"
        );
        assert_eq!(
            Forge::GitLab.api_base("https://gitlab.com/a/b"),
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            Forge::Gitea.api_base("http://127.0.0.1:3000/a/b"),
            "http://127.0.0.1:3000/api/v1"
        );
        assert_eq!(Forge::Gitea.api_base("/srv/git/a.git"), "");
        assert_eq!(Forge::Gitea.api_base("file:///srv/git/a.git"), "");
        assert_eq!(Forge::GitLab.pull_head_ref(7), "refs/merge-requests/7/head");
        assert_eq!(Forge::GitHub.pull_head_ref(7), "refs/pull/7/head");
    }
}
