//! A tenant's namespace-wide objects: the Namespace, its network isolation, its quota and
//! per-container limits.

use super::{cpu_quantity, memory_quantity, object};
use crate::labels::{self, tenant_labels};
use crate::settings::Settings;
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use micro_tenant::quantity::{MAX_CPU_MILLIS, MAX_MEMORY};
use micro_tenant::quota::{
    DEFAULT_CPU_MILLIS, DEFAULT_CPU_REQUEST_MILLIS, DEFAULT_MEMORY_BYTES,
    DEFAULT_MEMORY_REQUEST_BYTES, Quota,
};
use serde_json::Value;
use std::collections::BTreeMap;

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
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.clone()),
        labels: Some(tenant_labels(tenant)),
        ..ObjectMeta::default()
    };
    let mut ns_labels = tenant_labels(tenant);
    // Tenants' pods must pass the strictest Pod Security Standard.
    ns_labels.insert(
        "pod-security.kubernetes.io/enforce".into(),
        "restricted".into(),
    );
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            labels: Some(ns_labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let binding = RoleBinding {
        metadata: meta(ROLE_BINDING),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: TENANT_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: settings.server_account.clone(),
            namespace: Some(settings.platform_namespace.clone()),
            ..Subject::default()
        }]),
    };
    let quota_object = ResourceQuota {
        metadata: meta(RESOURCE_QUOTA),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard_limits(quota)),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    };
    let limits = LimitRange {
        metadata: meta(LIMIT_RANGE),
        spec: Some(LimitRangeSpec {
            limits: vec![container_limits(quota)],
        }),
    };
    let mut objects = vec![
        object(&namespace),
        object(&binding),
        object(&network_policy(settings, meta(NETWORK_POLICY))),
        object(&quota_object),
        object(&limits),
    ];
    objects.extend(super::public::public_policy(
        settings,
        meta(super::public::PUBLIC_POLICY),
    ));
    objects
}

fn selector(labels: BTreeMap<String, String>) -> Option<LabelSelector> {
    Some(LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    })
}

/// Every pod of the namespace: the selector that selects all.
fn all_pods() -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    }
}

fn network_policy(settings: &Settings, metadata: ObjectMeta) -> NetworkPolicy {
    let platform = || {
        selector(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            settings.platform_namespace.clone(),
        )]))
    };
    let dns_port = |protocol: &str| NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(53)),
        ..NetworkPolicyPort::default()
    };
    NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            // In: the tenant's own pods and the platform (calls, probes).
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![
                    all_pods(),
                    NetworkPolicyPeer {
                        namespace_selector: platform(),
                        ..NetworkPolicyPeer::default()
                    },
                ]),
                ..NetworkPolicyIngressRule::default()
            }]),
            egress: Some(vec![
                // The tenant's own pods.
                NetworkPolicyEgressRule {
                    to: Some(vec![all_pods()]),
                    ..NetworkPolicyEgressRule::default()
                },
                // The platform's server (API, git), not its database.
                NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        namespace_selector: platform(),
                        pod_selector: selector(BTreeMap::from([(
                            labels::NAME.to_owned(),
                            "micro-server".to_owned(),
                        )])),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ..NetworkPolicyEgressRule::default()
                },
                // DNS.
                NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(LabelSelector::default()),
                        pod_selector: selector(BTreeMap::from([(
                            "k8s-app".to_owned(),
                            "kube-dns".to_owned(),
                        )])),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![dns_port("UDP"), dns_port("TCP")]),
                },
                // The outside world, not the cluster's own addresses, link-local (cloud
                // metadata), shared space, or what the operator names.
                NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: "0.0.0.0/0".into(),
                            except: Some(settings.egress_denied()),
                        }),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ..NetworkPolicyEgressRule::default()
                },
            ]),
        }),
    }
}

fn quantities<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, Quantity> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v)))
        .collect()
}

fn hard_limits(quota: &Quota) -> BTreeMap<String, Quantity> {
    let pods = quota.replicas + quota.services;
    quantities([
        ("pods", pods.to_string()),
        ("count/deployments.apps", quota.services.to_string()),
        ("services", quota.services.to_string()),
        // What replicas reserve is the quota; what each may use is held by the
        // LimitRange (a replica without `resources` may burst to the default limits).
        ("requests.cpu", cpu_quantity(quota.cpu_millis * 2)),
        ("requests.memory", memory_quantity(quota.memory_bytes * 2)),
        // Every pod may hold a checkout (its `/app`, bounded per pod below).
        (
            "requests.ephemeral-storage",
            memory_quantity(EPHEMERAL_REQUEST * pods),
        ),
        (
            "limits.ephemeral-storage",
            memory_quantity(quota.checkout_bytes * pods),
        ),
    ])
}

fn container_limits(quota: &Quota) -> LimitRangeItem {
    LimitRangeItem {
        type_: "Container".into(),
        default: Some(quantities([
            ("cpu", cpu_quantity(DEFAULT_CPU_MILLIS)),
            ("memory", memory_quantity(DEFAULT_MEMORY_BYTES)),
            ("ephemeral-storage", memory_quantity(quota.checkout_bytes)),
        ])),
        default_request: Some(quantities([
            ("cpu", cpu_quantity(DEFAULT_CPU_REQUEST_MILLIS)),
            ("memory", memory_quantity(DEFAULT_MEMORY_REQUEST_BYTES)),
            (
                "ephemeral-storage",
                memory_quantity(EPHEMERAL_REQUEST.min(quota.checkout_bytes)),
            ),
        ])),
        max: Some(quantities([
            ("cpu", cpu_quantity(MAX_CPU_MILLIS)),
            ("memory", memory_quantity(MAX_MEMORY)),
            ("ephemeral-storage", memory_quantity(quota.checkout_bytes)),
        ])),
        ..LimitRangeItem::default()
    }
}
