use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Set on every error the platform itself returns.
pub const ERROR_HEADER: &str = "x-micro-error";

/// Every API failure: a status and one line saying what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not logged in: missing or invalid token")]
    Unauthorized,
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    /// 402: the account is waiting for its payment.
    #[error("{0}")]
    PaymentRequired(String),
    /// A spec that does not validate: `file:line:col: message`.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<micro_billing::BillingError> for ApiError {
    fn from(e: micro_billing::BillingError) -> Self {
        use micro_billing::BillingError;
        match e {
            BillingError::Suspended(line) => ApiError::Forbidden(line),
            BillingError::Store(e) => e.into(),
            BillingError::Stripe(e) => {
                tracing::warn!(error = %e, "cannot create a Checkout Session");
                ApiError::Unavailable(
                    "the payment provider cannot be reached just now; try again in a minute".into(),
                )
            }
            e @ (BillingError::Mark(_) | BillingError::Accounts(_)) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<micro_store::StoreError> for ApiError {
    fn from(e: micro_store::StoreError) -> Self {
        use micro_store::StoreError;
        match e {
            StoreError::Exists(what) => ApiError::Conflict(format!("{what} already exists")),
            e @ StoreError::BeingDeleted(_) => ApiError::Conflict(e.to_string()),
            StoreError::StoreFull {
                namespace,
                wanted,
                limit,
            } => {
                let over = micro_tenant::quota::QuotaError {
                    what: "the store (key-value records and config values)",
                    wanted: exact_size(wanted),
                    allowed: exact_size(limit),
                    namespace,
                };
                ApiError::Forbidden(over.to_string())
            }
            StoreError::Contention(what) => {
                ApiError::Unavailable(format!("the platform is busy ({what}); try again"))
            }
            other => {
                tracing::error!(error = %other, "store");
                ApiError::Internal("store unavailable".into())
            }
        }
    }
}

/// `2Mi`, `64Ki`, or the bytes: a size rounded to MiB could read the same as the limit
/// it is over.
fn exact_size(bytes: i64) -> String {
    match bytes {
        b if b > 0 && b % (1 << 20) == 0 => format!("{}Mi", b >> 20),
        b if b > 0 && b % (1 << 10) == 0 => format!("{}Ki", b >> 10),
        b => format!("{b} bytes"),
    }
}

impl From<micro_tenant::repo::LoadError> for ApiError {
    fn from(e: micro_tenant::repo::LoadError) -> Self {
        use micro_tenant::repo::LoadError;
        match e {
            LoadError::Invalid(e) => ApiError::Invalid(e.to_string()),
            LoadError::Quota(e) => ApiError::Invalid(e),
            // git's messages name server paths: they go to the log, not the caller.
            LoadError::Git(e) => {
                tracing::error!(error = %e.message(), "git");
                ApiError::Internal("the namespace's repository cannot be read".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match &self {
            // The detail may name server paths or internals: the log keeps it.
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error (the details are in the server's log)".to_owned()
            }
            other => other.to_string(),
        };
        let body = crate::types::ErrorBody { error };
        // Marks the platform's own errors, so `micro call` can tell them from a service's.
        (self.status(), [(ERROR_HEADER, "1")], Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_over_quota_size_is_never_rounded_to_the_limit() {
        assert_eq!(super::exact_size(2 << 20), "2Mi");
        assert_eq!(super::exact_size(1024), "1Ki");
        assert_eq!(super::exact_size(2_097_188), "2097188 bytes");
    }
}
