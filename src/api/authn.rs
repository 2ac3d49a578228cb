//! Bearer-token verification ahead of everything that needs to know whether a request
//! is authenticated (the rate limiter exempts verified callers; the `Caller` extractor
//! reuses the result). A token counts only once its signature, expiry, issuer and
//! audience check out and it is not revoked — never for merely being present.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web, HttpMessage,
};

use crate::{auth::Claims, state::AppState};

/// The claims of the request's bearer token, verified and not revoked.
#[derive(Debug, Clone)]
pub struct VerifiedToken(pub Claims);

/// `Bearer <token>` (scheme case-insensitive) from an `Authorization` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: verifies the bearer token, if any, and records the claims.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .map(str::to_string);
    if let (Some(token), Some(state)) = (token, req.app_data::<web::Data<AppState>>()) {
        if let Ok(claims) = state.tokens.verify(&token) {
            // A database hiccup here leaves the request unverified; the extractor then
            // retries the check and reports the error itself.
            if let Ok(false) = state.denylist.is_revoked(&state.db, claims.jti).await {
                req.extensions_mut().insert(VerifiedToken(claims));
            }
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn only_a_non_empty_bearer_token_counts() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
