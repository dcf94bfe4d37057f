//! One service's objects: its ServiceAccount, the Secret with its config and token, a
//! ClusterIP Service and the Deployment.

use super::{cpu_quantity, memory_quantity, object};
use crate::labels::{self, pod_selector, service_labels};
use crate::settings::Settings;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use micro_runtime::{API_VAR, Artifact, CALL_VAR, DEPLOYMENT_VAR, TOKEN_VAR, call_base};
use micro_tenant::desired::{DesiredService, ServiceModel};
use micro_tenant::quantity::{parse_cpu, parse_memory};
use micro_tenant::quota::{
    DEFAULT_CPU_MILLIS, DEFAULT_CPU_REQUEST_MILLIS, DEFAULT_MEMORY_BYTES,
    DEFAULT_MEMORY_REQUEST_BYTES,
};
use micro_tenant::toolchain::VENV;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where a service listens when its spec names no port (`$PORT` tells it).
pub const DEFAULT_PORT: u16 = 8080;
/// A service's Secret is `<service><suffix>`.
pub const CONFIG_SECRET_SUFFIX: &str = "-env";
/// The Secret's key holding the platform CA, mounted as a file in every container.
pub const CA_KEY: &str = "MICRO_TLS_CA_PEM";
/// Where containers find the platform CA, and their identity under `identity/`.
const CA_DIR: &str = "/run/micro";
/// The Secret's keys holding the deployment's certificate and key: files, never variables.
pub use micro_runtime::IDENTITY_VARS as IDENTITY_KEYS;
/// The Secret's keys the controller gives with a certificate identity, or not at all.
pub const WITH_IDENTITY: [&str; 3] = [
    IDENTITY_KEYS[0],
    IDENTITY_KEYS[1],
    micro_runtime::PLATFORM_IDENTITY_VAR,
];
/// Services run as this uid, never root.
const RUN_AS: i64 = 10001;
/// Where the code is checked out and built, in a volume shared by the containers.
const APP_DIR: &str = "/app";
/// Before a build, as on the local runtime: a Python folder (by the platform's one rule,
/// tested on the pod's checkout) gets a virtualenv of its own revision (`.venv` in the
/// checkout, first on PATH for the build and the service).
fn python_venv() -> String {
    use micro_tenant::toolchain::Toolchains;
    format!(
        "if {}; then {}; fi",
        Toolchains::python_test(),
        Toolchains::make_venv()
    )
}

/// One service as the renderer needs it.
#[derive(Clone, Copy, Debug)]
pub struct ServiceInput<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
    pub model: &'a ServiceModel,
    /// The tenant repo's commit it runs.
    pub revision: &'a str,
    /// What its pods fetch (the namespace's repo at the revision, a source at its
    /// commit) or run (an image).
    pub artifact: &'a Artifact,
    /// Its Secret's data: `MICRO_TOKEN`, `MICRO_CONFIG_*`, … (placeholders for review).
    pub secret: &'a BTreeMap<String, String>,
    /// What its checkout (`/app`) may hold on a node: its namespace's `checkout-size`.
    pub storage_bytes: u64,
}

impl<'a> ServiceInput<'a> {
    pub fn of(
        tenant: &'a str,
        service: &'a DesiredService,
        artifact: &'a Artifact,
        secret: &'a BTreeMap<String, String>,
        storage_bytes: u64,
    ) -> Self {
        ServiceInput {
            tenant,
            name: &service.name,
            model: &service.model,
            revision: &service.revision,
            artifact,
            secret,
            storage_bytes,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.model.port.unwrap_or(DEFAULT_PORT)
    }

    /// Whether the controller gave this deployment a certificate identity.
    fn has_identity(&self) -> bool {
        IDENTITY_KEYS.iter().all(|k| self.secret.contains_key(*k))
    }

    pub(crate) fn meta(&self, settings: &Settings, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(settings.namespace_of(self.tenant)),
            labels: Some(service_labels(self.tenant, self.name)),
            ..ObjectMeta::default()
        }
    }
}

