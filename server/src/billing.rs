//! `micro server`'s sign-up, mail and billing flags, and the wiring of paid mode: the
//! API starts Checkout Sessions with `micro-billing`'s plan; its billing endpoint and
//! grace sweep apply account events, making accounts through the API.

use crate::error::{Context, Result};
use micro_api::ApiState;
use micro_billing::events::BillingHook;
use micro_billing::stripe::StripeApi;
use micro_billing::{Billing, PaidPlan};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct BillingArgs {
    /// Who may get an account: `closed` (admins create them), `open` (anyone with a
    /// verified email), `invite` (an invited address, verified), `paid` (a verified email
    /// and a Stripe subscription)
    #[arg(long, env = "MICRO_SIGNUP", value_enum, default_value_t = SignupFlag::Closed)]
    pub signup: SignupFlag,
    /// Paid mode: the file holding Stripe's secret API key
    #[arg(long, env = "MICRO_STRIPE_SECRET_KEY_FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// Paid mode: the file holding the signing secret of the `/hooks/stripe` endpoint
    #[arg(long, env = "MICRO_STRIPE_WEBHOOK_SECRET_FILE")]
    pub stripe_webhook_secret_file: Option<PathBuf>,
    /// Paid mode: the Stripe price of the plan ($35/month), e.g. `price_…`
    #[arg(long, env = "MICRO_STRIPE_PRICE")]
    pub stripe_price: Option<String>,
    /// Paid mode: Stripe's API
    #[arg(
        long,
        env = "MICRO_STRIPE_API",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api: String,
    /// Paid mode: how long a namespace whose payment failed keeps running before it is
    /// suspended (e.g. `7d`, `12h`, `0s`)
    #[arg(long, env = "MICRO_BILLING_GRACE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub billing_grace: Duration,
    /// Send mail through this SMTP server: `smtp://[user:password@]host[:port]`, with
    /// `?tls=required` for STARTTLS, or `smtps://…` [default: keep mail in the outbox,
    /// read with `micro admin outbox`]
    #[arg(long, env = "MICRO_SMTP")]
    pub smtp: Option<String>,
    /// The sender of the platform's mail [default: micro <noreply@HOST of --public-url>]
    #[arg(long, env = "MICRO_MAIL_FROM")]
    pub mail_from: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupFlag {
    Closed,
    Open,
    /// As `open`, for the addresses an admin invited (`micro admin invite EMAIL`)
    Invite,
    Paid,
}

/// Paid mode's parts, made from the flags before anything starts.
pub struct Paid {
    pub plan: PaidPlan,
    webhook_secret: Arc<[u8]>,
}

fn secret(path: &Path, flag: &str) -> Result<String> {
    crate::files::private_file(path, flag)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{flag} {}: cannot read it", path.display()))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        bail!("{flag} {}: the file is empty", path.display());
    }
    Ok(text)
}

impl BillingArgs {
    pub fn mode(&self) -> micro_api::types::SignupMode {
        match self.signup {
            SignupFlag::Closed => micro_api::types::SignupMode::Closed,
            SignupFlag::Open => micro_api::types::SignupMode::Open,
            SignupFlag::Invite => micro_api::types::SignupMode::Invite,
            SignupFlag::Paid => micro_api::types::SignupMode::Paid,
        }
    }

    /// Where mail goes.
    pub fn mailer(&self, public_url: &str) -> Result<micro_api::mail::Mailer> {
        let Some(url) = &self.smtp else {
            return Ok(micro_api::mail::Mailer::Outbox);
        };
        let from = match &self.mail_from {
            Some(from) => from.clone(),
            None => {
                let host = micro_tenant::sources::url_host(public_url)
                    .unwrap_or_else(|| "localhost".into());
                format!("micro <noreply@{host}>")
            }
        };
        micro_api::mail::Mailer::smtp(url, &from).map_err(crate::error::ServerError::new)
    }

    /// Paid mode's parts, or `None` in the other modes; every missing flag is named.
    pub fn paid(&self) -> Result<Option<Paid>> {
        if self.signup != SignupFlag::Paid {
            return Ok(None);
        }
        let (Some(key), Some(hook), Some(price)) = (
            &self.stripe_secret_key_file,
            &self.stripe_webhook_secret_file,
            &self.stripe_price,
        ) else {
            bail!(
                "--signup paid needs --stripe-secret-key-file, --stripe-webhook-secret-file and --stripe-price"
            );
        };
        if !(self.stripe_api.starts_with("https://") || self.stripe_api.starts_with("http://")) {
            bail!("--stripe-api {}: an https:// URL", self.stripe_api);
        }
        let key = secret(key, "--stripe-secret-key-file")?;
        let webhook_secret = secret(hook, "--stripe-webhook-secret-file")?;
        let stripe = StripeApi::new(&self.stripe_api, &key, price)?;
        Ok(Some(Paid {
            plan: PaidPlan::new(stripe, self.billing_grace),
            webhook_secret: webhook_secret.into_bytes().into(),
        }))
    }
}

impl Paid {
    /// `POST /hooks/stripe`, applying what it hears, and the sweeper that suspends
    /// namespaces whose grace period ran out.
    pub(crate) fn start(self, state: &ApiState, tasks: &crate::tasks::Tasks) -> axum::Router {
        let every = self
            .plan
            .grace
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        let billing = Billing {
            store: state.store.clone(),
            plan: self.plan,
            suspensions: state.suspensions.clone(),
            // Accounts are made by the API, which owns sign-up.
            accounts: Arc::new(state.clone()),
        };
        tasks.spawn(
            tracing::info_span!("grace_sweeper"),
            billing.clone().sweep(every),
        );
        micro_billing::events::router(BillingHook {
            secret: self.webhook_secret,
            billing,
        })
    }
}
