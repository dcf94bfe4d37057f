//! The tenant repo's file formats and their validation: one parser, one validator, shared
//! by every writer (CLI, server) and every reader (reconciler, pre-receive check).

use crate::detect::Detected;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter, Spanned};
use std::collections::BTreeMap;

/// Largest spec file we read; a service.yaml is a few hundred bytes.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Most services one namespace may declare.
pub const MAX_SERVICES: usize = 10_000;
/// Most replicas one service may ask for on the platform.
pub const MAX_REPLICAS: u32 = 20;

/// A rejection that names the file, line and column: `file:line:col: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl SpecError {
    pub fn new(
        file: impl Into<String>,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        SpecError {
            file: file.into(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// `services/<name>/service.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub run: Option<Spanned<String>>,
    /// A command run once per revision before it starts, after what the folder's files
    /// ask for (`requirements.txt`: `pip install`, ...), or `{ detect: false, run: ... }`
    /// for the command alone.
    pub build: Option<BuildSpec>,
    /// Longest the `build` may run (`10m`, `90s`); then it is stopped and fails.
    pub build_timeout: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    pub source: Option<SourceSpec>,
    pub port: Option<Spanned<u16>>,
    pub replicas: Option<Spanned<u32>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub config: Vec<Spanned<String>>,
    pub resources: Option<Resources>,
    pub readiness: Option<Readiness>,
    pub liveness: Option<LivenessSpec>,
    /// The service serves HTTPS on `$PORT` with its certificate identity, and the
    /// platform calls it over mTLS.
    pub tls: Option<Spanned<bool>>,
    /// Reachable from outside at `https://<service>-<namespace>.<apps domain>` through
    /// the platform's edge (default: not).
    pub public: Option<Spanned<bool>>,
    /// What the edge lets through to the service.
    pub limits: Option<Limits>,
    /// `key`: callers of a public service show one of the namespace's API keys to the
    /// edge (`none`, the default: anyone may call).
    pub auth: Option<Spanned<String>>,
    /// The interpreter it runs on, where the platform has several: `python3.12`, `node20`
    /// (default: the platform's `python3` and `node`).
    pub runtime: Option<Spanned<String>>,
}

/// `build:` as a command, or as `{ detect, run }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum BuildValue {
    Command(String),
    /// `build: true`, as YAML reads a bare `true`: the command `true`.
    Flag(bool),
    Steps(BuildSteps),
}

/// `build: { detect: false, run: make }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSteps {
    /// Whether the folder's files add their install steps (default: they do).
    pub detect: Option<bool>,
    pub run: Option<String>,
}

/// The spec's `build`, where it stands.
pub type BuildSpec = Spanned<BuildValue>;

impl BuildValue {
    /// The spec's own build command, if it gives one.
    pub fn command(&self) -> Option<&str> {
        match self {
            BuildValue::Command(c) => Some(c),
            BuildValue::Flag(true) => Some("true"),
            BuildValue::Flag(false) => Some("false"),
            BuildValue::Steps(s) => s.run.as_deref(),
        }
    }

    /// Whether the folder's files add their install steps.
    pub fn detect(&self) -> bool {
        match self {
            BuildValue::Steps(s) => s.detect.unwrap_or(true),
            _ => true,
        }
    }
}

/// The edge's limits for one service.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest request body the edge passes on (`10Mi` by default, at most `1Gi`).
    pub body: Option<Spanned<String>>,
}

/// A request body's limit at the edge without `limits.body`.
pub const DEFAULT_BODY_LIMIT: u64 = 10 << 20;
/// The most `limits.body` may say.
pub const MAX_BODY_LIMIT: u64 = 1 << 30;

/// When a replica counts as ready: it listens on `$PORT` and, with `path`, answers an
/// HTTP GET there below 500; not ready within `timeout` is a failed rollout.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub path: Option<Spanned<String>>,
    /// `30s`, `2m`, or a number of seconds.
    pub timeout: Option<Spanned<String>>,
}

/// When a running replica counts as wedged and is restarted: `failures` checks in a row,
/// every `period`, that fail (a GET at `path` below 500 passes; without a path, accepting
/// connections on `$PORT` does).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessSpec {
    pub path: Option<Spanned<String>>,
    /// `10s`, `1m`, or a number of seconds.
    pub period: Option<Spanned<String>>,
    pub failures: Option<Spanned<u32>>,
}

/// A liveness check's defaults and bounds (Kubernetes' `periodSeconds: 10`,
/// `failureThreshold: 3`).
pub const DEFAULT_LIVENESS_PERIOD_SECS: u32 = 10;
pub const DEFAULT_LIVENESS_FAILURES: u32 = 3;
const MAX_LIVENESS_PERIOD_SECS: u32 = 600;
const MAX_LIVENESS_FAILURES: u32 = 100;

