//! Tenant repositories: bare git repos, one per namespace, read straight from git objects.

use crate::desired::{DesiredNamespace, DesiredService};
use crate::render;
use crate::spec::{self, ConfigSpec, NamespaceSpec, ServiceSpec, SpecError, Support};
use git2::{ObjectType, Oid, Repository, Signature, Tree};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub use crate::layout::BRANCH;

const TEMPLATE: &[(&str, &str)] = &[
    ("micro.yaml", include_str!("../../repo-template/micro.yaml")),
    (
        "config.yaml",
        include_str!("../../repo-template/config.yaml"),
    ),
    ("README.md", include_str!("../../repo-template/README.md")),
];

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("repository for namespace {0} already exists")]
    Exists(String),
}

/// The trailer the CLI puts on the commits it makes for a verb that is not a plain
/// change (`rollback`), so history can say what a commit was.
pub const ACTION_TRAILER: &str = "Micro-Action";

/// Whether `e` says a ref or revision does not resolve (the caller's mistake), rather
/// than that the repo could not be read.
pub fn is_unknown_ref(e: &git2::Error) -> bool {
    matches!(
        e.code(),
        git2::ErrorCode::NotFound | git2::ErrorCode::InvalidSpec | git2::ErrorCode::Ambiguous
    )
}

/// Who made a commit and what it says, for `micro history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub subject: String,
    pub author: String,
    /// The [`ACTION_TRAILER`] value, if any.
    pub action: Option<String>,
}

/// What `commit` is, if the repo has it.
pub fn commit_info(repo: &Repository, commit: &str) -> Option<CommitInfo> {
    let commit = repo.find_commit(Oid::from_str(commit).ok()?).ok()?;
    let author = commit.author();
    let message = commit.message().unwrap_or_default();
    let action = git2::message_trailers_strs(message).ok().and_then(|t| {
        t.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(ACTION_TRAILER))
            .map(|(_, v)| v.trim().to_owned())
    });
    Some(CommitInfo {
        subject: commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
        author: match (author.name().ok(), author.email().ok()) {
            (Some(n), Some(e)) if !e.is_empty() => format!("{n} <{e}>"),
            (Some(n), _) => n.to_owned(),
            (None, Some(e)) => e.to_owned(),
            (None, None) => String::new(),
        },
        action,
    })
}

