//! Renewal of certificate identities: every live deployment (its token live in the
//! store) gets a new certificate at half its lifetime, handed to the runtime, which
//! replaces the files under the running service. A renewal is not a rollout: nothing
//! restarts, and the deployment, its token and its revocation stay as they were.

use super::Controller;
use micro_store::{LiveDeployment, StoreError, now_millis};
use std::collections::HashSet;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tracing::Instrument;

impl Controller {
    /// Renews every certificate past half its lifetime; how many were renewed.
    pub async fn renew_identities(&self) -> Result<usize, StoreError> {
        let Some(issuer) = self.access.identity.as_ref() else {
            return Ok(0);
        };
        let live = self.store.live_deployments().await?;
        let due = self.due(&live, issuer.lifetime, now_millis());
        let mut renewed = 0;
        for d in due {
            let span = tracing::info_span!(
                "renew_identity",
                namespace = %d.namespace,
                service = %d.service,
                deployment = %d.deployment
            );
            if let Some(done) = self.renew(issuer, &d).instrument(span).await {
                renewed += usize::from(done);
                self.renewed().insert(d.deployment, now_millis());
            }
        }
        Ok(renewed)
    }

    /// Those of `live` whose certificate is at least half `lifetime` old at `now`; the
    /// record of deployments no longer live is dropped.
    fn due(&self, live: &[LiveDeployment], lifetime: Duration, now: i64) -> Vec<LiveDeployment> {
        let half = i64::try_from(lifetime.as_millis() / 2).unwrap_or(i64::MAX);
        let mut renewed = self.renewed();
        let names: HashSet<&str> = live.iter().map(|d| d.deployment.as_str()).collect();
        renewed.retain(|d, _| names.contains(d.as_str()));
        live.iter()
            .filter(|d| {
                let since = renewed.get(&d.deployment).copied().unwrap_or(d.issued_ms);
                now.saturating_sub(since) >= half
            })
            .cloned()
            .collect()
    }

