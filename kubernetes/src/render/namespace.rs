//! A tenant's namespace-wide objects: the Namespace, its network isolation, its quota and
//! per-container limits.

use super::{cpu_quantity, memory_quantity};
use crate::labels::{self, tenant_labels};
use crate::settings::Settings;
use micro_tenant::quantity::{MAX_CPU_MILLIS, MAX_MEMORY};
use micro_tenant::quota::{DEFAULT_CPU_MILLIS, DEFAULT_MEMORY_BYTES, Quota};
use serde_json::{Value, json};

pub const NETWORK_POLICY: &str = "micro-tenant-isolation";
/// The RoleBinding in each tenant namespace that grants the platform's server the
/// runtime's verbs there, and nowhere else.
pub const ROLE_BINDING: &str = "micro-runtime";
/// The ClusterRole it binds (`manifests/base/rbac.yaml`).
pub const TENANT_ROLE: &str = "micro-tenant-runtime";
/// What a pod's containers may ask of a node's disk without saying (a build, say).
const EPHEMERAL_REQUEST: u64 = 64 << 20;
pub const RESOURCE_QUOTA: &str = "micro-quota";
pub const LIMIT_RANGE: &str = "micro-limits";

/// The Namespace, the RoleBinding granting the server its verbs in it (applied second:
/// what follows needs it), a NetworkPolicy, a ResourceQuota and a LimitRange.
///
/// The ResourceQuota is a backstop behind the push-time quota check (which holds desired
/// state to the quota exactly): it leaves room for rolling updates, one surge pod per
/// service and twice the CPU and memory, since every service may roll out at once.
pub fn namespace_objects(settings: &Settings, tenant: &str, quota: &Quota) -> Vec<Value> {
    let ns = settings.namespace_of(tenant);
    let meta = |name: &str| {
        json!({
            "name": name,
            "namespace": ns,
            "labels": tenant_labels(tenant),
        })
    };
    let mut ns_labels = tenant_labels(tenant);
    if let Some(map) = ns_labels.as_object_mut() {
        // Tenants' pods must pass the strictest Pod Security Standard.
        map.insert(
            "pod-security.kubernetes.io/enforce".into(),
            "restricted".into(),
        );
    }
    let platform = json!({ "kubernetes.io/metadata.name": settings.platform_namespace });
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": ns, "labels": ns_labels },
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(ROLE_BINDING),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": TENANT_ROLE,
            },
            "subjects": [{
                "kind": "ServiceAccount",
                "name": settings.server_account,
                "namespace": settings.platform_namespace,
            }],
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(NETWORK_POLICY),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                // In: the tenant's own pods and the platform (calls, probes).
                "ingress": [{ "from": [
                    { "podSelector": {} },
                    { "namespaceSelector": { "matchLabels": platform } },
                ]}],
                "egress": [
                    // The tenant's own pods.
                    { "to": [{ "podSelector": {} }] },
                    // The platform's server (API, git), not its database.
                    { "to": [{
                        "namespaceSelector": { "matchLabels": platform },
                        "podSelector": { "matchLabels": { labels::NAME: "micro-server" } },
                    }]},
                    // DNS.
                    {
                        "to": [{
                            "namespaceSelector": {},
                            "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
                        }],
                        "ports": [
                            { "protocol": "UDP", "port": 53 },
                            { "protocol": "TCP", "port": 53 },
                        ],
                    },
                    // The outside world, not the cluster's own addresses, link-local
                    // (cloud metadata), shared space, or what the operator names.
                    { "to": [{ "ipBlock": {
                        "cidr": "0.0.0.0/0",
                        "except": settings.egress_denied(),
                    }}]},
                ],
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": meta(RESOURCE_QUOTA),
            "spec": { "hard": {
                "pods": (quota.replicas + quota.services).to_string(),
                "count/deployments.apps": quota.services.to_string(),
                "services": quota.services.to_string(),
                "requests.cpu": cpu_quantity(quota.cpu_millis * 2),
                "limits.cpu": cpu_quantity(quota.cpu_millis * 2),
                "requests.memory": memory_quantity(quota.memory_bytes * 2),
                "limits.memory": memory_quantity(quota.memory_bytes * 2),
                // Every pod may hold a checkout (its `/app`, bounded per pod below).
                "requests.ephemeral-storage": memory_quantity(
                    EPHEMERAL_REQUEST * (quota.replicas + quota.services)
                ),
                "limits.ephemeral-storage": memory_quantity(
                    quota.checkout_bytes * (quota.replicas + quota.services)
                ),
            }},
        }),
        json!({
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": meta(LIMIT_RANGE),
            "spec": { "limits": [{
                "type": "Container",
                "default": {
                    "cpu": cpu_quantity(DEFAULT_CPU_MILLIS),
                    "memory": memory_quantity(DEFAULT_MEMORY_BYTES),
                    "ephemeral-storage": memory_quantity(quota.checkout_bytes),
                },
                "defaultRequest": {
                    "cpu": cpu_quantity(DEFAULT_CPU_MILLIS),
                    "memory": memory_quantity(DEFAULT_MEMORY_BYTES),
                    "ephemeral-storage": memory_quantity(EPHEMERAL_REQUEST.min(quota.checkout_bytes)),
                },
                "max": {
                    "cpu": cpu_quantity(MAX_CPU_MILLIS),
                    "memory": memory_quantity(MAX_MEMORY),
                    "ephemeral-storage": memory_quantity(quota.checkout_bytes),
                },
            }]},
        }),
    ]
}
