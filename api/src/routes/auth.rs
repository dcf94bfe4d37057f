//! Login and logout. Tokens from a login expire; logout revokes the caller's token.

use crate::extract::Caller;
use crate::serve::Client;
use crate::types::{Login, LoginReply};
use crate::{ApiError, ApiState};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use std::time::Duration;

/// How long a token from `micro login` lives.
const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub async fn login(
    State(state): State<ApiState>,
    client: Client,
    Json(body): Json<Login>,
) -> Result<Json<LoginReply>, ApiError> {
    let email = body.email.trim().to_lowercase();
    let too_many = |wait: Duration| {
        ApiError::TooMany(format!(
            "too many login attempts; try again in {}s",
            wait.as_secs().max(1)
        ))
    };
    if let Err(not_until) = state.address_limiter.check_key(&client) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        return Err(too_many(wait));
    }
    // Failures slow down this address's attempts on this account, and nothing else.
    let key = format!("{email}|{client}");
    state.login_backoff.check(&key).map_err(too_many)?;
    let Some(account) = state.store.check_password(&email, &body.password).await? else {
        // Who proved the password of an unpaid sign-up learns where to pay; having proved
        // it, they are not guessing, and may ask again while they pay.
        if state.paid.is_some()
            && let Some(unpaid) = state.store.unpaid_signup(&email, &body.password).await?
        {
            return Err(ApiError::PaymentRequired(micro_billing::payment_required(
                &unpaid,
            )));
        }
        state.login_backoff.failed(&key);
        return Err(ApiError::Unauthenticated("wrong email or password".into()));
    };
    state.login_backoff.succeeded(&key);
    let token = state
        .store
        .mint_token_for(&account, "micro login", Some(LOGIN_TOKEN_TTL))
        .await?;
    Ok(Json(LoginReply {
        token,
        email: account.email,
        role: account.role,
        namespace: account.namespace,
    }))
}

pub async fn logout(
    State(state): State<ApiState>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<(), ApiError> {
    if let Some(token) = crate::extract::bearer(&headers) {
        state.store.revoke_token(token).await?;
    }
    Ok(())
}
