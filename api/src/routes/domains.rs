//! A namespace's custom domains: claimed for one of its services (a host belongs to one
//! namespace), listed with where each stands, given up. The server's domain keeper
//! proves them (ACME HTTP-01, or the TXT record the claim's token names) and keeps
//! their certificates; the edge serves them once proven.

use crate::extract::Members;
use crate::types::{DomainView, NewDomain};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::{Path, State};

/// Why `host` cannot be claimed, if it cannot: a DNS name of at least two labels, each
/// 1-63 lowercase letters, digits or '-' (not at either end), 253 characters at most,
/// not an address and not under the apps domain (those hosts are the services').
fn check_host(host: &str, apps_domain: Option<&str>) -> Result<(), String> {
    let shape = "a DNS name such as www.example.com (lowercase letters, digits, '-' and dots)";
    if host.len() > 253 || host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{host:?} is not {shape}"));
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(format!("{host:?} is not {shape}"));
    }
    if let Some(apps) = apps_domain
        && (host == apps || host.ends_with(&format!(".{apps}")))
    {
        return Err(format!(
            "{host} is under the apps domain {apps}: its hosts are the services' own (public: true)"
        ));
    }
    Ok(())
}

fn view(d: micro_store::Domain) -> DomainView {
    let state = match (&d.proven_by, d.cert_expires_at) {
        (Some(_), Some(_)) => "live",
        (Some(_), None) => "proven",
        (None, _) => "pending",
    };
    DomainView {
        state: state.to_owned(),
        host: d.host,
        service: d.service,
        proven_by: d.proven_by,
        token: d.token,
        certificate_expires_at: d.cert_expires_at,
        message: d.message,
        created_at: d.created_at,
    }
}

pub async fn add(
    State(state): State<ApiState>,
    Members(ns): Members,
    Json(body): Json<NewDomain>,
) -> Result<Json<DomainView>, ApiError> {
    state.suspensions.writable(&ns.name).await?;
    if state.apps.is_some() && state.router_log.is_none() {
        return Err(ApiError::BadRequest(
            "custom domains are served by the platform's own edge; on a cluster (--runtime kubernetes) they are not yet".into(),
        ));
    }
    let Some(apps) = &state.apps else {
        return Err(ApiError::BadRequest(
            "this platform has no edge (micro server --apps-domain): custom domains need one"
                .into(),
        ));
    };
    let host = body.host.trim_end_matches('.').to_ascii_lowercase();
    check_host(&host, Some(&apps.domain)).map_err(ApiError::BadRequest)?;
    micro_tenant::spec::check_service_name(&body.service)
        .map_err(|_| ApiError::BadRequest(format!("{:?} is not a service name", body.service)))?;
    let claimed = state
        .store
        .claim_domain(&ns.name, &host, &body.service)
        .await?;
    tracing::info!(namespace = %ns.name, host = %host, service = %body.service, by = %ns.caller.email, "domain claimed");
    state.domains_changed.notify_one();
    Ok(Json(view(claimed)))
}

pub async fn list(
    State(state): State<ApiState>,
    Members(ns): Members,
) -> Result<Json<Vec<DomainView>>, ApiError> {
    Ok(Json(
        state
            .store
            .domains(&ns.name)
            .await?
            .into_iter()
            .map(view)
            .collect(),
    ))
}

pub async fn remove(
    State(state): State<ApiState>,
    Members(ns): Members,
    Path((_, host)): Path<(String, String)>,
) -> Result<(), ApiError> {
    let host = host.to_ascii_lowercase();
    if !state.store.remove_domain(&ns.name, &host).await? {
        return Err(ApiError::NotFound(format!("domain {host}")));
    }
    tracing::info!(namespace = %ns.name, host = %host, by = %ns.caller.email, "domain removed");
    state.domains_changed.notify_one();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_host;

    #[test]
    fn only_dns_names_outside_the_apps_domain_are_claimed() {
        for good in ["www.example.com", "example.co.uk", "a-b.c9.io"] {
            assert_eq!(check_host(good, Some("apps.test")), Ok(()), "{good}");
        }
        for bad in [
            "localhost",
            "127.0.0.1",
            "WWW.example.com",
            "-a.example.com",
            "a..b",
            "exa_mple.com",
            "web-default.apps.test",
            "apps.test",
            "x.example.com/../y",
        ] {
            assert!(check_host(bad, Some("apps.test")).is_err(), "{bad}");
        }
    }
}
