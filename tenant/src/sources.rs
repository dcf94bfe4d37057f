//! Code from other repositories: resolving what a branch or tag points at, and a bare
//! cache repo per URL (shared by every service and namespace that uses it) from which a
//! pinned commit is checked out.

use crate::repo::write_tree;
use git2::{Direction, Oid, Repository};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {message}")]
    Git { url: String, message: String },
    #[error("{url}: no branch or tag named {reference:?}")]
    NoSuchRef { url: String, reference: String },
    #[error("{url}: commit {commit} not found (was it force-pushed away?)")]
    NoSuchCommit { url: String, commit: String },
    #[error("{url}@{commit}: no folder {path:?}")]
    NoSuchPath {
        url: String,
        commit: String,
        path: String,
    },
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// What a tenant sees of a failed fetch on the platform: nothing of the server's
    /// paths or of what answers where (the details go to the server's log).
    #[error("{url}: cannot fetch it (not reachable, not a git repository, too large or too slow)")]
    Unavailable { url: String },
    #[error("{url}: {why}")]
    NotAllowed { url: String, why: &'static str },
    /// What a caller's check of a fetched repo said (say, over the namespace's quota).
    #[error("{0}")]
    Refused(String),
}

/// Sets libgit2's network timeouts for every fetch of this process: connecting, and
/// waiting for each read. Call once at start, before any fetch.
#[allow(unsafe_code)]
pub fn set_network_timeouts(connect: std::time::Duration, read: std::time::Duration) {
    let ms = |d: std::time::Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: libgit2 reads these two ints when a connection starts; this runs at
    // start-up, before any thread fetches.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms(connect));
        let _ = git2::opts::set_server_timeout_in_milliseconds(ms(read));
    }
}

/// Most bytes one source fetch may download.
pub const MAX_FETCH_BYTES: usize = 256 << 20;
/// Longest one source fetch may take.
pub const MAX_FETCH_TIME: std::time::Duration = std::time::Duration::from_secs(120);

/// Where the platform may fetch tenants' sources from. The platform fetches on the
/// tenant's behalf from inside the operator's network, so by default nothing local:
/// no `file://`, no loopback, private, link-local or otherwise internal address.
///
/// The URL is checked here, and every address a name resolves to is checked again where
/// the connection is made ([`SourcePolicy::allows`], in the `micro-gitnet` resolver), so
/// a DNS answer that changes in between (rebinding) reaches nothing local.
#[derive(Clone, Debug, Default)]
pub struct SourcePolicy {
    /// `--allow-local-sources`: single-team installs and tests may use local repos.
    pub allow_local: bool,
    /// Never a source, even then: the platform's own data (other tenants' repos).
    pub forbidden: Vec<PathBuf>,
}

impl SourcePolicy {
    /// Whether the platform may connect to `ip` for a tenant.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allow_local || is_public(ip)
    }

    /// Whether the platform may fetch `url`; decided from the URL and DNS alone, before
    /// any connection, so the answer says nothing about what listens where.
    pub fn check(&self, url: &str) -> Result<(), SourceError> {
        let refuse = |why| {
            Err(SourceError::NotAllowed {
                url: url.to_owned(),
                why,
            })
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !self.allow_local {
                return refuse("file:// sources are not allowed on this platform");
            }
            let real = Path::new(path)
                .canonicalize()
                .unwrap_or_else(|_| PathBuf::from(path));
            if self.forbidden.iter().any(|f| real.starts_with(f)) {
                return refuse("the platform's own files are never a source");
            }
            return Ok(());
        }
        let parsed = match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "https" | "http") => parsed,
            _ => return refuse("only https://, http:// (and, where allowed, file://) sources"),
        };
        if self.allow_local {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::IpAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![ip.into()],
            Some(url::Host::Ipv6(ip)) => vec![ip.into()],
            Some(url::Host::Domain(host)) => {
                match std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) {
                    Ok(a) => a.map(|a| a.ip()).collect(),
                    Err(_) => {
                        return Err(SourceError::Unavailable {
                            url: url.to_owned(),
                        });
                    }
                }
            }
            None => Vec::new(),
        };
        if addrs.is_empty() || addrs.iter().any(|ip| !is_public(*ip)) {
            return refuse("local, private and link-local addresses are not allowed as sources");
        }
        Ok(())
    }
}

