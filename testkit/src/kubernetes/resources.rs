//! The resources the fake serves: exactly those the runtime uses, plus ConfigMaps (to
//! stand for objects someone else put in a tenant's namespace) and Pods.

pub struct Resource {
    pub plural: &'static str,
    /// `v1` or `<group>/<version>`.
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

pub const ALL: &[Resource] = &[
    Resource {
        plural: "namespaces",
        api_version: "v1",
        kind: "Namespace",
        namespaced: false,
    },
    Resource {
        plural: "secrets",
        api_version: "v1",
        kind: "Secret",
        namespaced: true,
    },
    Resource {
        plural: "services",
        api_version: "v1",
        kind: "Service",
        namespaced: true,
    },
    Resource {
        plural: "serviceaccounts",
        api_version: "v1",
        kind: "ServiceAccount",
        namespaced: true,
    },
    Resource {
        plural: "resourcequotas",
        api_version: "v1",
        kind: "ResourceQuota",
        namespaced: true,
    },
    Resource {
        plural: "limitranges",
        api_version: "v1",
        kind: "LimitRange",
        namespaced: true,
    },
    Resource {
        plural: "configmaps",
        api_version: "v1",
        kind: "ConfigMap",
        namespaced: true,
    },
    Resource {
        plural: "pods",
        api_version: "v1",
        kind: "Pod",
        namespaced: true,
    },
    Resource {
        plural: "deployments",
        api_version: "apps/v1",
        kind: "Deployment",
        namespaced: true,
    },
    Resource {
        plural: "networkpolicies",
        api_version: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        namespaced: true,
    },
    Resource {
        plural: "ingresses",
        api_version: "networking.k8s.io/v1",
        kind: "Ingress",
        namespaced: true,
    },
    Resource {
        plural: "httproutes",
        api_version: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        namespaced: true,
    },
    Resource {
        plural: "rolebindings",
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        namespaced: true,
    },
];

pub fn by_plural(plural: &str) -> Option<&'static Resource> {
    ALL.iter().find(|r| r.plural == plural)
}

/// The resource of a path's group/version and plural.
pub fn find(api_version: &str, plural: &str) -> Option<&'static Resource> {
    ALL.iter()
        .find(|r| r.plural == plural && r.api_version == api_version)
}

/// The resource of an object's kind.
pub fn of_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    ALL.iter()
        .find(|r| r.kind == kind && r.api_version == api_version)
}