/// What the platform's runtime can start. A spec asking for more is refused when it is
/// pushed, where it stands, not when the runtime gets to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Support {
    /// Container images (`image:`): the Kubernetes runtime runs them, local processes
    /// cannot.
    pub images: bool,
    /// Health checks over TLS (`readiness.path` or `liveness.path` with `tls: true`): the
    /// local runtime's probes present the platform's client certificate; the kubelet's
    /// cannot, and a service that serves TLS takes only the platform's callers.
    #[serde(default)]
    pub tls_probes: bool,
    /// The interpreters a service may pin (`runtime:`).
    #[serde(default)]
    pub runtimes: crate::toolchain::Runtimes,
}

impl Support {
    /// A runtime that starts anything a valid spec asks for (or nothing: plan-only).
    pub const ALL: Support = Support {
        images: true,
        tls_probes: true,
        runtimes: crate::toolchain::Runtimes::ANY,
    };
    /// The local runtime: processes from `run` (and `build`).
    pub const PROCESSES: Support = Support {
        images: false,
        tls_probes: true,
        runtimes: crate::toolchain::Runtimes {
            python3: 0,
            node: 0,
            any: false,
        },
    };
    /// A Kubernetes cluster: images and processes, health over plain HTTP or TCP.
    pub const CLUSTER: Support = Support {
        images: true,
        tls_probes: false,
        runtimes: crate::toolchain::Runtimes {
            python3: 0,
            node: 0,
            any: false,
        },
    };

    /// The same, with the interpreters this platform has.
    pub fn with_runtimes(self, runtimes: crate::toolchain::Runtimes) -> Self {
        Support { runtimes, ..self }
    }

    /// Whether this runtime can run `spec` (of `services/<name>/service.yaml`).
    pub fn check(self, name: &str, spec: &ServiceSpec) -> Result<(), SpecError> {
        if let (false, Some(image)) = (self.images, &spec.image) {
            let l = &image.referenced;
            return Err(SpecError::new(
                crate::layout::spec_path(name),
                l.line().max(1),
                l.column().max(1),
                "`image` needs the Kubernetes runtime; this platform runs services as local processes: give a `run` command (and `build`) instead",
            ));
        }
        if let Some(runtime) = &spec.runtime
            && let Some(wanted) = crate::toolchain::Runtime::parse(&runtime.value)
            && !self.runtimes.has(wanted)
        {
            let here: Vec<String> = self
                .runtimes
                .list()
                .iter()
                .map(ToString::to_string)
                .collect();
            let l = &runtime.referenced;
            return Err(SpecError::new(
                crate::layout::spec_path(name),
                l.line().max(1),
                l.column().max(1),
                format!(
                    "runtime {wanted} is not on this platform; it has {}: name one of them, or leave `runtime` out for the default",
                    if here.is_empty() {
                        "no other".to_owned()
                    } else {
                        here.join(", ")
                    }
                ),
            ));
        }
        if !self.tls_probes && spec.tls.as_ref().is_some_and(|t| t.value) {
            let paths = [
                spec.readiness.as_ref().and_then(|r| r.path.as_ref()),
                spec.liveness.as_ref().and_then(|l| l.path.as_ref()),
            ];
            if let Some(path) = paths.into_iter().flatten().next() {
                let l = &path.referenced;
                return Err(SpecError::new(
                    crate::layout::spec_path(name),
                    l.line().max(1),
                    l.column().max(1),
                    "a health check path needs plain HTTP on this platform's Kubernetes runtime (the kubelet cannot present the platform's certificate a `tls: true` service asks for): leave out the path, and the check is that $PORT accepts connections",
                ));
            }
        }
        Ok(())
    }
}

/// How long a rollout waits for its replicas to be ready when the spec does not say.
pub const DEFAULT_READY_TIMEOUT_SECS: u32 = 60;
/// A build's time without `build_timeout` in its spec.
pub const DEFAULT_BUILD_TIMEOUT_SECS: u32 = 15 * 60;
/// The most any spec may ask; a namespace's quota (`build-time`) may allow less.
pub const MAX_BUILD_TIMEOUT_SECS: u32 = 24 * 3600;
const MAX_READY_TIMEOUT_SECS: u32 = 3600;

