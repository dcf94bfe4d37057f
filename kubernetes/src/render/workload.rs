//! One service's objects: its ServiceAccount, the Secret with its config and token, a
//! ClusterIP Service and the Deployment.

use super::{cpu_quantity, memory_quantity};
use crate::labels::{self, pod_selector, service_labels};
use crate::settings::Settings;
use micro_runtime::{API_VAR, DEPLOYMENT_VAR, TOKEN_VAR};
use micro_tenant::desired::{DesiredService, ServiceModel};
use micro_tenant::quantity::{parse_cpu, parse_memory};
use micro_tenant::quota::{DEFAULT_CPU_MILLIS, DEFAULT_MEMORY_BYTES};
use micro_tenant::toolchain::VENV;
use serde_json::{Value, json};
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
const RUN_AS: u32 = 10001;
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
    /// Its Secret's data: `MICRO_TOKEN`, `MICRO_CONFIG_*`, … (placeholders for review).
    pub secret: &'a BTreeMap<String, String>,
    /// What its checkout (`/app`) may hold on a node: its namespace's `checkout-size`.
    pub storage_bytes: u64,
}

impl<'a> ServiceInput<'a> {
    pub fn of(
        tenant: &'a str,
        service: &'a DesiredService,
        secret: &'a BTreeMap<String, String>,
        storage_bytes: u64,
    ) -> Self {
        ServiceInput {
            tenant,
            name: &service.name,
            model: &service.model,
            revision: &service.revision,
            secret,
            storage_bytes,
        }
    }

    fn port(&self) -> u16 {
        self.model.port.unwrap_or(DEFAULT_PORT)
    }
}

/// ServiceAccount, Secret, Service and Deployment, in the order they are applied.
pub fn service_objects(settings: &Settings, s: &ServiceInput<'_>) -> Vec<Value> {
    let ns = settings.namespace_of(s.tenant);
    let meta = |name: String| {
        json!({
            "name": name,
            "namespace": ns,
            "labels": service_labels(s.tenant, s.name),
        })
    };
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(s.name.to_owned()),
            "automountServiceAccountToken": false,
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(secret_name(s.name)),
            "type": "Opaque",
            "stringData": secret_data(settings, s),
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(s.name.to_owned()),
            "spec": {
                "type": "ClusterIP",
                "selector": pod_selector(s.name),
                "ports": [{
                    "name": "http",
                    "protocol": "TCP",
                    "port": s.port(),
                    "targetPort": "http",
                }],
            },
        }),
        deployment(settings, s, meta(s.name.to_owned())),
    ]
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

