//! One deployment of a service, typed: who it is (its token and certificate), where the
//! platform is, and its config. Secrets are fields of their own that never print, so no
//! runtime can forward one by accident: each delivers them deliberately, variables from
//! [`Deployment::variables`] and the certificate as files.

use std::collections::BTreeMap;

/// Config a service gets as environment variables: `MICRO_CONFIG_<KEY>` → value.
pub type ConfigEnv = BTreeMap<String, String>;

/// The variable holding the service's platform token.
pub const TOKEN_VAR: &str = "MICRO_TOKEN";
/// The variable holding the URL the service reaches the platform API at.
pub const API_VAR: &str = "MICRO_API";
/// Where a replica calls its siblings: `$MICRO_CALL/<service>/call/<path>`.
pub const CALL_VAR: &str = "MICRO_CALL";

/// [`CALL_VAR`]'s value for a service of `namespace` reaching the platform at `api`.
pub fn call_base(api: &str, namespace: &str) -> String {
    format!(
        "{}/api/v1/namespaces/{namespace}/services",
        api.trim_end_matches('/')
    )
}
/// The variable naming the deployment: its token is retired only when a later
/// deployment serves alone.
pub const DEPLOYMENT_VAR: &str = "MICRO_DEPLOYMENT";
/// The URI of the platform's own client certificate, which services serving TLS see on
/// the calls it forwards.
pub const PLATFORM_IDENTITY_VAR: &str = "MICRO_PLATFORM_IDENTITY";
/// Where a runtime that keeps a deployment's data as one key-value map (a cluster's
/// Secret) keeps its certificate and key (PEM); services always get them as files, never
/// as variables.
pub const IDENTITY_VARS: [&str; 2] = ["MICRO_TLS_CERT_PEM", "MICRO_TLS_KEY_PEM"];

/// A value that must never be shown: its `Debug` is a placeholder, it has no `Display`,
/// and it is read only through [`Secret::expose`], which says so where it is called.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value, for the one place that delivers it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A certificate and its key, PEM. The key is a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem {
    pub cert: String,
    pub key: Secret<String>,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem(…)")
    }
}

/// Everything one deployment of a service is given.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// Unique per service for the life of the platform.
    pub id: String,
    /// The service's own platform token, for this deployment.
    pub token: Secret<String>,
    /// Where the platform API is, as the platform itself reaches it; a runtime whose
    /// services reach it at another address (a cluster's pods) gives them that one.
    pub api_url: String,
    /// The URI of the platform's client certificate, when the platform issues
    /// certificate identities.
    pub platform_identity: Option<String>,
    /// This deployment's certificate and key, when one was issued.
    pub certificate: Option<Pem>,
    /// The values of the config versions the commit names, as `MICRO_CONFIG_<KEY>`.
    pub config: Secret<ConfigEnv>,
}

impl Deployment {
    /// The variables the service sees, but for [`API_VAR`] (each runtime names the
    /// address its services reach the platform at) and the certificate (files): config,
    /// token, deployment id and the platform's identity.
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut vars = self.config.expose().clone();
        vars.insert(TOKEN_VAR.to_owned(), self.token.expose().clone());
        vars.insert(DEPLOYMENT_VAR.to_owned(), self.id.clone());
        if let Some(platform) = &self.platform_identity {
            vars.insert(PLATFORM_IDENTITY_VAR.to_owned(), platform.clone());
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment {
            id: "d1".into(),
            token: Secret::new("mt_secret-token".into()),
            api_url: "https://127.0.0.1:8081".into(),
            platform_identity: Some("spiffe://micro/platform".into()),
            certificate: Some(Pem {
                cert: "CERT".into(),
                key: Secret::new("PRIVATE-KEY".into()),
            }),
            config: Secret::new(
                [("MICRO_CONFIG_DB_PASSWORD".to_owned(), "hunter2".to_owned())].into(),
            ),
        }
    }

    #[test]
    fn a_deployment_never_prints_a_secret() {
        let shown = format!("{:?}", deployment());
        for secret in ["mt_secret-token", "PRIVATE-KEY", "hunter2"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("d1"), "{shown}");
    }

    #[test]
    fn variables_hold_no_key_and_no_certificate() {
        let vars = deployment().variables();
        assert_eq!(vars[TOKEN_VAR], "mt_secret-token");
        assert_eq!(vars["MICRO_CONFIG_DB_PASSWORD"], "hunter2");
        assert_eq!(vars[DEPLOYMENT_VAR], "d1");
        assert!(
            !vars
                .values()
                .any(|v| v.contains("PRIVATE-KEY") || v == "CERT")
        );
        assert!(!vars.contains_key(API_VAR));
    }
}