/// ServiceAccount, Secret, Service and Deployment, in the order they are applied, then a
/// public service's Ingress.
pub fn service_objects(settings: &Settings, s: &ServiceInput<'_>) -> Vec<Value> {
    let account = ServiceAccount {
        metadata: s.meta(settings, s.name.to_owned()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };
    let secret = Secret {
        metadata: s.meta(settings, secret_name(s.name)),
        type_: Some("Opaque".into()),
        string_data: Some(secret_data(settings, s)),
        ..Secret::default()
    };
    let service = Service {
        metadata: s.meta(settings, s.name.to_owned()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(pod_selector(s.name)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: i32::from(s.port()),
                target_port: Some(http_port()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let mut objects = vec![
        object(&account),
        object(&secret),
        object(&service),
        object(&deployment(settings, s)),
    ];
    objects.extend(super::public::public_objects(settings, s));
    objects
}

/// The Secret's data: the service's config and token, and the platform CA if any.
fn secret_data(settings: &Settings, s: &ServiceInput<'_>) -> BTreeMap<String, String> {
    let mut data = s.secret.clone();
    if let Some(ca) = &settings.platform_ca {
        data.insert(CA_KEY.to_owned(), ca.clone());
    }
    data
}

pub fn secret_name(service: &str) -> String {
    format!("{service}{CONFIG_SECRET_SUFFIX}")
}

/// The container port every service listens on, by name.
fn http_port() -> IntOrString {
    IntOrString::String("http".into())
}

fn var(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: impl Into<String>) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str, size_bytes: u64) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(memory_quantity(size_bytes))),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The variables every container of the service gets, no secret among them.
fn plain_env(settings: &Settings, s: &ServiceInput<'_>) -> Vec<EnvVar> {
    let m = s.model;
    let mut env = vec![
        var("PORT", s.port().to_string()),
        var(API_VAR, settings.platform_url.clone()),
        var(CALL_VAR, call_base(&settings.platform_url, s.tenant)),
        var("MICRO_NAMESPACE", s.tenant),
        var("MICRO_SERVICE_NAME", s.name),
        var("HOME", "/tmp"),
    ];
    if settings.platform_ca.is_some() {
        // Python, curl, Go and OpenSSL-based clients read SSL_CERT_FILE by default (and
        // keep the image's own roots in its certificate folder).
        let file = format!("{CA_DIR}/ca.pem");
        env.push(var("SSL_CERT_FILE", file.clone()));
        env.push(var("NODE_EXTRA_CA_CERTS", file.clone()));
        env.push(var("MICRO_TLS_CA", file.clone()));
        // The Secret's CA is the platform's alone: what a service serving TLS checks its
        // callers against.
        env.push(var("MICRO_PLATFORM_CA", file));
    }
    if s.has_identity() {
        env.push(var("MICRO_TLS_CERT", format!("{CA_DIR}/identity/cert.pem")));
        env.push(var("MICRO_TLS_KEY", format!("{CA_DIR}/identity/key.pem")));
    }
    if fetches(s.artifact) {
        // Where a Python build puts its virtualenv: first on PATH, as locally.
        env.push(var("VIRTUAL_ENV", format!("{APP_DIR}/{VENV}")));
        env.push(var(
            "PATH",
            format!(
                "{APP_DIR}/{VENV}/bin:{APP_DIR}/node_modules/.bin:/usr/local/bin:/usr/bin:/bin"
            ),
        ));
    }
    // The spec's own values win (its `MICRO_*` and `PORT` are refused at push): a name
    // twice would make the API server refuse the whole Deployment.
    env.retain(|e| !m.env.contains_key(&e.name));
    env.extend(m.env.iter().map(|(k, v)| var(k, v.clone())));
    env
}

/// The Secret's variables one by one (not `envFrom`), so its PEM keys stay files; none
/// that a plain variable already names.
fn secret_env(settings: &Settings, s: &ServiceInput<'_>, plain: &[EnvVar]) -> Vec<EnvVar> {
    secret_data(settings, s)
        .into_keys()
        .filter(|key| {
            key != CA_KEY
                && !IDENTITY_KEYS.contains(&key.as_str())
                && !plain.iter().any(|e| &e.name == key)
        })
        .map(|key| EnvVar {
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret_name(s.name),
                    key: key.clone(),
                    ..SecretKeySelector::default()
                }),
                ..EnvVarSource::default()
            }),
            name: key,
            ..EnvVar::default()
        })
        .collect()
}