    /// One renewal: `Some(true)` renewed, `Some(false)` not running here (nothing to
    /// do until its next turn), `None` failed (tried again on the next round).
    async fn renew(&self, issuer: &super::IdentityIssuer, d: &LiveDeployment) -> Option<bool> {
        let pem = match (issuer.issue)(&d.namespace, &d.service, &d.deployment) {
            Ok(pem) => pem,
            Err(e) => {
                tracing::warn!(error = %e, "cannot issue a certificate");
                return None;
            }
        };
        match self
            .runtime
            .renew_identity(&d.namespace, &d.service, &d.deployment, &pem)
            .await
        {
            Ok(true) => {
                tracing::info!("certificate identity renewed");
                Some(true)
            }
            Ok(false) => Some(false),
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the certificate identity");
                None
            }
        }
    }

    fn renewed(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.renewed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renews certificates for as long as the server runs, checking often enough that
    /// none comes near its end (a twentieth of the lifetime, at most every five minutes).
    /// Without an identity issuer there is nothing to renew, and it ends at once.
    pub async fn keep_identities_renewed(self: Arc<Self>) {
        let Some(issuer) = self.access.identity.as_ref() else {
            return;
        };
        let every =
            (issuer.lifetime / 20).clamp(Duration::from_millis(200), Duration::from_secs(300));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.renew_identities().await {
                tracing::warn!(error = %e, "certificate renewal: cannot list deployments");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures;

    fn live(deployment: &str, issued_ms: i64) -> LiveDeployment {
        LiveDeployment {
            namespace: "ns".into(),
            service: "web".into(),
            deployment: deployment.into(),
            issued_ms,
        }
    }

    /// Issues "cert N" / "key N", N counting up.
    fn issuer(lifetime: Duration) -> crate::controller::IdentityIssuer {
        let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
        crate::controller::IdentityIssuer {
            issue: Arc::new(move |_: &str, _: &str, _: &str| {
                let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                Ok(micro_runtime::Pem {
                    cert: format!("cert {n}"),
                    key: micro_runtime::Secret::new(format!("key {n}")),
                })
            }),
            lifetime,
            platform: "spiffe://test/platform".into(),
        }
    }

    #[tokio::test]
    async fn running_deployments_get_new_certificates_and_replaced_or_removed_ones_do_not() {
        // A lifetime of nothing: every live deployment is due on every round.
        let (_dir, repos, runtime, c) = fixtures::fixture_issuing(issuer(Duration::ZERO)).await;
        let push =
            |yaml: &str| fixtures::commit(&repos, "a", &[("services/web/service.yaml", yaml)]);
        let push_reasons = fixtures::reasons(micro_store::Trigger::Push);
        let reconcile = || c.reconcile("a", &push_reasons);
        let cert = || runtime.identity("a", "web").map(|p| p.cert);
        push("run: x\n");
        reconcile().await.unwrap();
        assert_eq!(cert().as_deref(), Some("cert 1"));
        assert_eq!(c.renew_identities().await.unwrap(), 1);
        assert_eq!(cert().as_deref(), Some("cert 2"), "renewed in place");
        // A new deployment: its predecessor's token is retired and nothing renews it.
        push("run: y\n");
        reconcile().await.unwrap();
        assert_eq!(cert().as_deref(), Some("cert 3"));
        assert_eq!(c.renew_identities().await.unwrap(), 1);
        assert_eq!(cert().as_deref(), Some("cert 4"));
        // Gone from the runtime: its token lives, but there is nothing to hand a cert.
        runtime.forget("a", "web");
        assert_eq!(c.renew_identities().await.unwrap(), 0);
        // A lifetime of an hour: a certificate just issued is not due.
        let (_dir, repos, runtime, c) =
            fixtures::fixture_issuing(issuer(Duration::from_secs(3600))).await;
        fixtures::commit(&repos, "a", &[("services/web/service.yaml", "run: x\n")]);
        c.reconcile("a", &fixtures::reasons(micro_store::Trigger::Push))
            .await
            .unwrap();
        assert_eq!(c.renew_identities().await.unwrap(), 0);
        assert_eq!(runtime.identity("a", "web").unwrap().cert, "cert 1");
    }

    /// As `micro server` starts: workers running and a namespace queued before anything
    /// else happens. The very first deployment is told where the API is and gets its
    /// certificate (a controller configured after its workers started once deployed
    /// services without either, and nothing rolled them again).
    #[tokio::test]
    async fn a_service_deployed_the_moment_the_controller_starts_gets_the_api_and_a_certificate() {
        let (_dir, repos, runtime, c) =
            fixtures::fixture_issuing(issuer(Duration::from_secs(3600))).await;
        fixtures::commit(
            &repos,
            "a",
            &[(
                "services/web/service.yaml",
                "run: x
",
            )],
        );
        c.spawn_workers(2);
        c.queue().trigger("a", micro_store::Trigger::Startup);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let deployment = loop {
            if let Some(d) = runtime.deployment("a", "web") {
                break d;
            }
            assert!(std::time::Instant::now() < deadline, "never deployed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(deployment.api_url, crate::testing::access().api_url);
        assert_eq!(
            deployment.certificate.as_ref().map(|p| p.cert.as_str()),
            Some("cert 1")
        );
        assert_eq!(
            deployment.platform_identity.as_deref(),
            Some("spiffe://test/platform")
        );
        let vars = deployment.variables();
        assert!(
            vars[micro_runtime::TOKEN_VAR].starts_with("mt_"),
            "{:?}",
            vars.keys()
        );
    }

    #[tokio::test]
    async fn a_certificate_is_due_at_half_its_life_counted_from_its_last_renewal() {
        let (_dir, _repos, _runtime, controller) = fixtures::fixture().await;
        let hour = Duration::from_secs(3600);
        let names = |due: Vec<LiveDeployment>| -> Vec<String> {
            due.into_iter().map(|d| d.deployment).collect()
        };
        let all = [live("young", 2_000_000), live("old", 0)];
        // 30 minutes old of an hour: due; 1 second old: not.
        assert_eq!(names(controller.due(&all, hour, 1_801_000)), ["old"]);
        controller.renewed().insert("old".into(), 1_801_000);
        controller.renewed().insert("gone".into(), 0);
        assert!(controller.due(&all, hour, 1_802_000).is_empty());
        assert!(
            !controller.renewed().contains_key("gone"),
            "a deployment no longer live is forgotten"
        );
        assert_eq!(
            names(controller.due(&all, hour, 3_801_000)),
            ["young", "old"]
        );
    }
}