/// The host of an `https://` or `http://` URL (`https://u@[::1]:8/x` → `::1`).
pub fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))?;
    Some(match parsed.host()? {
        url::Host::Domain(name) => name.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    })
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, multicast, broadcast or documentation space.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

fn git_err(url: &str) -> impl Fn(git2::Error) -> SourceError + '_ {
    move |e| SourceError::Git {
        url: url.to_owned(),
        message: e.message().to_owned(),
    }
}

/// A ref resolved to the commit it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub commit: Oid,
    /// The branch or tag to follow later; `None` when a commit id was asked for.
    pub track: Option<String>,
}

/// What `reference` (a branch, a tag, a commit id; default: the remote's HEAD branch)
/// points at in the repo at `url`, asked of the remote without fetching.
pub fn resolve(url: &str, reference: Option<&str>) -> Result<Resolved, SourceError> {
    if let Some(r) = reference
        && r.len() == 40
        && let Ok(commit) = Oid::from_str(r)
    {
        return Ok(Resolved {
            commit,
            track: None,
        });
    }
    let mut remote = git2::Remote::create_detached(url).map_err(git_err(url))?;
    let conn = remote
        .connect_auth(Direction::Fetch, None, None)
        .map_err(git_err(url))?;
    let heads: Vec<(String, Oid, Option<String>)> = conn
        .list()
        .map_err(git_err(url))?
        .iter()
        .map(|h| {
            (
                h.name().to_owned(),
                h.oid(),
                h.symref_target().map(str::to_owned),
            )
        })
        .collect();
    let find = |name: &str| {
        heads
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, oid, _)| *oid)
    };
    match reference {
        None => {
            let (_, oid, target) = heads.iter().find(|(n, _, _)| n == "HEAD").ok_or_else(|| {
                SourceError::NoSuchRef {
                    url: url.to_owned(),
                    reference: "HEAD".into(),
                }
            })?;
            let track = target
                .as_deref()
                .and_then(|t| t.strip_prefix("refs/heads/"))
                .map(str::to_owned);
            Ok(Resolved {
                commit: *oid,
                track,
            })
        }
        Some(r) => {
            // A tag's peeled entry names the commit, not the tag object.
            let commit = find(&format!("refs/heads/{r}"))
                .or_else(|| find(&format!("refs/tags/{r}^{{}}")))
                .or_else(|| find(&format!("refs/tags/{r}")))
                .ok_or_else(|| SourceError::NoSuchRef {
                    url: url.to_owned(),
                    reference: r.to_owned(),
                })?;
            Ok(Resolved {
                commit,
                track: Some(r.to_owned()),
            })
        }
    }
}

/// The scheme prefix of the platform's checked transport (`micro-checked+https://…`):
/// a fetch for a tenant goes through it when the process registered it (the server
/// does, `micro_gitnet::register`), so that it follows no redirect and connects only to
/// addresses the policy allows, checked as they are resolved.
pub const CHECKED: &str = "micro-checked+";

/// What a fetch through the checked transport may do: read by the transport on the
/// fetching thread, set by [`fetch_refs`] for the length of one fetch.
#[derive(Clone, Debug)]
pub struct FetchContext {
    pub policy: SourcePolicy,
    /// A user name and token, sent as HTTP Basic credentials.
    pub login: Option<(String, String)>,
}

thread_local! {
    static FETCHING: std::cell::RefCell<Option<FetchContext>> = const { std::cell::RefCell::new(None) };
}

/// The fetch this thread is making through the checked transport, if any.
pub fn fetching() -> Option<FetchContext> {
    FETCHING.with(|f| f.borrow().clone())
}