/// Whether the pods fetch their code (and run it from `/app`) rather than run an image.
fn fetches(artifact: &Artifact) -> bool {
    !matches!(artifact, Artifact::Image(_))
}

fn deployment(settings: &Settings, s: &ServiceInput<'_>) -> Deployment {
    let m = s.model;
    let mut meta = s.meta(settings, s.name.to_owned());
    meta.annotations = Some(BTreeMap::from([
        (labels::REVISION.to_owned(), s.revision.to_owned()),
        (
            labels::MODEL.to_owned(),
            serde_json::to_string(m).unwrap_or_default(),
        ),
    ]));
    let from_source = fetches(s.artifact);
    let identity = s.has_identity();
    let plain_env = plain_env(settings, s);
    // Only the service itself gets every secret variable: the build runs third-party
    // install scripts and gets none; the checkout gets the token only to fetch without
    // an identity.
    let secret_env = secret_env(settings, s, &plain_env);
    let tmp = mount("tmp", "/tmp");
    let mut parts = Parts {
        env: plain_env.iter().chain(&secret_env).cloned().collect(),
        mounts: vec![tmp.clone()],
        resources: resources(m),
        // An image runs in its own working directory; code from source in its checkout.
        working_dir: from_source.then_some(APP_DIR),
    };
    // `/tmp` as big as the container's memory (as on the local runtime), `/app` as the
    // namespace's checkout-size: a pod cannot fill its node's disk.
    let memory = m
        .memory
        .as_deref()
        .and_then(parse_memory)
        .unwrap_or(DEFAULT_MEMORY_BYTES);
    let mut volumes = vec![empty_dir("tmp", memory)];
    let mut items = Vec::new();
    let item = |key: &str, path: &str| KeyToPath {
        key: key.to_owned(),
        path: path.to_owned(),
        ..KeyToPath::default()
    };
    if settings.platform_ca.is_some() {
        items.push(item(CA_KEY, "ca.pem"));
    }
    if identity {
        items.push(item(IDENTITY_KEYS[0], "identity/cert.pem"));
        items.push(item(IDENTITY_KEYS[1], "identity/key.pem"));
    }
    if !items.is_empty() {
        parts.mounts.push(VolumeMount {
            read_only: Some(true),
            ..mount("platform-tls", CA_DIR)
        });
        volumes.push(Volume {
            name: "platform-tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name(s.name)),
                // Readable by the service's group (fsGroup), nobody else.
                default_mode: Some(0o440),
                items: Some(items),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    let mut init = Vec::new();
    if from_source {
        let app = mount("app", APP_DIR);
        parts.mounts.push(app.clone());
        volumes.push(empty_dir("app", s.storage_bytes));
        // The checkout: its identity (or, without one, the token) to fetch; no config.
        let mut checkout_env = plain_env.clone();
        if !identity {
            checkout_env.extend(secret_env.iter().filter(|e| e.name == TOKEN_VAR).cloned());
        }
        let checkout = Parts {
            env: checkout_env,
            mounts: parts.mounts.clone(),
            resources: init_resources(m),
            working_dir: parts.working_dir,
        };
        init.push(checkout.container(
            "checkout",
            &settings.platform_image,
            Some(checkout_args(settings, s)),
        ));
        if let Some(build) = &m.build {
            // The build: no token, no config, no identity; the platform CA alone.
            let mut mounts = vec![tmp, app];
            if settings.platform_ca.is_some() {
                mounts.push(VolumeMount {
                    sub_path: Some("ca.pem".into()),
                    read_only: Some(true),
                    ..mount("platform-tls", format!("{CA_DIR}/ca.pem"))
                });
            }
            // The operator's variables first; the service's own `env` wins over them.
            let mut env: Vec<EnvVar> = settings
                .build_env
                .iter()
                .filter(|(k, _)| !plain_env.iter().any(|e| &e.name == k))
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..EnvVar::default()
                })
                .collect();
            env.extend(plain_env);
            let builder = Parts {
                env,
                mounts,
                resources: init_resources(m),
                working_dir: parts.working_dir,
            };
            init.push(builder.container(
                "build",
                settings.runner_of(m),
                Some(shell(format!("{}\n{build}", python_venv()))),
            ));
        }
    }
    let image = match s.artifact {
        Artifact::Image(image) => image.as_str(),
        _ => settings.runner_of(m),
    };
    let mut main = parts.container("service", image, m.run.clone().map(shell));
    main.ports = Some(vec![ContainerPort {
        name: Some("http".into()),
        container_port: i32::from(s.port()),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }]);
    let readiness = check(m.ready_path.as_deref(), 2, 3);
    if let Some(l) = &m.liveness {
        main.liveness_probe = Some(check(
            l.path.as_deref(),
            i32::try_from(l.period).unwrap_or(i32::MAX),
            i32::try_from(l.failures).unwrap_or(i32::MAX),
        ));
        // As on the local runtime, aliveness is asked only of a replica that was ready
        // once: a slow starter has its readiness timeout to start, not the liveness
        // check's few periods.
        let startup_checks = m.ready_timeout.div_ceil(2).max(1);
        main.startup_probe = Some(check(
            m.ready_path.as_deref(),
            2,
            i32::try_from(startup_checks).unwrap_or(i32::MAX),
        ));
    }
    main.readiness_probe = Some(readiness);
    let config_digest = {
        let versions = serde_json::to_vec(&m.config).unwrap_or_default();
        hex::encode(&Sha256::digest(&versions)[..8])
    };
    let run_as = Some(RUN_AS);
    let pod = PodSpec {
        service_account_name: Some(s.name.to_owned()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: run_as,
            run_as_group: run_as,
            fs_group: run_as,
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        init_containers: Some(init),
        containers: vec![main],
        volumes: Some(volumes),
        // A user namespace of its own: uid 10001 inside is nobody's outside.
        host_users: settings.pod_user_namespaces.then_some(false),
        ..PodSpec::default()
    };
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: Some(i32::try_from(m.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(pod_selector(s.name)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            // A rollout not ready within the spec's readiness timeout has failed.
            progress_deadline_seconds: Some(
                i32::try_from(m.ready_timeout.max(1)).unwrap_or(i32::MAX),
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some({
                        let mut labels = service_labels(s.tenant, s.name);
                        if super::public::routed(settings, s) {
                            labels.insert(labels::PUBLIC.to_owned(), "true".to_owned());
                        }
                        labels
                    }),
                    // A new deployment (and token) rolls the pods, as a new revision or
                    // config version does.
                    annotations: Some(BTreeMap::from([
                        (labels::REVISION.to_owned(), s.revision.to_owned()),
                        (labels::CONFIG_DIGEST.to_owned(), config_digest),
                        (
                            labels::DEPLOYMENT.to_owned(),
                            s.secret.get(DEPLOYMENT_VAR).cloned().unwrap_or_default(),
                        ),
                    ])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// A check of the service's port every `period` seconds, `failures` in a row failing it:
/// a GET at `path` (below 400 passes, as the kubelet counts), else a connection.
fn check(path: Option<&str>, period: i32, failures: i32) -> Probe {
    let mut probe = Probe {
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    match path {
        Some(path) => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(path.to_owned()),
                port: http_port(),
                ..HTTPGetAction::default()
            });
        }
        None => {
            probe.tcp_socket = Some(TCPSocketAction {
                port: http_port(),
                ..TCPSocketAction::default()
            });
        }
    }
    probe
}

fn shell(script: impl Into<String>) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// `micro checkout` fetching the service's artifact: a folder of the tenant's repo on
/// the platform at its commit (signed in with the pod's certificate identity when it has
/// one), or of its `source` repo.
fn checkout_args(settings: &Settings, s: &ServiceInput<'_>) -> Vec<String> {
    let (git, commit, path, own_repo) = match s.artifact {
        Artifact::Source { url, commit, path } => (
            url.clone(),
            commit.clone(),
            path.clone().unwrap_or_default(),
            false,
        ),
        // A pod clones by URL: the server's own path to the repo is not its business.
        Artifact::Repo { revision, path, .. } => (
            settings.repo_url(s.tenant),
            revision.clone(),
            path.clone(),
            true,
        ),
        Artifact::Image(_) => return Vec::new(),
    };
    let mut args = vec![
        "micro".to_owned(),
        "checkout".to_owned(),
        "--git".to_owned(),
        git,
        "--commit".to_owned(),
        commit,
    ];
    if !path.is_empty() {
        args.extend(["--path".to_owned(), path]);
    }
    args.extend(["--into".to_owned(), APP_DIR.to_owned()]);
    if own_repo && s.has_identity() {
        args.push("--identity".to_owned());
    }
    args
}

/// What every container of a service shares.
struct Parts {
    env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
    resources: ResourceRequirements,
    working_dir: Option<&'static str>,
}

impl Parts {
    /// A locked-down container: not root, no privilege escalation, no capabilities, a
    /// read-only root filesystem, resources from the spec (requests = limits).
    fn container(&self, name: &str, image: &str, command: Option<Vec<String>>) -> Container {
        Container {
            name: name.to_owned(),
            image: Some(image.to_owned()),
            command,
            env: Some(self.env.clone()),
            volume_mounts: Some(self.mounts.clone()),
            resources: Some(self.resources.clone()),
            working_dir: self.working_dir.map(str::to_owned),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            ..Container::default()
        }
    }
}

/// An init container's (the checkout, the build): the service's limits, and a request no
/// larger than the default one, so what runs once before the service reserves no more
/// of a node than a small service does.
fn init_resources(m: &ServiceModel) -> ResourceRequirements {
    let cpu = m
        .cpu
        .as_deref()
        .and_then(parse_cpu)
        .map_or(DEFAULT_CPU_REQUEST_MILLIS, |c| {
            c.min(DEFAULT_CPU_REQUEST_MILLIS)
        });
    let memory = m
        .memory
        .as_deref()
        .and_then(parse_memory)
        .map_or(DEFAULT_MEMORY_REQUEST_BYTES, |b| {
            b.min(DEFAULT_MEMORY_REQUEST_BYTES)
        });
    ResourceRequirements {
        requests: Some(quantities(cpu, memory)),
        ..resources(m)
    }
}

/// `cpu` (thousandths) and `memory` (bytes) as a container's quantities.
fn quantities(cpu: u64, memory: u64) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_owned(), Quantity(cpu_quantity(cpu))),
        ("memory".to_owned(), Quantity(memory_quantity(memory))),
    ])
}

/// Requests and limits for one container of a service: the spec's `resources` for both,
/// or without them a small request and the default limits.
fn resources(m: &ServiceModel) -> ResourceRequirements {
    let cpu = m.cpu.as_deref().and_then(parse_cpu);
    let memory = m.memory.as_deref().and_then(parse_memory);
    ResourceRequirements {
        requests: Some(quantities(
            cpu.unwrap_or(DEFAULT_CPU_REQUEST_MILLIS),
            memory.unwrap_or(DEFAULT_MEMORY_REQUEST_BYTES),
        )),
        limits: Some(quantities(
            cpu.unwrap_or(DEFAULT_CPU_MILLIS),
            memory.unwrap_or(DEFAULT_MEMORY_BYTES),
        )),
        ..ResourceRequirements::default()
    }
}