fn deployment(settings: &Settings, s: &ServiceInput<'_>, mut meta: Value) -> Value {
    let m = s.model;
    if let Some(map) = meta.as_object_mut() {
        map.insert(
            "annotations".into(),
            json!({
                labels::REVISION: s.revision,
                labels::MODEL: serde_json::to_string(m).unwrap_or_default(),
            }),
        );
    }
    let from_source = m.image.is_none();
    let mut env = vec![
        json!({ "name": "PORT", "value": s.port().to_string() }),
        json!({ "name": API_VAR, "value": settings.platform_url }),
        json!({ "name": "MICRO_NAMESPACE", "value": s.tenant }),
        json!({ "name": "MICRO_SERVICE_NAME", "value": s.name }),
        json!({ "name": "HOME", "value": "/tmp" }),
    ];
    if settings.platform_ca.is_some() {
        // Python, curl, Go and OpenSSL-based clients read SSL_CERT_FILE by default (and
        // keep the image's own roots in its certificate folder).
        let file = format!("{CA_DIR}/ca.pem");
        env.push(json!({ "name": "SSL_CERT_FILE", "value": file }));
        env.push(json!({ "name": "MICRO_TLS_CA", "value": file }));
        // The Secret's CA is the platform's alone: what a service serving TLS checks its
        // callers against.
        env.push(json!({ "name": "MICRO_PLATFORM_CA", "value": file }));
    }
    let identity = IDENTITY_KEYS.iter().all(|k| s.secret.contains_key(*k));
    if identity {
        env.push(
            json!({ "name": "MICRO_TLS_CERT", "value": format!("{CA_DIR}/identity/cert.pem") }),
        );
        env.push(json!({ "name": "MICRO_TLS_KEY", "value": format!("{CA_DIR}/identity/key.pem") }));
    }
    if from_source {
        // Where a Python build puts its virtualenv: first on PATH, as locally.
        env.push(json!({ "name": "VIRTUAL_ENV", "value": format!("{APP_DIR}/{VENV}") }));
        env.push(json!({
            "name": "PATH",
            "value": format!("{APP_DIR}/{VENV}/bin:{APP_DIR}/node_modules/.bin:/usr/local/bin:/usr/bin:/bin"),
        }));
    }
    // The spec's own values win (its `MICRO_*` and `PORT` are refused at push): a name
    // twice would make the API server refuse the whole Deployment.
    env.retain(|e| e["name"].as_str().is_none_or(|n| !m.env.contains_key(n)));
    env.extend(m.env.iter().map(|(k, v)| json!({ "name": k, "value": v })));
    // The Secret's variables one by one (not `envFrom`), so its PEM keys stay files.
    // Only the service itself gets them all: the build runs third-party install scripts
    // and gets none; the checkout gets the token only to fetch without an identity.
    let named: std::collections::BTreeSet<String> = env
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect();
    let mut secret_env = Vec::new();
    for key in secret_data(settings, s).keys() {
        if key == CA_KEY || IDENTITY_KEYS.contains(&key.as_str()) || named.contains(key) {
            continue;
        }
        secret_env.push(json!({
            "name": key,
            "valueFrom": { "secretKeyRef": { "name": secret_name(s.name), "key": key } },
        }));
    }
    let plain_env = env.clone();
    env.extend(secret_env.iter().cloned());
    let tmp = json!({ "name": "tmp", "mountPath": "/tmp" });
    let mut parts = Parts {
        env,
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
    let mut volumes = vec![json!({
        "name": "tmp",
        "emptyDir": { "sizeLimit": memory_quantity(memory) },
    })];
    let mut items = Vec::new();
    if settings.platform_ca.is_some() {
        items.push(json!({ "key": CA_KEY, "path": "ca.pem" }));
    }
    if identity {
        items.push(json!({ "key": IDENTITY_KEYS[0], "path": "identity/cert.pem" }));
        items.push(json!({ "key": IDENTITY_KEYS[1], "path": "identity/key.pem" }));
    }
    if !items.is_empty() {
        parts
            .mounts
            .push(json!({ "name": "platform-tls", "mountPath": CA_DIR, "readOnly": true }));
        volumes.push(json!({
            "name": "platform-tls",
            "secret": {
                "secretName": secret_name(s.name),
                // Readable by the service's group (fsGroup), nobody else.
                "defaultMode": 0o440,
                "items": items,
            },
        }));
    }
    let mut init = Vec::new();
    if from_source {
        let app = json!({ "name": "app", "mountPath": APP_DIR });
        parts.mounts.push(app.clone());
        volumes.push(json!({
            "name": "app",
            "emptyDir": { "sizeLimit": memory_quantity(s.storage_bytes) },
        }));
        // The checkout: its identity (or, without one, the token) to fetch; no config.
        let mut checkout_env = plain_env.clone();
        if !identity {
            checkout_env.extend(
                secret_env
                    .iter()
                    .filter(|e| e["name"] == TOKEN_VAR)
                    .cloned(),
            );
        }
        let checkout = Parts {
            env: checkout_env,
            mounts: parts.mounts.clone(),
            resources: parts.resources.clone(),
            working_dir: parts.working_dir,
        };
        init.push(checkout.container(
            "checkout",
            &settings.platform_image,
            Some(json!(checkout_args(settings, s))),
        ));
        if let Some(build) = &m.build {
            // The build: no token, no config, no identity; the platform CA alone.
            let mut mounts = vec![tmp, app];
            if settings.platform_ca.is_some() {
                mounts.push(json!({
                    "name": "platform-tls",
                    "mountPath": format!("{CA_DIR}/ca.pem"),
                    "subPath": "ca.pem",
                    "readOnly": true,
                }));
            }
            let builder = Parts {
                env: plain_env,
                mounts,
                resources: parts.resources.clone(),
                working_dir: parts.working_dir,
            };
            init.push(builder.container(
                "build",
                settings.runner_for(m.toolchain.as_deref()),
                Some(json!(["sh", "-c", format!("{}\n{build}", python_venv())])),
            ));
        }
    }
    let image = m
        .image
        .as_deref()
        .unwrap_or_else(|| settings.runner_for(m.toolchain.as_deref()));
    let command = m.run.as_ref().map(|run| json!(["sh", "-c", run]));
    let mut main = parts.container("service", image, command);
    if let Some(c) = main.as_object_mut() {
        let port = s.port();
        c.insert(
            "ports".into(),
            json!([{ "name": "http", "containerPort": port, "protocol": "TCP" }]),
        );
        let check = match &m.ready_path {
            Some(path) => json!({ "httpGet": { "path": path, "port": "http" } }),
            None => json!({ "tcpSocket": { "port": "http" } }),
        };
        let mut probe = check;
        if let Some(p) = probe.as_object_mut() {
            p.insert("periodSeconds".into(), json!(2));
            p.insert("failureThreshold".into(), json!(3));
        }
        c.insert("readinessProbe".into(), probe);
    }
    let config_digest = {
        let versions = serde_json::to_vec(&m.config).unwrap_or_default();
        hex::encode(&Sha256::digest(&versions)[..8])
    };
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": m.replicas,
            "selector": { "matchLabels": pod_selector(s.name) },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 },
            },
            // A rollout not ready within the spec's readiness timeout has failed.
            "progressDeadlineSeconds": m.ready_timeout.max(1),
            "template": {
                "metadata": {
                    "labels": service_labels(s.tenant, s.name),
                    // A new deployment (and token) rolls the pods, as a new revision or
                    // config version does.
                    "annotations": {
                        labels::REVISION: s.revision,
                        labels::CONFIG_DIGEST: config_digest,
                        labels::DEPLOYMENT: s.secret.get(DEPLOYMENT_VAR).map_or("", String::as_str),
                    },
                },
                "spec": {
                    "serviceAccountName": s.name,
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "initContainers": init,
                    "containers": [main],
                    "volumes": volumes,
                },
            },
        },
    });
    if settings.pod_user_namespaces
        && let Some(spec) = deployment["spec"]["template"]["spec"].as_object_mut()
    {
        // A user namespace of its own: uid 10001 inside is nobody's outside.
        spec.insert("hostUsers".into(), false.into());
    }
    deployment
}

