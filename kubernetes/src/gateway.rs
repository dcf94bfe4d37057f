//! The one Gateway API kind the platform writes, `HTTPRoute`
//! (gateway.networking.k8s.io/v1), which k8s-openapi does not carry: enough of a typed
//! object for the caches to watch it (its spec stays JSON; the platform renders it
//! whole and compares what comes back).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";
pub const KIND: &str = "HTTPRoute";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HttpRoute {
    #[serde(rename = "apiVersion", default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
}

fn api_version() -> String {
    API_VERSION.to_owned()
}

fn kind() -> String {
    KIND.to_owned()
}

impl k8s_openapi::Resource for HttpRoute {
    const API_VERSION: &'static str = API_VERSION;
    const GROUP: &'static str = "gateway.networking.k8s.io";
    const KIND: &'static str = KIND;
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "httproutes";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for HttpRoute {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
