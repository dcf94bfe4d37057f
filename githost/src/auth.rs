//! HTTP Basic auth for git clients: any user name, an API token as the password.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The token from `Authorization: Basic …` (password) or `Authorization: Bearer …`.
pub(crate) fn token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_basic_and_bearer() {
        let mut h = HeaderMap::new();
        let basic = format!("Basic {}", STANDARD.encode("micro:mt_abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&basic).unwrap());
        assert_eq!(token(&h).as_deref(), Some("mt_abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer mt_x"));
        assert_eq!(token(&h).as_deref(), Some("mt_x"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(token(&h), None);
    }
}
