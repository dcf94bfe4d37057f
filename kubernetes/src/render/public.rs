//! What a public service (`public: true`) becomes on a cluster with an ingress
//! controller (`--ingress-class`): an Ingress for `<service>-<namespace>.<apps domain>`
//! to its Service (TLS from cert-manager when `--cluster-issuer` names an issuer), or
//! with a Gateway (`--gateway`) an HTTPRoute attached to it; and
//! its pods labelled so the namespace's public NetworkPolicy lets the controller's
//! namespace, and no other, reach them. That policy is one per namespace, never deleted
//! (the server may not delete NetworkPolicies: the isolation one is among them).

use super::object;
use super::workload::ServiceInput;
use crate::labels;
use crate::settings::Settings;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyIngressRule,
    NetworkPolicyPeer, NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value;
use std::collections::BTreeMap;

/// The namespace's NetworkPolicy letting the ingress controller reach public pods.
pub const PUBLIC_POLICY: &str = "micro-public-ingress";

/// Whether the cluster routes public services in: an ingress class or a Gateway.
fn routes(settings: &Settings) -> bool {
    settings.ingress_class.is_some() || settings.gateway.is_some()
}

/// Whether `s` is routed in from outside: public, on a cluster that routes public
/// services, with an apps domain.
pub fn routed(settings: &Settings, s: &ServiceInput<'_>) -> bool {
    s.model.public && routes(settings) && host(settings, s).is_some()
}

/// The namespace's public NetworkPolicy, when the cluster routes public services.
pub fn public_policy(settings: &Settings, metadata: ObjectMeta) -> Option<Value> {
    if !routes(settings) {
        return None;
    }
    let policy = NetworkPolicy {
        metadata,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    labels::PUBLIC.to_owned(),
                    "true".to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(
                            "kubernetes.io/metadata.name".to_owned(),
                            settings.ingress_namespace.clone(),
                        )])),
                        ..LabelSelector::default()
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
                ..NetworkPolicyIngressRule::default()
            }]),
            ..NetworkPolicySpec::default()
        }),
    };
    Some(object(&policy))
}

/// The host a public service has under the apps domain.
pub fn host(settings: &Settings, s: &ServiceInput<'_>) -> Option<String> {
    let domain = settings.apps_domain.as_deref()?;
    let label = micro_tenant::spec::public_label(s.name, s.tenant).ok()?;
    Some(format!("{label}.{domain}"))
}

/// The Ingress of `s`, if it is public and the cluster routes public services (an
/// ingress class and an apps domain are set); none otherwise.
pub fn public_objects(settings: &Settings, s: &ServiceInput<'_>) -> Vec<Value> {
    if let (true, Some(gateway), Some(host)) =
        (s.model.public, &settings.gateway, host(settings, s))
    {
        return vec![http_route(settings, s, gateway, host)];
    }
    let (true, Some(class), Some(host)) = (
        s.model.public,
        settings.ingress_class.as_ref(),
        host(settings, s),
    ) else {
        return Vec::new();
    };
    let mut meta = s.meta(settings, s.name.to_owned());
    if let Some(issuer) = &settings.cluster_issuer {
        meta.annotations = Some(BTreeMap::from([(
            "cert-manager.io/cluster-issuer".to_owned(),
            issuer.clone(),
        )]));
    }
    let ingress = Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: Some(class.clone()),
            tls: settings.cluster_issuer.as_ref().map(|_| {
                vec![IngressTLS {
                    hosts: Some(vec![host.clone()]),
                    secret_name: Some(format!("{}-tls", s.name)),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(host),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: s.name.to_owned(),
                                port: Some(ServiceBackendPort {
                                    name: Some("http".into()),
                                    ..ServiceBackendPort::default()
                                }),
                            }),
                            ..IngressBackend::default()
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    };
    vec![object(&ingress)]
}

/// A Gateway API route for `host` to the service, attached to `gateway` (`NAME` or
/// `NAMESPACE/NAME`).
fn http_route(settings: &Settings, s: &ServiceInput<'_>, gateway: &str, host: String) -> Value {
    let parent = match gateway.split_once('/') {
        Some((namespace, name)) => serde_json::json!({"name": name, "namespace": namespace}),
        None => serde_json::json!({"name": gateway}),
    };
    let route = crate::gateway::HttpRoute {
        api_version: crate::gateway::API_VERSION.to_owned(),
        kind: crate::gateway::KIND.to_owned(),
        metadata: s.meta(settings, s.name.to_owned()),
        spec: serde_json::json!({
            "parentRefs": [parent],
            "hostnames": [host],
            "rules": [{"backendRefs": [{"name": s.name, "port": s.port()}]}],
        }),
    };
    object(&route)
}