/// `90`, `90s`, `2m` → seconds.
pub fn parse_seconds(text: &str) -> Option<u32> {
    let text = text.trim();
    let (digits, unit) = match text.strip_suffix('s') {
        Some(d) => (d, 1),
        None => match text.strip_suffix('m') {
            Some(d) => (d, 60),
            None => (text, 1),
        },
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()?.checked_mul(unit)
}

/// Code from another repository instead of the service's folder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// An `https://`, `http://` or `file://` git URL.
    pub git: Spanned<String>,
    /// The exact commit to run (40 hex digits), so every revision is reproducible.
    #[serde(rename = "ref")]
    pub reference: Spanned<String>,
    /// The branch or tag `micro update` follows; none when pinned to a commit.
    pub track: Option<String>,
    /// The service's folder inside that repo.
    pub path: Option<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu: Option<Spanned<String>>,
    pub memory: Option<Spanned<String>>,
}

impl ServiceSpec {
    pub fn replicas(&self) -> u32 {
        self.replicas.as_ref().map_or(1, |r| r.value)
    }

    pub fn run(&self) -> Option<&str> {
        self.run.as_ref().map(|r| r.value.as_str())
    }

    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.value.as_str()))
    }
}

/// `micro.yaml`: namespace-level settings, with positions for errors that point at a value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    pub schema: Spanned<u32>,
    pub namespace: Spanned<String>,
    /// Preview environments of pull requests and branches.
    pub previews: Option<crate::preview::PreviewsSpec>,
}

/// `config.yaml`: each config key and the version it is at; never values.
pub type ConfigSpec = BTreeMap<String, ConfigEntry>;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEntry {
    pub version: u64,
    #[serde(default)]
    pub secret: bool,
}

/// Writes `config.yaml`: keys quoted (so no key reads as a number or a boolean), sorted.
pub fn write_config(config: &ConfigSpec) -> String {
    let mut out = String::from(
        "# Config keys and the version each is at. Values never live in git: `micro config set`\n\
         # stores the value and commits the version bump here.\n",
    );
    if config.is_empty() {
        out.push_str("{}\n");
    }
    for (key, entry) in config {
        let quoted = serde_json::to_string(key).unwrap_or_default();
        out.push_str(&format!(
            "{quoted}: {{ version: {}, secret: {} }}\n",
            entry.version, entry.secret
        ));
    }
    out
}

/// Parses YAML with bounded input and alias expansion, reporting `file:line:col`.
pub fn parse_yaml<T: DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<T, SpecError> {
    if bytes.len() > MAX_SPEC_BYTES {
        return Err(SpecError::new(
            file,
            1,
            1,
            format!(
                "file is {} bytes; the limit is {MAX_SPEC_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(bytes, e.valid_up_to());
        SpecError::new(file, line, column, "file is not valid UTF-8")
    })?;
    // An empty document is an empty mapping, not an error: `touch service.yaml` is fine.
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let inner = e.without_snippet();
        let message = DefaultMessageFormatter.format_message(inner).into_owned();
        let (line, column) = inner
            .location()
            .filter(|l| l.line() > 0)
            .map_or((1, 1), |l| (l.line(), l.column().max(1)));
        SpecError::new(file, line, column, message.replace('\n', " "))
    })
}

fn line_col(bytes: &[u8], offset: usize) -> (u64, u64) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line as u64, column as u64)
}

/// A DNS-1123 label: what a service name must be.
pub fn check_service_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "service name {name:?} must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
        ))
    }
}

/// The DNS label of a public service's host, `<service>-<namespace>`, when it is one:
/// at most 63 characters.
pub fn public_label(service: &str, namespace: &str) -> Result<String, String> {
    let label = format!("{service}-{namespace}");
    if label.len() > 63 {
        return Err(format!(
            "`public`: the service's host name {label:?} is {} characters, over a DNS label's 63: shorten the service's name",
            label.len()
        ));
    }
    Ok(label)
}

/// A namespace name follows the same rule as a service name.
pub fn check_namespace_name(name: &str) -> Result<(), String> {
    check_service_name(name).map_err(|_| {
        format!("namespace name {name:?} must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit")
    })?;
    if name == RESERVED_NAMESPACE {
        return Err(format!(
            "namespace {RESERVED_NAMESPACE} is reserved for the platform"
        ));
    }
    if crate::preview::is_reserved(name) {
        return Err(format!(
            "namespace name {name:?} has a preview's form (`-pr-<number>` at its end, or `-br-` in it): choose another"
        ));
    }
    Ok(())
}