static CHECKED_TRANSPORT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says that this process registered the checked transport: policy fetches use it.
pub fn use_checked_transport() {
    CHECKED_TRANSPORT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Fetches `refspecs` from `url` into `repo`. With a `policy` (the platform fetching for
/// a tenant) the URL must pass it, the fetch is bounded in size and time, follows no
/// redirect, and a failure says nothing of what answers where (the detail goes to the
/// server's log). `login` is a user name and token sent as HTTP Basic credentials, once.
pub fn fetch_refs(
    repo: &Repository,
    url: &str,
    refspecs: &[&str],
    policy: Option<&SourcePolicy>,
    login: Option<(String, String)>,
    cert_check: Option<&crate::change::CertCheck>,
) -> Result<(), SourceError> {
    if let Some(policy) = policy {
        policy.check(url)?;
    }
    // Through the checked transport where this process has it: http(s) for a tenant.
    let checked = policy.is_some()
        && CHECKED_TRANSPORT.load(std::sync::atomic::Ordering::Relaxed)
        && (url.starts_with("https://") || url.starts_with("http://"));
    let _context = match (checked, policy) {
        (true, Some(policy)) => Some(Fetching::set(FetchContext {
            policy: policy.clone(),
            login: login.clone(),
        })),
        _ => None,
    };
    let remote_url = if checked {
        format!("{CHECKED}{url}")
    } else {
        url.to_owned()
    };
    let mut remote = repo.remote_anonymous(&remote_url).map_err(git_err(url))?;
    let mut options = git2::FetchOptions::new();
    if policy.is_some() {
        // libgit2's own transport follows the first redirect unless told not to.
        options.follow_redirects(git2::RemoteRedirect::None);
    }
    let mut callbacks = git2::RemoteCallbacks::new();
    if policy.is_some() {
        let started = std::time::Instant::now();
        // Returning false aborts the fetch.
        callbacks.transfer_progress(move |p| {
            p.received_bytes() <= MAX_FETCH_BYTES && started.elapsed() <= MAX_FETCH_TIME
        });
    }
    if let Some((user, token)) = login {
        // Once: libgit2 asks again after a refusal, for ever.
        let mut asked = false;
        callbacks.credentials(move |_, _, _| {
            if std::mem::replace(&mut asked, true) {
                return Err(git2::Error::from_str("the token was refused"));
            }
            git2::Cred::userpass_plaintext(&user, &token)
        });
    }
    if let Some(crate::change::CertCheck(check)) = cert_check.cloned() {
        callbacks.certificate_check(move |cert, host| {
            let der = cert
                .as_x509()
                .map(|x| x.data().to_vec())
                .ok_or_else(|| git2::Error::from_str("no X.509 certificate"))?;
            check(&der, host)
                .map(|()| git2::CertificateCheckStatus::CertificateOk)
                .map_err(|e| git2::Error::from_str(&e))
        });
    }
    options.remote_callbacks(callbacks);
    if let Err(e) = remote.fetch(refspecs, Some(&mut options), None) {
        if policy.is_some() {
            tracing::warn!(url, error = %e.message(), "fetch failed");
            return Err(SourceError::Unavailable {
                url: url.to_owned(),
            });
        }
        return Err(git_err(url)(e));
    }
    Ok(())
}

/// The fetch context of this thread while it lives.
struct Fetching;

impl Fetching {
    fn set(context: FetchContext) -> Self {
        FETCHING.with(|f| *f.borrow_mut() = Some(context));
        Fetching
    }
}

impl Drop for Fetching {
    fn drop(&mut self) {
        FETCHING.with(|f| *f.borrow_mut() = None);
    }
}

/// Bare cache repos, one per source URL.
pub struct SourceCache {
    root: PathBuf,
    locks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
    /// Set on the platform (fetches for tenants); none in the CLI (the user's own).
    policy: Option<SourcePolicy>,
    /// A platform token sent as the HTTP password (a pod fetching its tenant's repo).
    token: Option<String>,
    /// The platform's pinned CA, checked instead of the system's roots.
    cert_check: Option<crate::change::CertCheck>,
}

impl SourceCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SourceCache {
            root: root.into(),
            locks: Mutex::new(HashMap::new()),
            policy: None,
            token: None,
            cert_check: None,
        }
    }

    /// Fetches trusting only what `check` accepts (the platform's pinned CA).
    pub fn with_cert_check(mut self, check: crate::change::CertCheck) -> Self {
        self.cert_check = Some(check);
        self
    }

    /// Fetches authenticated with a platform token (HTTP Basic, any user name).
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// The platform's cache: fetches only what `policy` allows, bounded in size and
    /// time, and tells tenants nothing of the server's paths or network.
    pub fn for_platform(root: impl Into<PathBuf>, policy: SourcePolicy) -> Self {
        SourceCache {
            policy: Some(policy),
            ..SourceCache::new(root)
        }
    }

    fn repo_path(&self, url: &str) -> PathBuf {
        let digest = hex::encode(&Sha256::digest(url.as_bytes())[..12]);
        self.root.join(format!("{digest}.git"))
    }

    /// Opens the cache for `url` with `commit` in it, fetching branches and tags if it is
    /// not there yet. Callers hold the URL's lock.
    fn with_commit<T>(
        &self,
        url: &str,
        commit: Oid,
        f: impl FnOnce(&Repository) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        let path = self.repo_path(url);
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(path.clone()).or_default().clone()
        };
        let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(git_err(url))?,
        };
        if repo.find_commit(commit).is_err() {
            let login = self.token.clone().map(|t| ("micro".to_owned(), t));
            fetch_refs(
                &repo,
                url,
                &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                self.policy.as_ref(),
                login,
                self.cert_check.as_ref(),
            )?;
            if repo.find_commit(commit).is_err() {
                return Err(SourceError::NoSuchCommit {
                    url: url.to_owned(),
                    commit: commit.to_string(),
                });
            }
        }
        f(&repo)
    }

    /// Writes the files of `path` (default: the whole repo) at `commit` into `dest`.
    pub fn checkout(
        &self,
        url: &str,
        commit: Oid,
        path: Option<&str>,
        dest: &Path,
    ) -> Result<(), SourceError> {
        self.with_commit(url, commit, |repo| {
            let tree = subtree(repo, url, commit, path)?;
            Ok(write_tree(repo, &tree, dest)?)
        })
    }

    /// The bytes of `file` inside `path` at `commit`, if it exists.
    pub fn read_file(
        &self,
        url: &str,
        commit: Oid,
        path: Option<&str>,
        file: &str,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        self.with_commit(url, commit, |repo| {
            let tree = subtree(repo, url, commit, path)?;
            let Some(entry) = tree.get_name(file) else {
                return Ok(None);
            };
            let blob = repo.find_blob(entry.id()).map_err(git_err(url))?;
            Ok(Some(blob.content().to_vec()))
        })
    }
}

