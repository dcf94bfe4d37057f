//! Mail the platform sends (sign-up codes, notices): by SMTP with `--smtp`, or, without
//! it, kept in the outbox admins read (`micro admin outbox`).

use crate::ApiError;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use micro_store::Store;
use std::time::Duration;

/// Longest an SMTP server may take, so a stuck one cannot hold sign-ups for a minute.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Where mail goes.
#[derive(Clone, Default)]
pub enum Mailer {
    /// Kept for admins to read.
    #[default]
    Outbox,
    Smtp(std::sync::Arc<Smtp>),
}

/// An SMTP server and the sender the platform's mail comes from.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// An SMTP mailer: `smtp://[user:password@]host[:port][?tls=required]` (STARTTLS when
    /// `tls=required` or `opportunistic`) or `smtps://…` (TLS from the start).
    pub fn smtp(url: &str, from: &str) -> Result<Self, String> {
        // The URL may hold a password: errors never repeat it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                format!(
                    "--smtp: not an SMTP URL ({})",
                    e.to_string().replace(url, "…")
                )
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("--mail-from {from:?}: {e}"))?;
        Ok(Mailer::Smtp(std::sync::Arc::new(Smtp { transport, from })))
    }

    /// Sends one plain-text mail (or keeps it in the outbox).
    pub async fn send(
        &self,
        store: &Store,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), ApiError> {
        match self {
            Mailer::Outbox => Ok(store.put_mail(to, subject, body).await?),
            Mailer::Smtp(smtp) => {
                let (transport, from) = (&smtp.transport, &smtp.from);
                let to = to
                    .parse::<Mailbox>()
                    .map_err(|_| ApiError::BadRequest(format!("{to:?} is not an email address")))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(subject)
                    .body(body.to_owned())
                    .map_err(|e| ApiError::Internal(format!("building a mail: {e}")))?;
                transport.send(message).await.map_err(|e| {
                    tracing::warn!(error = %e, "SMTP send failed");
                    ApiError::Unavailable(
                        "the platform could not send mail just now; try again in a minute".into(),
                    )
                })?;
                Ok(())
            }
        }
    }
}