/// The platform's own namespace (on Kubernetes, where it runs): never a tenant's.
pub const RESERVED_NAMESPACE: &str = "micro";

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What a spec needs from the rest of its folder: a way to start (its `run`, an
/// `image`, or one its files give), and something for a `build_timeout` to time.
pub fn check_folder(name: &str, spec: &ServiceSpec, detected: &Detected) -> Result<(), SpecError> {
    let file = crate::layout::spec_path(name);
    if spec.run.is_none() && spec.image.is_none() && detected.run.is_none() {
        return Err(SpecError::new(
            &file,
            1,
            1,
            "missing `run` (the command that starts the service) or `image`; or a Procfile with a `web:` line",
        ));
    }
    if let Some(timeout) = &spec.build_timeout {
        let build = spec.build.as_ref().map(|b| &b.value);
        let detect = build.is_none_or(BuildValue::detect);
        let command = build.and_then(BuildValue::command);
        if detected
            .given_run(spec.run.is_some())
            .build(command, detect)
            .is_none()
        {
            return Err(SpecError::new(
                &file,
                timeout.referenced.line().max(1),
                timeout.referenced.column().max(1),
                "build_timeout without a build to time (a `build` step, or a requirements.txt, package.json, ...)",
            ));
        }
    }
    Ok(())
}

/// Parses and validates `services/<name>/service.yaml` (and [`check_folder`] with the
/// rest of its folder).
pub fn parse_service(name: &str, bytes: &[u8]) -> Result<ServiceSpec, SpecError> {
    let file = crate::layout::spec_path(name);
    if let Err(message) = check_service_name(name) {
        return Err(SpecError::new(file, 1, 1, message));
    }
    let spec: ServiceSpec = parse_yaml(&file, bytes)?;
    let at = |loc: &serde_saphyr::Location, message: String| {
        SpecError::new(&file, loc.line().max(1), loc.column().max(1), message)
    };
    if let Some(run) = &spec.run
        && run.value.trim().is_empty()
    {
        return Err(at(&run.referenced, "`run` must not be empty".into()));
    }
    // Commands and values reach execve and the environment, which cannot carry NUL.
    let strings = spec
        .run
        .iter()
        .map(|r| ("run", r.value.as_str(), &r.referenced))
        .chain(
            spec.build
                .iter()
                .filter_map(|b| Some(("build", b.value.command()?, &b.referenced))),
        )
        .chain(
            spec.env
                .values()
                .map(|v| ("an env value", v.value.as_str(), &v.referenced)),
        );
    for (what, value, referenced) in strings {
        if value.contains('\0') {
            return Err(at(
                referenced,
                format!("{what} contains a NUL byte, which no command can carry"),
            ));
        }
    }
    if let Some(resources) = &spec.resources {
        check_resources(resources).map_err(|(loc, message)| at(&loc, message))?;
    }
    if let Some(runtime) = &spec.runtime
        && crate::toolchain::Runtime::parse(&runtime.value).is_none()
    {
        return Err(at(
            &runtime.referenced,
            format!(
                "runtime {:?}: python3.N or nodeN (like python3.12 or node20)",
                runtime.value
            ),
        ));
    }
    if let Some(auth) = &spec.auth {
        let public = spec.public.as_ref().is_some_and(|p| p.value);
        match auth.value.as_str() {
            "none" => {}
            "key" if public => {}
            "key" => {
                return Err(at(
                    &auth.referenced,
                    "`auth: key` guards a public service at the edge: add `public: true`"
                        .to_owned(),
                ));
            }
            other => {
                return Err(at(
                    &auth.referenced,
                    format!("auth {other:?}: `key` (callers show an API key) or `none`"),
                ));
            }
        }
    }
    if let Some(body) = spec.limits.as_ref().and_then(|l| l.body.as_ref()) {
        match crate::quantity::parse_memory(&body.value) {
            Some(b) if b <= MAX_BODY_LIMIT => {}
            _ => {
                return Err(at(
                    &body.referenced,
                    format!(
                        "limits.body {:?} must be a size up to 1Gi (like 10Mi or 512Ki)",
                        body.value
                    ),
                ));
            }
        }
    }
    if let Some(timeout) = &spec.build_timeout {
        match parse_seconds(&timeout.value) {
            Some(s) if (1..=MAX_BUILD_TIMEOUT_SECS).contains(&s) => {}
            _ => {
                return Err(at(
                    &timeout.referenced,
                    format!(
                        "build_timeout {:?} must be 1s to 1440m (like 90s or 20m)",
                        timeout.value
                    ),
                ));
            }
        }
    }
    if let Some(liveness) = &spec.liveness {
        check_liveness(liveness).map_err(|(loc, message)| at(&loc, message))?;
    }
    if let Some(readiness) = &spec.readiness {
        check_readiness(readiness).map_err(|(loc, message)| at(&loc, message))?;
    }
    if let Some(port) = &spec.port
        && port.value == 0
    {
        return Err(at(
            &port.referenced,
            "`port` must be between 1 and 65535".into(),
        ));
    }
    if let Some(replicas) = &spec.replicas
        && replicas.value > MAX_REPLICAS
    {
        return Err(at(
            &replicas.referenced,
            format!("`replicas` must be at most {MAX_REPLICAS}"),
        ));
    }
    for (key, value) in &spec.env {
        if !is_env_name(key) {
            return Err(at(
                &value.referenced,
                format!(
                    "env name {key:?} must be letters, digits and '_', not starting with a digit"
                ),
            ));
        }
        if key == "PORT" || key.starts_with("MICRO_") {
            return Err(at(
                &value.referenced,
                format!("env name {key:?} is set by the platform"),
            ));
        }
    }
    if let Some(source) = &spec.source {
        check_source(source).map_err(|(loc, message)| at(&loc, message))?;
    }
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for key in &spec.config {
        if !is_config_key(&key.value) {
            return Err(at(
                &key.referenced,
                format!("config key {:?} must be 1-253 of [A-Za-z0-9._-]", key.value),
            ));
        }
        // `db.password` and `db-password` would both be MICRO_CONFIG_DB_PASSWORD.
        let variable = crate::layout::config_env_name(&key.value);
        if let Some(first) = seen.insert(variable.clone(), &key.value) {
            return Err(at(
                &key.referenced,
                format!(
                    "config keys {first:?} and {:?} would both be ${variable}",
                    key.value
                ),
            ));
        }
    }
    Ok(spec)
}

/// Whether `url` is a git URL the platform fetches from.
pub fn is_source_url(url: &str) -> bool {
    ["https://", "http://", "file://"]
        .iter()
        .any(|p| url.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}

fn is_commit_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// A relative path inside the source repo, with no way out of it.
pub fn is_source_path(p: &str) -> bool {
    !p.starts_with('/')
        && !p.split('/').any(|part| part == ".." || part == ".")
        && !p.contains('\\')
}

fn check_source(source: &SourceSpec) -> Result<(), (serde_saphyr::Location, String)> {
    if !is_source_url(&source.git.value) {
        return Err((
            source.git.referenced,
            format!(
                "source.git {:?} must be an https://, http:// or file:// URL",
                source.git.value
            ),
        ));
    }
    if !is_commit_id(&source.reference.value) {
        return Err((
            source.reference.referenced,
            "source.ref must be a full commit id (put a branch or tag in `track`; `micro run` and `micro update` pin it)".into(),
        ));
    }
    if let Some(path) = &source.path
        && !is_source_path(&path.value)
    {
        return Err((
            path.referenced,
            format!("source.path {:?} must stay inside the repo", path.value),
        ));
    }
    Ok(())
}

fn check_resources(r: &Resources) -> Result<(), (serde_saphyr::Location, String)> {
    use crate::quantity::{MAX_CPU_MILLIS, MAX_MEMORY, MIN_MEMORY, parse_cpu, parse_memory};
    if let Some(memory) = &r.memory {
        match parse_memory(&memory.value) {
            Some(b) if (MIN_MEMORY..=MAX_MEMORY).contains(&b) => {}
            _ => {
                return Err((
                    memory.referenced,
                    format!(
                        "resources.memory {:?} must be a quantity from 16Mi to 16Gi (like 256Mi)",
                        memory.value
                    ),
                ));
            }
        }
    }
    if let Some(cpu) = &r.cpu {
        match parse_cpu(&cpu.value) {
            Some(m) if m <= MAX_CPU_MILLIS => {}
            _ => {
                return Err((
                    cpu.referenced,
                    format!(
                        "resources.cpu {:?} must be a quantity up to 8 CPUs (like 500m or 2)",
                        cpu.value
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// An HTTP path a check may GET: starts with `/`, no spaces or control characters.
fn is_check_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 1024
        && !path.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

fn check_liveness(l: &LivenessSpec) -> Result<(), (serde_saphyr::Location, String)> {
    if let Some(path) = &l.path
        && !is_check_path(&path.value)
    {
        return Err((
            path.referenced,
            format!(
                "liveness.path {:?} must be an HTTP path starting with '/'",
                path.value
            ),
        ));
    }
    if let Some(period) = &l.period
        && !parse_seconds(&period.value)
            .is_some_and(|s| (1..=MAX_LIVENESS_PERIOD_SECS).contains(&s))
    {
        return Err((
            period.referenced,
            format!(
                "liveness.period {:?} must be 1s to 10m (like 10s or 1m)",
                period.value
            ),
        ));
    }
    if let Some(failures) = &l.failures
        && !(1..=MAX_LIVENESS_FAILURES).contains(&failures.value)
    {
        return Err((
            failures.referenced,
            format!(
                "liveness.failures {} must be 1 to {MAX_LIVENESS_FAILURES}",
                failures.value
            ),
        ));
    }
    Ok(())
}

fn check_readiness(r: &Readiness) -> Result<(), (serde_saphyr::Location, String)> {
    if let Some(path) = &r.path
        && !is_check_path(&path.value)
    {
        return Err((
            path.referenced,
            format!(
                "readiness.path {:?} must be an HTTP path starting with '/'",
                path.value
            ),
        ));
    }
    if let Some(timeout) = &r.timeout {
        match parse_seconds(&timeout.value) {
            Some(s) if (1..=MAX_READY_TIMEOUT_SECS).contains(&s) => {}
            _ => {
                return Err((
                    timeout.referenced,
                    format!(
                        "readiness.timeout {:?} must be 1s to 60m (like 30s or 2m)",
                        timeout.value
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Config keys: `[A-Za-z0-9._-]{1,253}`.
pub fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_parses() {
        let spec = parse_service(
            "greeter",
            b"run: python3 main.py\nbuild: true\nport: 8080\nreplicas: 2\nenv: { GREETING: hello }\nconfig: [db.password]\nresources: { cpu: 200m, memory: 200Mi }\n",
        )
        .unwrap();
        assert_eq!(spec.run(), Some("python3 main.py"));
        assert_eq!(spec.replicas(), 2);
        assert_eq!(spec.env().collect::<Vec<_>>(), vec![("GREETING", "hello")]);
    }

    #[test]
    fn unknown_field_names_file_line_and_column() {
        let err = parse_service("x", b"run: python3 main.py\nreplica: 2\n").unwrap_err();
        assert_eq!(err.file, "services/x/service.yaml");
        assert_eq!((err.line, err.column), (2, 1));
        assert!(err.message.contains("replica"), "{err}");
        assert!(err.to_string().starts_with("services/x/service.yaml:2:1: "));
    }

    #[test]
    fn what_cannot_run_is_refused_where_it_stands() {
        let err = parse_service("x", b"run: \"python3\\0 main.py\"\n").unwrap_err();
        assert_eq!((err.line, err.message.contains("NUL")), (1, true), "{err}");
        let err = parse_service("x", b"run: a\nbuild: \"make\\0\"\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse_service("x", b"run: a\nenv: { A: \"b\\0\" }\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        for (bad, line) in [
            ("resources: { memory: lots }", 2),
            ("resources: { memory: 1Mi }", 2),
            ("resources: { memory: 64Gi }", 2),
            ("resources:\n  cpu: 100", 3),
            ("resources:\n  cpu: 0m", 3),
        ] {
            let text = format!("run: a\n{bad}\n");
            let err = parse_service("x", text.as_bytes()).unwrap_err();
            assert_eq!(err.line, line, "{bad}: {err}");
            assert!(err.message.contains("resources."), "{err}");
        }
    }

    #[test]
    fn every_field_is_documented_in_the_repo_template() {
        let readme = include_str!("../../repo-template/README.md");
        // The parser names every field it accepts when it meets one it does not.
        let err = parse_service("web", b"run: x\nnosuch: 1\n").unwrap_err();
        let fields = err.message.split("expected one of").nth(1).unwrap();
        let fields: Vec<&str> = fields
            .split(',')
            .map(|f| f.trim().trim_matches('`'))
            .collect();
        assert!(fields.len() >= 10, "{err}");
        for field in fields {
            assert!(
                readme.contains(&format!("\n{field}:")),
                "{field} is not documented"
            );
        }
        for nested in [
            "path:",
            "timeout:",
            "memory:",
            "cpu:",
            "git:",
            "ref:",
            "track:",
            "period:",
            "failures:",
            "body:",
        ] {
            assert!(readme.contains(nested), "{nested}");
        }
    }

    #[test]
    fn auth_is_key_or_none_and_key_needs_a_public_service() {
        let ok = parse_service("web", b"run: x\npublic: true\nauth: key\n").unwrap();
        assert_eq!(ok.auth.unwrap().value, "key");
        for (yaml, says) in [
            ("run: x\nauth: key\n", "add `public: true`"),
            ("run: x\npublic: true\nauth: password\n", "`key`"),
        ] {
            let err = parse_service("web", yaml.as_bytes()).unwrap_err();
            assert!(err.message.contains(says), "{err}");
        }
    }

    #[test]
    fn a_body_limit_is_a_size_up_to_a_gibibyte() {
        let ok = parse_service("web", b"run: x\nlimits: { body: 50Mi }\n").unwrap();
        assert_eq!(ok.limits.unwrap().body.unwrap().value, "50Mi");
        for bad in ["2Gi", "lots", "0"] {
            let yaml = format!("run: x\nlimits:\n  body: {bad}\n");
            let err = parse_service("web", yaml.as_bytes()).unwrap_err();
            assert_eq!(err.line, 3, "{bad}: {err}");
            assert!(err.message.contains("limits.body"), "{err}");
        }
    }

    #[test]
    fn readiness_is_checked_where_it_stands() {
        let ok = parse_service(
            "web",
            b"run: x\nreadiness:\n  path: /health\n  timeout: 2m\n",
        )
        .unwrap();
        let r = ok.readiness.unwrap();
        assert_eq!(parse_seconds(&r.timeout.unwrap().value), Some(120));
        for (bad, line, what) in [
            ("readiness:\n  path: health\n", 2, "readiness.path"),
            ("readiness:\n  timeout: soon\n", 2, "readiness.timeout"),
            ("readiness:\n  timeout: 0s\n", 2, "readiness.timeout"),
            ("readiness:\n  timeout: 2h\n", 2, "readiness.timeout"),
        ] {
            let err = parse_service("web", format!("run: x\n{bad}").as_bytes()).unwrap_err();
            assert_eq!(err.line, line + 1, "{err}");
            assert!(err.message.contains(what), "{err}");
        }
        assert_eq!(parse_seconds("90"), Some(90));
        let bare = parse_service("web", b"run: x\nreadiness: { timeout: 90 }\n").unwrap();
        assert_eq!(bare.readiness.unwrap().timeout.unwrap().value, "90");
    }

    #[test]
    fn liveness_is_checked_where_it_stands_and_has_kubernetes_defaults() {
        let ok = parse_service(
            "web",
            b"run: x\nliveness:\n  path: /alive\n  period: 5s\n  failures: 2\n",
        )
        .unwrap();
        let model =
            crate::render::model(&ok, "c", None, &Detected::default(), &ConfigSpec::default());
        let l = model.liveness.unwrap();
        assert_eq!(
            (l.path.as_deref(), l.period, l.failures),
            (Some("/alive"), 5, 2)
        );
        let bare = parse_service("web", b"run: x\nliveness: {}\n").unwrap();
        let l = crate::render::model(
            &bare,
            "c",
            None,
            &Detected::default(),
            &ConfigSpec::default(),
        )
        .liveness
        .unwrap();
        assert_eq!((l.path, l.period, l.failures), (None, 10, 3));
        // No liveness, no check (and no change to what existing services' models are).
        let none = parse_service("web", b"run: x\n").unwrap();
        assert!(
            crate::render::model(
                &none,
                "c",
                None,
                &Detected::default(),
                &ConfigSpec::default()
            )
            .liveness
            .is_none()
        );
        for (bad, line, what) in [
            ("liveness:\n  path: alive\n", 2, "liveness.path"),
            ("liveness:\n  period: 0s\n", 2, "liveness.period"),
            ("liveness:\n  period: 2h\n", 2, "liveness.period"),
            ("liveness:\n  failures: 0\n", 2, "liveness.failures"),
            ("liveness:\n  every: 5s\n", 2, "every"),
        ] {
            let err = parse_service("web", format!("run: x\n{bad}").as_bytes()).unwrap_err();
            assert_eq!(err.line, line + 1, "{bad}: {err}");
            assert!(err.message.contains(what), "{err}");
        }
    }

    #[test]
    fn tls_services_health_paths_need_a_runtime_whose_probes_speak_tls() {
        let ok = parse_service("web", b"run: x\ntls: true\nreadiness: { timeout: 2m }\n").unwrap();
        assert!(ok.tls.unwrap().value);
        for spec in [
            &b"run: x\ntls: true\nreadiness:\n  path: /health\n"[..],
            b"run: x\ntls: true\nliveness:\n  path: /health\n",
        ] {
            let parsed = parse_service("web", spec).unwrap();
            Support::PROCESSES.check("web", &parsed).unwrap();
            let err = Support::CLUSTER.check("web", &parsed).unwrap_err();
            assert_eq!((err.line, err.column), (4, 9), "{err}");
            assert!(err.message.contains("needs plain HTTP"), "{err}");
        }
        let err = parse_service("web", b"run: x\ntls: yes please\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn config_keys_that_share_a_variable_are_refused() {
        let err =
            parse_service("x", b"run: a\nconfig:\n  - db.password\n  - DB-password\n").unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        assert!(err.message.contains("MICRO_CONFIG_DB_PASSWORD"), "{err}");
        assert!(parse_service("x", b"run: a\nconfig: [db.password, db.user]\n").is_ok());
    }

    #[test]
    fn wrong_type_is_located() {
        let err = parse_service("x", b"run: a\nreplicas: many\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn syntax_error_is_located() {
        let err = parse_service("x", b"run: a\nenv: [unclosed\n").unwrap_err();
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let err = parse_service("x", b"run: a\nreplicas: 500\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 11), "{err}");
        let err = parse_service("x", b"run: a\nenv:\n  PORT: '1'\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        // No way to start: refused once the folder is known to give none either.
        let spec = parse_service("x", b"build: make\n").unwrap();
        let err = check_folder("x", &spec, &Detected::default()).unwrap_err();
        assert!(err.message.contains("run"), "{err}");
        let procfile = Detected::of(["Procfile"], Some("web: ./serve\n"));
        check_folder("x", &spec, &procfile).unwrap();
        // A build_timeout needs a build: the spec's, or one the files ask for.
        let timed = parse_service("x", b"run: a\nbuild_timeout: 5m\n").unwrap();
        let err = check_folder("x", &timed, &Detected::default()).unwrap_err();
        assert_eq!((err.line, err.column), (2, 16), "{err}");
        check_folder("x", &timed, &Detected::of(["package.json"], None)).unwrap();
        // `build: { detect: false }` keeps the files' steps out.
        let alone = parse_service("x", b"run: a\nbuild: { detect: false, run: make }\n").unwrap();
        let model = crate::render::model(
            &alone,
            "c",
            None,
            &Detected::of(["requirements.txt"], None),
            &ConfigSpec::default(),
        );
        assert_eq!(model.build.as_deref(), Some("make"));
    }

    #[test]
    fn sources_must_pin_a_commit_of_a_fetchable_url() {
        let ok = "run: x\nsource:\n  git: https://example.com/acme/greeter\n  ref: 0123456789abcdef0123456789abcdef01234567\n  track: main\n  path: cmd/greeter\n";
        let spec = parse_service("g", ok.as_bytes()).unwrap();
        assert_eq!(spec.source.unwrap().track.as_deref(), Some("main"));
        let branch = ok.replace("0123456789abcdef0123456789abcdef01234567", "main");
        let err = parse_service("g", branch.as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column), (4, 8), "{err}");
        let ssh = ok.replace(
            "https://example.com/acme/greeter",
            "git@example.com:acme/greeter",
        );
        assert_eq!(parse_service("g", ssh.as_bytes()).unwrap_err().line, 3);
        let escape = ok.replace("cmd/greeter", "../../etc");
        assert_eq!(parse_service("g", escape.as_bytes()).unwrap_err().line, 6);
    }

    #[test]
    fn config_yaml_round_trips() {
        let mut config = ConfigSpec::new();
        config.insert(
            "db.password".into(),
            ConfigEntry {
                version: 3,
                secret: true,
            },
        );
        config.insert(
            "1.5".into(),
            ConfigEntry {
                version: 1,
                secret: false,
            },
        );
        config.insert(
            "true".into(),
            ConfigEntry {
                version: 2,
                secret: false,
            },
        );
        let text = write_config(&config);
        assert_eq!(
            parse_yaml::<ConfigSpec>("config.yaml", text.as_bytes()).unwrap(),
            config
        );
        let empty = write_config(&ConfigSpec::new());
        assert_eq!(
            parse_yaml::<Option<ConfigSpec>>("config.yaml", empty.as_bytes())
                .unwrap()
                .unwrap_or_default(),
            ConfigSpec::new()
        );
    }

    #[test]
    fn bad_service_names_are_rejected() {
        for bad in ["", "Hello", "a_b", "-a", "a-", &"x".repeat(64)] {
            assert!(check_service_name(bad).is_err(), "{bad}");
        }
        for good in ["a", "hello-world", "a1", &"x".repeat(63)] {
            assert!(check_service_name(good).is_ok(), "{good}");
        }
        // A service may be called micro; a namespace may not.
        assert!(check_service_name("micro").is_ok());
        assert!(
            check_namespace_name("micro")
                .unwrap_err()
                .contains("reserved")
        );
    }

    #[test]
    fn oversized_and_alias_bombs_are_bounded() {
        let big = vec![b'#'; MAX_SPEC_BYTES + 1];
        assert!(parse_service("x", &big).is_err());
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!(
                "l{i}: &l{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        assert!(parse_yaml::<serde_json::Value>("bomb.yaml", bomb.as_bytes()).is_err());
    }
}