/// Why a commit cannot be loaded as desired state.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// Valid, but more than the namespace may have.
    #[error("{0}")]
    Quota(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// Where the tenant repos live.
#[derive(Clone, Debug)]
pub struct Repos {
    root: PathBuf,
}

impl Repos {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Repos { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, namespace: &str) -> PathBuf {
        crate::layout::repo_path(&self.root, namespace)
    }

    /// Creates the bare repo of a new namespace with one commit holding the template.
    pub fn create(&self, namespace: &str, hook_exe: &Path) -> Result<(), RepoError> {
        let path = self.path(namespace);
        if path.exists() {
            return Err(RepoError::Exists(namespace.to_owned()));
        }
        // Built aside and renamed into place: an interrupted creation leaves no half repo
        // blocking the name, only a temp folder the next attempt replaces.
        let tmp = self.root.join(format!(".{namespace}.git.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        Self::initial_commit(&tmp, namespace)?;
        fs::rename(&tmp, &path).map_err(|e| RepoError::Io(path.clone(), e))?;
        self.install_hook(namespace, hook_exe)
    }

    /// Removes a deleted namespace's repo: renamed aside first, so it is gone for every
    /// reader at once (a fetch in flight fails rather than reading a half-removed repo).
    /// Nothing there is not an error.
    pub fn remove(&self, namespace: &str) -> Result<(), RepoError> {
        let path = self.path(namespace);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let aside = self.root.join(format!(".{namespace}.git.deleted-{stamp}"));
        match fs::rename(&path, &aside) {
            Ok(()) => fs::remove_dir_all(&aside).map_err(|e| RepoError::Io(aside, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RepoError::Io(path, e)),
        }
    }

    /// A server stopped while removing a deleted namespace's repo leaves the renamed-aside
    /// copy behind: a deleted tenant's code must not stay on disk. Called at start.
    pub fn remove_deleted_leftovers(&self) {
        for entry in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.')
                && name.contains(".git.deleted-")
                && let Err(e) = fs::remove_dir_all(entry.path())
            {
                tracing::warn!(folder = %name, error = %e, "cannot remove a deleted repo");
            }
        }
    }

    /// A push interrupted by a killed server leaves git's quarantine folder (the objects
    /// it was receiving) behind. Called at start, when no push can be in flight.
    fn remove_interrupted_pushes(&self, namespace: &str) {
        let objects = self.path(namespace).join("objects");
        for entry in fs::read_dir(&objects).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("tmp_objdir-incoming-") || name.starts_with("incoming-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    fn initial_commit(path: &Path, namespace: &str) -> Result<(), RepoError> {
        let repo = Repository::init_bare(path)?;
        repo.set_head(BRANCH)?;
        let mut root = repo.treebuilder(None)?;
        for (name, content) in TEMPLATE {
            let content = content.replace("{{namespace}}", namespace);
            let blob = repo.blob(content.as_bytes())?;
            root.insert(name, blob, 0o100644)?;
        }
        let tree = repo.find_tree(root.write()?)?;
        let sig = Signature::now("micro", "micro@localhost")?;
        repo.commit(Some(BRANCH), &sig, &sig, "Create namespace", &tree, &[])?;
        Ok(())
    }

    /// The settings every tenant repo has; applied again at each start, so repos made by
    /// older builds get new ones.
    fn configure(&self, namespace: &str) -> Result<(), RepoError> {
        self.remove_interrupted_pushes(namespace);
        let repo = Repository::open_bare(self.path(namespace))?;
        let mut config = repo.config()?;
        // Pushes are authenticated by the platform in front of git http-backend.
        config.set_bool("http.receivepack", true)?;
        // Branches and tags may be deleted, all but the tracked branch (the pre-receive
        // hook refuses that one).
        config.set_bool("receive.denyDeletes", false)?;
        // Partial clones (`git clone --filter=blob:none`), and the objects they fetch
        // later by id.
        config.set_bool("uploadpack.allowFilter", true)?;
        config.set_bool("uploadpack.allowReachableSHA1InWant", true)?;
        // git's own object checks: no `..`, `.git` or `/` in tree entries, no broken
        // objects, whatever a push carries.
        config.set_bool("receive.fsckObjects", true)?;
        Ok(())
    }

    /// What each of `commits` is (`None` for one the repo lacks).
    pub fn commit_infos(&self, namespace: &str, commits: &[String]) -> Vec<Option<CommitInfo>> {
        let repo = Repository::open_bare(self.path(namespace)).ok();
        commits
            .iter()
            .map(|c| repo.as_ref().and_then(|r| commit_info(r, c)))
            .collect()
    }

    /// (Re)writes the pre-receive hook so it runs this build of `micro`.
    pub fn install_hook(&self, namespace: &str, exe: &Path) -> Result<(), RepoError> {
        self.configure(namespace)?;
        let hooks = self.path(namespace).join("hooks");
        fs::create_dir_all(&hooks).map_err(|e| RepoError::Io(hooks.clone(), e))?;
        let hook = hooks.join("pre-receive");
        let quoted = exe.display().to_string().replace('\'', r"'\''");
        // The check reads local objects only, never TLS: an empty CA bundle spares it the
        // ~50 ms libgit2's start-up spends parsing the system's, and no OpenSSL
        // configuration another 2 ms, on every push.
        let script = format!(
            "#!/bin/sh\nSSL_CERT_FILE=/dev/null OPENSSL_CONF=/dev/null exec '{quoted}' hook pre-receive\n"
        );
        write_executable(&hook, script.as_bytes())?;
        // After a deletion, what only the deleted refs held is pruned (the repo's size is
        // its quota).
        let script = format!("#!/bin/sh\nexec '{quoted}' hook post-receive\n");
        write_executable(&hooks.join("post-receive"), script.as_bytes())
    }

    /// The commit at the head of the namespace's branch. Reads the loose ref file when
    /// there is one (git replaces it atomically), so a resync costs one small read.
    pub fn head(&self, namespace: &str) -> Result<Oid, git2::Error> {
        if let Some(id) = self.loose_head(namespace) {
            return Ok(id);
        }
        Repository::open_bare(self.path(namespace))?.refname_to_id(BRANCH)
    }

    /// The branch head from its loose ref file alone (one read of 41 bytes, from the
    /// page cache in a steady state), or `None` when git packed it or the repo is gone.
    pub fn loose_head(&self, namespace: &str) -> Option<Oid> {
        let text = fs::read_to_string(self.path(namespace).join(BRANCH)).ok()?;
        Oid::from_str(text.trim()).ok()
    }
}

fn write_executable(path: &Path, content: &[u8]) -> Result<(), RepoError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| RepoError::Io(path.to_owned(), e);
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(content).map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)
}

/// `config.yaml` at `commit`: each key and the version the commit names.
pub fn config_at(repo: &Repository, commit: Oid) -> Result<ConfigSpec, LoadError> {
    config_in(repo, &repo.find_commit(commit)?.tree()?)
}

/// `config.yaml` of a root `tree` (none: no keys). The one reader of the file.
pub fn config_in(repo: &Repository, tree: &Tree<'_>) -> Result<ConfigSpec, LoadError> {
    match tree.get_name(CONFIG_FILE) {
        Some(entry) => {
            let blob = repo.find_blob(entry.id())?;
            Ok(
                spec::parse_yaml::<Option<ConfigSpec>>(CONFIG_FILE, blob.content())?
                    .unwrap_or_default(),
            )
        }
        None => Ok(ConfigSpec::default()),
    }
}

/// Where a namespace's config keys and versions live.
pub const CONFIG_FILE: &str = "config.yaml";

/// Parsed service folders by (name, tree id): a push that changes one service re-parses
/// one service.
#[derive(Default)]
pub struct SpecCache {
    parsed: Mutex<HashMap<(String, Oid), Arc<Parsed>>>,
}

struct Parsed {
    spec: ServiceSpec,
    code: String,
    toolchain: Option<&'static str>,
    detected: crate::detect::Detected,
}

/// Past this many entries the cache starts over (it refills from what is pushed).
const CACHE_LIMIT: usize = 200_000;

impl SpecCache {
    fn get_or_parse(
        &self,
        repo: &Repository,
        name: &str,
        tree: &Tree<'_>,
    ) -> Result<Arc<Parsed>, LoadError> {
        let key = (name.to_owned(), tree.id());
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit.clone());
        }
        let spec_entry = tree.get_name("service.yaml").ok_or_else(|| {
            SpecError::new(
                crate::layout::spec_path(name),
                1,
                1,
                "missing: every folder under services/ needs a service.yaml",
            )
        })?;
        let blob = repo.find_blob(spec_entry.id())?;
        let spec = spec::parse_service(name, blob.content())?;
        let names: Vec<String> = tree
            .iter()
            .map(|e| String::from_utf8_lossy(e.name_bytes()).into_owned())
            .collect();
        let procfile = match tree.get_name(crate::detect::PROCFILE) {
            Some(entry) => {
                Some(String::from_utf8_lossy(repo.find_blob(entry.id())?.content()).into_owned())
            }
            None => None,
        };
        let detected =
            crate::detect::Detected::of(names.iter().map(String::as_str), procfile.as_deref());
        spec::check_folder(name, &spec, &detected)?;
        let parsed = Arc::new(Parsed {
            spec,
            code: code_digest(tree),
            toolchain: detected.language(),
            detected,
        });
        let mut cache = self.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, parsed.clone());
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Oid), Arc<Parsed>>> {
        self.parsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Digest of a service folder without its spec: "the code changed" as one field.
fn code_digest(tree: &Tree<'_>) -> String {
    let mut h = Sha256::new();
    for e in tree.iter() {
        if e.name_bytes() == b"service.yaml" {
            continue;
        }
        h.update(e.filemode().to_be_bytes());
        h.update(e.name_bytes());
        h.update([0]);
        h.update(e.id().as_bytes());
    }
    hex::encode(&h.finalize()[..10])
}

/// A public service's host name must be a DNS label.
fn check_public(name: &str, namespace: &str, spec: &spec::ServiceSpec) -> Result<(), SpecError> {
    match &spec.public {
        Some(public) if public.value => {
            spec::public_label(name, namespace)
                .map(|_| ())
                .map_err(|why| {
                    SpecError::new(
                        crate::layout::spec_path(name),
                        public.referenced.line().max(1),
                        public.referenced.column().max(1),
                        why,
                    )
                })
        }
        _ => Ok(()),
    }
}

/// Reads and validates the desired state at `commit`.
pub fn load(
    repo: &Repository,
    namespace: &str,
    commit: Oid,
    support: Support,
) -> Result<DesiredNamespace, LoadError> {
    load_cached(repo, namespace, commit, &SpecCache::default(), support)
}

/// [`load`], reusing what `cache` already parsed.
pub fn load_cached(
    repo: &Repository,
    namespace: &str,
    commit: Oid,
    cache: &SpecCache,
    support: Support,
) -> Result<DesiredNamespace, LoadError> {
    let commit = repo.find_commit(commit)?;
    let tree = commit.tree()?;
    let revision = commit.id().to_string();
    check_namespace_file(repo, &tree, namespace)?;
    let config = config_in(repo, &tree)?;
    let mut services = BTreeMap::new();
    if let Some(entry) = tree.get_name(crate::layout::SERVICES_DIR) {
        let Some(ObjectType::Tree) = entry.kind() else {
            return Err(SpecError::new("services", 1, 1, "`services` must be a folder").into());
        };
        let folder = repo.find_tree(entry.id())?;
        for entry in folder.iter() {
            if entry.kind() != Some(ObjectType::Tree) {
                continue; // a README or .gitkeep beside the service folders
            }
            let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
            if services.len() >= spec::MAX_SERVICES {
                return Err(SpecError::new(
                    crate::layout::service_dir(&name),
                    1,
                    1,
                    format!(
                        "a namespace may have at most {} services",
                        spec::MAX_SERVICES
                    ),
                )
                .into());
            }
            let service_tree = repo.find_tree(entry.id())?;
            let parsed = cache.get_or_parse(repo, &name, &service_tree)?;
            support.check(&name, &parsed.spec)?;
            check_config_keys(&name, &parsed.spec, &config)?;
            check_public(&name, namespace, &parsed.spec)?;
            services.insert(
                name.clone(),
                DesiredService {
                    model: render::model(
                        &parsed.spec,
                        &parsed.code,
                        parsed.toolchain,
                        &parsed.detected,
                        &config,
                    ),
                    name,
                    tree: entry.id().to_string(),
                    revision: revision.clone(),
                },
            );
        }
    }
    Ok(DesiredNamespace {
        namespace: namespace.to_owned(),
        revision,
        services,
    })
}

/// Every config key a service lists must be in `config.yaml` (set with `micro config
/// set` first): a missing one would only show as a crash at run time.
fn check_config_keys(name: &str, spec: &ServiceSpec, config: &ConfigSpec) -> Result<(), SpecError> {
    match spec.config.iter().find(|k| !config.contains_key(&k.value)) {
        None => Ok(()),
        Some(key) => {
            let l = &key.referenced;
            Err(SpecError::new(
                crate::layout::spec_path(name),
                l.line().max(1),
                l.column().max(1),
                format!(
                    "config key {:?} is not in config.yaml: set it first with `micro config set {} VALUE`",
                    key.value, key.value
                ),
            ))
        }
    }
}

/// The `previews:` settings of `micro.yaml` at `commit` (the defaults, off, when it
/// has none).
pub fn previews_at(repo: &Repository, commit: Oid) -> Result<crate::preview::Settings, LoadError> {
    let tree = repo.find_commit(commit)?.tree()?;
    let Some(entry) = tree.get_name("micro.yaml") else {
        return Ok(crate::preview::Settings::default());
    };
    let blob = repo.find_blob(entry.id())?;
    let ns: NamespaceSpec = spec::parse_yaml("micro.yaml", blob.content())?;
    match ns.previews {
        Some(p) => Ok(p.settings()?),
        None => Ok(crate::preview::Settings::default()),
    }
}

fn check_namespace_file(
    repo: &Repository,
    tree: &Tree<'_>,
    namespace: &str,
) -> Result<(), LoadError> {
    let entry = tree.get_name("micro.yaml").ok_or_else(|| {
        SpecError::new(
            "micro.yaml",
            1,
            1,
            "missing: the repo must keep its micro.yaml",
        )
    })?;
    let blob = repo.find_blob(entry.id())?;
    let ns: NamespaceSpec = spec::parse_yaml("micro.yaml", blob.content())?;
    if ns.schema.value != 1 {
        let l = &ns.schema.referenced;
        return Err(
            SpecError::new("micro.yaml", l.line(), l.column(), "`schema` must be 1").into(),
        );
    }
    // A preview runs its parent's repo as it is, `namespace:` naming the parent.
    let previewed = crate::preview::parent_of(namespace) == Some(ns.namespace.value.as_str());
    if let Some(previews) = &ns.previews {
        previews.settings()?;
    }
    if ns.namespace.value != namespace && !previewed {
        let l = &ns.namespace.referenced;
        return Err(SpecError::new(
            "micro.yaml",
            l.line(),
            l.column(),
            format!(
                "`namespace` is {:?} but this repo belongs to {namespace:?}",
                ns.namespace.value
            ),
        )
        .into());
    }
    Ok(())
}

/// Writes the files of `tree` into `dest` (which must not exist yet), keeping exec bits.
pub fn extract_tree(repo_path: &Path, tree: &str, dest: &Path) -> Result<(), RepoError> {
    let repo = Repository::open_bare(repo_path)?;
    let tree = repo.find_tree(Oid::from_str(tree)?)?;
    write_tree(&repo, &tree, dest)
}

pub(crate) fn write_tree(repo: &Repository, tree: &Tree<'_>, dest: &Path) -> Result<(), RepoError> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dest).map_err(|e| RepoError::Io(dest.to_owned(), e))?;
    for entry in tree.iter() {
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        // git never stores these, but a hand-made tree could: never write outside `dest`.
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let path = dest.join(&name);
        match entry.kind() {
            Some(ObjectType::Tree) => write_tree(repo, &repo.find_tree(entry.id())?, &path)?,
            Some(ObjectType::Blob) => {
                let blob = repo.find_blob(entry.id())?;
                if entry.filemode() == 0o120000 {
                    continue; // symlinks could point anywhere on the host
                }
                fs::write(&path, blob.content()).map_err(|e| RepoError::Io(path.clone(), e))?;
                if entry.filemode() == 0o100755 {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                        .map_err(|e| RepoError::Io(path.clone(), e))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_files(repo: &Repository, files: &[(&str, &str)]) -> Oid {
        let mut index = git2::Index::new().unwrap();
        for (path, content) in files {
            let blob = repo.blob(content.as_bytes()).unwrap();
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o100644,
                uid: 0,
                gid: 0,
                file_size: content.len() as u32,
                id: blob,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).unwrap();
        }
        let tree_id = index.write_tree_to(repo).unwrap();
        let tree = repo.find_tree(tree_id).unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        let parent = repo
            .refname_to_id(BRANCH)
            .ok()
            .map(|id| repo.find_commit(id).unwrap());
        let parents: Vec<_> = parent.iter().collect();
        repo.commit(Some(BRANCH), &sig, &sig, "t", &tree, &parents)
            .unwrap()
    }

    #[test]
    fn new_repo_holds_the_template_and_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let repos = Repos::new(dir.path());
        repos.create("acme", Path::new("/bin/true")).unwrap();
        let repo = Repository::open_bare(repos.path("acme")).unwrap();
        let head = repos.head("acme").unwrap();
        let desired = load(&repo, "acme", head, Support::ALL).unwrap();
        assert!(desired.services.is_empty());
        assert!(repos.path("acme").join("hooks/pre-receive").exists());
        assert!(matches!(
            repos.create("acme", Path::new("/bin/true")),
            Err(RepoError::Exists(_))
        ));
    }

    #[test]
    fn a_folders_language_comes_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let commit = commit_files(
            &repo,
            &[
                ("micro.yaml", "schema: 1\nnamespace: acme\n"),
                ("services/py/service.yaml", "run: x\n"),
                ("services/py/requirements.txt", "flask\n"),
                ("services/js/service.yaml", "run: x\n"),
                ("services/js/package.json", "{}\n"),
                ("services/sh/service.yaml", "run: x\n"),
                ("services/sh/run.sh", "echo\n"),
            ],
        );
        let desired = load(&repo, "acme", commit, Support::ALL).unwrap();
        let toolchain = |n: &str| desired.services[n].model.toolchain.clone();
        assert_eq!(toolchain("py").as_deref(), Some("python"));
        assert_eq!(toolchain("js").as_deref(), Some("node"));
        assert_eq!(toolchain("sh"), None);
    }

    #[test]
    fn services_load_with_their_tree_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let ns = "micro.yaml";
        let good = commit_files(
            &repo,
            &[
                (ns, "schema: 1\nnamespace: acme\n"),
                ("services/a/service.yaml", "run: x\n"),
                ("services/a/main.py", "print(1)\n"),
                ("services/b/service.yaml", "run: y\nreplicas: 2\n"),
            ],
        );
        let desired = load(&repo, "acme", good, Support::ALL).unwrap();
        assert_eq!(desired.services.len(), 2);
        assert_eq!(desired.services["b"].model.replicas, 2);
        assert_eq!(desired.services["a"].revision, good.to_string());

        let wrong_ns = load(&repo, "other", good, Support::ALL)
            .unwrap_err()
            .to_string();
        assert!(wrong_ns.starts_with("micro.yaml:2:12:"), "{wrong_ns}");

        let bad = commit_files(
            &repo,
            &[
                (ns, "schema: 1\nnamespace: acme\n"),
                ("services/a/service.yaml", "run: x\nport: 8080\nbogus: 1\n"),
            ],
        );
        let err = load(&repo, "acme", bad, Support::ALL)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("services/a/service.yaml:3:1:"), "{err}");

        let missing = commit_files(
            &repo,
            &[
                (ns, "schema: 1\nnamespace: acme\n"),
                ("services/c/main.py", "x"),
            ],
        );
        let err = load(&repo, "acme", missing, Support::ALL)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("services/c/service.yaml:1:1: missing"),
            "{err}"
        );
    }

    #[test]
    fn extract_writes_the_service_folder() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path().join("r.git")).unwrap();
        commit_files(
            &repo,
            &[
                ("micro.yaml", "schema: 1\nnamespace: acme\n"),
                ("services/a/service.yaml", "run: x\n"),
                ("services/a/lib/util.py", "X = 1\n"),
            ],
        );
        let desired = load(
            &repo,
            "acme",
            repo.refname_to_id(BRANCH).unwrap(),
            Support::ALL,
        )
        .unwrap();
        let dest = dir.path().join("out");
        extract_tree(
            &dir.path().join("r.git"),
            &desired.services["a"].tree,
            &dest,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(dest.join("lib/util.py")).unwrap(),
            "X = 1\n"
        );
        assert!(dest.join("service.yaml").exists());
    }
}