fn subtree<'r>(
    repo: &'r Repository,
    url: &str,
    commit: Oid,
    path: Option<&str>,
) -> Result<git2::Tree<'r>, SourceError> {
    let root = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(git_err(url))?;
    match path.filter(|p| !p.is_empty() && *p != ".") {
        None => Ok(root),
        Some(p) => root
            .get_path(Path::new(p))
            .and_then(|e| repo.find_tree(e.id()))
            .map_err(|_| SourceError::NoSuchPath {
                url: url.to_owned(),
                commit: commit.to_string(),
                path: p.to_owned(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Signature;

    /// A repo with a branch `main` (two commits) and a tag `v1` on the first.
    fn origin(dir: &Path) -> (String, Oid, Oid) {
        let repo = Repository::init_bare(dir).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        let commit = |content: &str, parents: &[&git2::Commit<'_>]| {
            let mut app = repo.treebuilder(None).unwrap();
            app.insert("main.py", repo.blob(content.as_bytes()).unwrap(), 0o100644)
                .unwrap();
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("app", app.write().unwrap(), 0o040000).unwrap();
            let tree = repo.find_tree(root.write().unwrap()).unwrap();
            repo.commit(Some("refs/heads/main"), &sig, &sig, content, &tree, parents)
                .unwrap()
        };
        let first = commit("v1", &[]);
        let first_commit = repo.find_commit(first).unwrap();
        repo.tag("v1", first_commit.as_object(), &sig, "v1", false)
            .unwrap();
        let second = commit("v2", &[&first_commit]);
        (format!("file://{}", dir.display()), first, second)
    }

    #[test]
    fn resolves_branches_tags_head_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (url, first, second) = origin(&dir.path().join("origin.git"));
        assert_eq!(
            resolve(&url, None).unwrap(),
            Resolved {
                commit: second,
                track: Some("main".into())
            }
        );
        assert_eq!(resolve(&url, Some("main")).unwrap().commit, second);
        assert_eq!(
            resolve(&url, Some("v1")).unwrap(),
            Resolved {
                commit: first,
                track: Some("v1".into())
            }
        );
        let pinned = resolve(&url, Some(&first.to_string())).unwrap();
        assert_eq!(
            pinned,
            Resolved {
                commit: first,
                track: None
            }
        );
        assert!(matches!(
            resolve(&url, Some("nope")),
            Err(SourceError::NoSuchRef { .. })
        ));
    }

    #[test]
    fn checks_out_a_folder_at_a_commit_from_a_shared_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (url, first, second) = origin(&dir.path().join("origin.git"));
        let cache = SourceCache::new(dir.path().join("cache"));
        cache
            .checkout(&url, first, Some("app"), &dir.path().join("a"))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/main.py")).unwrap(),
            "v1"
        );
        cache
            .checkout(&url, second, Some("app"), &dir.path().join("b"))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b/main.py")).unwrap(),
            "v2"
        );
        assert_eq!(
            cache
                .read_file(&url, second, Some("app"), "main.py")
                .unwrap()
                .unwrap(),
            b"v2"
        );
        assert!(
            cache
                .read_file(&url, second, Some("app"), "nope")
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            cache.checkout(&url, second, Some("missing"), &dir.path().join("c")),
            Err(SourceError::NoSuchPath { .. })
        ));
        let unknown = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert!(matches!(
            cache.checkout(&url, unknown, None, &dir.path().join("d")),
            Err(SourceError::NoSuchCommit { .. })
        ));
        // One cache repo for the URL, whatever the commits.
        assert_eq!(
            std::fs::read_dir(dir.path().join("cache")).unwrap().count(),
            1
        );
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn the_platform_fetches_from_the_internet_only_unless_told() {
        let strict = SourcePolicy::default();
        for url in [
            "file:///srv/repos/default.git",
            "http://127.0.0.1:8081/git/default.git",
            "http://localhost/x.git",
            "https://10.0.0.5/x.git",
            "https://169.254.169.254/latest",
            "http://[::1]:80/x",
            "http://[fd00::1]/x",
            "http://user@192.168.1.1:8443/x",
            "ssh://example.com/x",
        ] {
            assert!(
                matches!(strict.check(url), Err(SourceError::NotAllowed { .. })),
                "{url}"
            );
        }
        assert!(strict.check("https://93.184.216.34/acme/greeter").is_ok());
        let local = SourcePolicy {
            allow_local: true,
            forbidden: vec![PathBuf::from("/srv/micro")],
        };
        assert!(local.check("http://127.0.0.1:9/x.git").is_ok());
        assert!(local.check("file:///tmp/somewhere.git").is_ok());
        assert!(local.check("file:///srv/micro/repos/default.git").is_err());
    }

    #[test]
    fn addresses_are_sorted_into_public_and_not() {
        for ip in ["8.8.8.8", "2606:4700::1111", "1.1.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::ffff:127.0.0.1",
            "fe80::1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
