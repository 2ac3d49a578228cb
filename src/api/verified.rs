//! What the authentication middleware leaves on a request for everything after it (the
//! rate limiter, the extractors): the verified claims, and the org the request names.
//! Kept apart from the middleware so that the limiter, which the middleware's session
//! gate uses, does not import the middleware.

use actix_web::HttpRequest;

use crate::{auth::Claims, error::Error, ids::OrgId};

/// The verified claims of the request's bearer token or session.
#[derive(Debug, Clone)]
pub struct VerifiedToken(pub Claims);

/// `Bearer <token>` (scheme case-insensitive) from an `Authorization` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Header a sysadmin uses to act in a named org.
pub const ORG_HEADER: &str = "X-Anchorage-Org";

/// The org a request names: `X-Anchorage-Org`, or — because browsers cannot set headers
/// on a WebSocket — `?org=` on the events socket.
pub fn named_org(req: &HttpRequest) -> crate::error::Result<Option<OrgId>> {
    let parse = |text: &str| {
        text.trim()
            .parse::<OrgId>()
            .map(Some)
            .map_err(|_| Error::BadRequest(format!("{ORG_HEADER} must be an org id (org_…)")))
    };
    if let Some(value) = req.headers().get(ORG_HEADER) {
        let text = value
            .to_str()
            .map_err(|_| Error::BadRequest(format!("{ORG_HEADER} is not text")))?;
        return parse(text);
    }
    if req.path() == "/v1/events" {
        let query: Vec<(String, String)> =
            serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
        if let Some((_, org)) = query.into_iter().find(|(k, _)| k == "org") {
            return parse(&org);
        }
    }
    Ok(None)
}
