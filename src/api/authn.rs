//! Authentication ahead of everything that needs to know whether a request is
//! authenticated (the rate limiter exempts verified callers; the `Caller` extractor
//! reuses the result): a bearer token counts once its signature, expiry, issuer and
//! audience check out and it is not revoked — never for merely being present; a session
//! cookie counts when its session is live. A cookie is sent by browsers on their own, so
//! a state-changing request (and the events socket) authenticated only by the cookie
//! must come from our own origin. A cookie costs a database lookup only as the session
//! gate allows (see [`super::session_gate`]).

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, HttpMessage, HttpRequest,
};
use futures_util::FutureExt;
use std::net::IpAddr;

use super::client_ip::ClientIp;
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
                if let Ok(claims) = state.standings.effective(&state.db, claims).await {
                    req.extensions_mut().insert(VerifiedToken(claims));
                }
            }
        }
    } else if let Some(cookie) = req.cookie(session::COOKIE) {
        let needs_origin = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
            || req.path() == "/v1/events";
        if needs_origin && !same_origin(req.request(), &state) {
            return Err(Error::Forbidden(
                "a request signed in by cookie must come from this site (Origin)".into(),
            )
            .into());
        }
        let named = named_org(req.request()).ok().flatten();
        let secret = cookie.value().to_string();
        // A cookie nobody has seen live costs a lookup only from the anonymous allowance.
        let client = ClientIp::of(req.request()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if !state
            .session_gate
            .may_look_up(&secret, client, &state.limits)
        {
            return next.call(req).await;
        }
        let looked_up = secret.clone();
        let found = system_tx(&state.db, |conn| {
            async move {
                match session::find(conn, &looked_up).await? {
                    Some(live) => {
                        let claims = session::claims(conn, &live, named).await?;
                        Ok(Some((claims, live.signed_in(), live.token.is_some())))
                    }
                    None => Ok(None),
                }
            }
            .boxed()
        })
        .await;
        let found = match found {
            // A session opened with a token stands where the token's user stands now.
            Ok(Some((claims, signed_in, true))) => state
                .standings
                .effective(&state.db, claims)
                .await
                .map(|claims| Some((claims, signed_in))),
            Ok(Some((claims, signed_in, false))) => Ok(Some((claims, signed_in))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match &found {
            Ok(Some(_)) => state.session_gate.found_live(&secret),
            _ => state.session_gate.found_nothing(&secret),
        }
        match found {
            Ok(Some((claims, signed_in))) => {
                req.extensions_mut().insert(VerifiedToken(claims));
                req.extensions_mut().insert(signed_in);
            }
            Ok(None) => {}
            Err(e @ Error::Forbidden(_)) => return Err(e.into()),
            Err(Error::Unauthorized(why)) => {
                tracing::info!(why, "a session's token no longer stands")
            }
            Err(e) => tracing::warn!(error = %e, "reading a session failed"),
        }
    }
    next.call(req).await
}

/// Whether the request's `Origin` is this site: the public URL's origin, or the origin
/// the request was addressed to. That is what a trusted proxy says it was addressed
/// to (`X-Forwarded-Host`/`-Proto`, `Forwarded`); from anyone else those headers mean
/// nothing, and without `server.publicURL` the `Host` a direct client addressed counts.
pub fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let server = &state.config.server;
    if origin_of(&public_url(&state.config)) == origin {
        return true;
    }
    let from_trusted_proxy = req.peer_addr().is_some_and(|peer| {
        server
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip()))
    });
    let addressed = if from_trusted_proxy {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    } else if server.public_url.is_none() {
        // anchorage itself speaks plain HTTP; TLS ends at a proxy.
        match req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
        {
            Some(host) => format!("http://{host}"),
            None => return false,
        }
    } else {
        return false;
    };
    addressed == origin
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