/// `micro checkout` fetching the service's folder at its commit: from the tenant's repo
/// on the platform (signed in with the pod's certificate identity when it has one), or
/// from its `source` repo.
fn checkout_args(settings: &Settings, s: &ServiceInput<'_>) -> Vec<String> {
    let own_repo = s.model.source.is_none();
    let (git, commit, path) = match &s.model.source {
        Some(src) => (
            src.git.clone(),
            src.commit.clone(),
            src.path.clone().unwrap_or_default(),
        ),
        None => (
            settings.repo_url(s.tenant),
            s.revision.to_owned(),
            micro_tenant::layout::service_dir(s.name),
        ),
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
    if own_repo && IDENTITY_KEYS.iter().all(|k| s.secret.contains_key(*k)) {
        args.push("--identity".to_owned());
    }
    args
}

/// What every container of a service shares.
struct Parts {
    env: Vec<Value>,
    mounts: Vec<Value>,
    resources: Value,
    working_dir: Option<&'static str>,
}

impl Parts {
    /// A locked-down container: not root, no privilege escalation, no capabilities, a
    /// read-only root filesystem, resources from the spec (requests = limits).
    fn container(&self, name: &str, image: &str, command: Option<Value>) -> Value {
        let mut c = json!({
            "name": name,
            "image": image,
            "env": self.env,
            "volumeMounts": self.mounts,
            "resources": self.resources,
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "capabilities": { "drop": ["ALL"] },
            },
        });
        if let Some(map) = c.as_object_mut() {
            if let Some(command) = command {
                map.insert("command".into(), command);
            }
            if let Some(dir) = self.working_dir {
                map.insert("workingDir".into(), dir.into());
            }
        }
        c
    }
}

/// Requests and limits for one container of a service.
fn resources(m: &ServiceModel) -> Value {
    let cpu = m
        .cpu
        .as_deref()
        .and_then(parse_cpu)
        .unwrap_or(DEFAULT_CPU_MILLIS);
    let memory = m
        .memory
        .as_deref()
        .and_then(parse_memory)
        .unwrap_or(DEFAULT_MEMORY_BYTES);
    let r = json!({ "cpu": cpu_quantity(cpu), "memory": memory_quantity(memory) });
    json!({ "requests": r, "limits": r })
}
