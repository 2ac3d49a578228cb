//! Authentication ahead of everything that needs to know whether a request is
//! authenticated (the rate limiter exempts verified callers; the `Caller` extractor
//! reuses the result): a bearer token counts once its signature, expiry, issuer and
//! audience check out and it is not revoked — never for merely being present; a session
//! cookie counts when its session is live. A cookie is sent by browsers on their own, so
//! a state-changing request (and the events socket) authenticated only by the cookie
//! must come from our own origin.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, HttpMessage,
};
use futures_util::FutureExt;

use crate::{
    auth::{oidc::public_url, session, Claims},
    db::system_tx,
    error::Error,
    ids::OrgId,
    state::AppState,
};

/// The verified claims of the request's bearer token or session.
#[derive(Debug, Clone)]
pub struct VerifiedToken(pub Claims);

/// `Bearer <token>` (scheme case-insensitive) from an `Authorization` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: verifies the bearer token or the session cookie and records the claims.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .map(str::to_string);
    if let Some(token) = token {
        if let Ok(claims) = state.tokens.verify(&token) {
            // A database hiccup here leaves the request unverified; the extractor then
            // retries the check and reports the error itself.
            if let Ok(false) = state.denylist.is_revoked(&state.db, claims.jti).await {
                req.extensions_mut().insert(VerifiedToken(claims));
            }
        }
    } else if let Some(cookie) = req.cookie(session::COOKIE) {
        let needs_origin = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
            || req.path() == "/v1/events";
        if needs_origin && !same_origin(&req, &state) {
            return Err(Error::Forbidden(
                "a request signed in by cookie must come from this site (Origin)".into(),
            )
            .into());
        }
        // Browsers cannot set headers on a WebSocket: the events socket may name its
        // org in the query instead.
        let from_query = (req.path() == "/v1/events")
            .then(|| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
                    .ok()?
                    .into_iter()
                    .find(|(k, _)| k == "org")
                    .and_then(|(_, v)| v.parse::<OrgId>().ok())
            })
            .flatten();
        let named = req
            .headers()
            .get(crate::auth::caller::ORG_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<OrgId>().ok())
            .or(from_query);
        let secret = cookie.value().to_string();
        let claims = system_tx(&state.db, |conn| {
            async move {
                match session::find(conn, &secret).await? {
                    Some(live) => Ok(Some(session::claims(conn, &live, named).await?)),
                    None => Ok(None),
                }
            }
            .boxed()
        })
        .await;
        match claims {
            Ok(Some(claims)) => {
                req.extensions_mut().insert(VerifiedToken(claims));
            }
            Ok(None) => {}
            Err(e @ Error::Forbidden(_)) => return Err(e.into()),
            Err(e) => tracing::warn!(error = %e, "reading a session failed"),
        }
    }
    next.call(req).await
}

/// Whether the request's `Origin` is this site: the public URL's origin, or the origin
/// the request was addressed to.
fn same_origin(req: &ServiceRequest, state: &AppState) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let public = public_url(&state.config);
    let info = req.connection_info();
    let addressed = format!("{}://{}", info.scheme(), info.host());
    origin_of(&public) == origin || addressed == origin
}

/// `scheme://host[:port]` of `url`.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::{bearer, origin_of};

    #[test]
    fn only_a_non_empty_bearer_token_counts() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(
            origin_of("https://pins.example.com/base"),
            "https://pins.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
