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

use super::{client_ip::ClientIp, session_gate::SessionGate};
use uuid::Uuid;

use crate::{
    auth::{oidc::public_url, session, session::SignedIn, Claims},
    db::system_tx,
    error::Error,
    ids::OrgId,
    state::AppState,
};

pub use super::verified::{bearer, named_org, VerifiedToken, ORG_HEADER};

/// What a request authenticated with, kept so that an event socket can check it again
/// when a revocation or membership change is announced.
#[derive(Debug, Clone)]
pub enum Credential {
    Bearer(String),
    Session {
        secret: String,
        id: Uuid,
        named: Option<OrgId>,
    },
}

impl Credential {
    /// The session, when it is one.
    pub fn session(&self) -> Option<Uuid> {
        match self {
            Self::Bearer(_) => None,
            Self::Session { id, .. } => Some(*id),
        }
    }

    /// The claims this credential carries now; `None` once it no longer counts
    /// (revoked, ended, its person removed). Errors are the database's.
    pub async fn verify(&self, state: &AppState) -> crate::error::Result<Option<Claims>> {
        match self {
            Self::Bearer(token) => verify_bearer(state, token).await,
            Self::Session { secret, named, .. } => Ok(verify_session(state, secret, *named)
                .await?
                .map(|found| found.claims)),
        }
    }
}

/// A bearer token's claims as its user stands now, or `None` when it does not verify,
/// is revoked or its user no longer stands.
pub async fn verify_bearer(state: &AppState, token: &str) -> crate::error::Result<Option<Claims>> {
    let Ok(claims) = state.tokens.verify(token) else {
        return Ok(None);
    };
    if state.denylist.is_revoked(&state.db, claims.jti).await? {
        return Ok(None);
    }
    match state.standings.effective(&state.db, claims).await {
        Ok(claims) => Ok(Some(claims)),
        Err(Error::Unauthorized(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A live session behind a cookie.
pub struct FoundSession {
    pub claims: Claims,
    pub signed_in: SignedIn,
    pub id: Uuid,
}

/// The session behind the cookie `secret`, acting in `named` org, or `None` when it
/// is not live (or was opened with a token whose user no longer stands). Fails with
/// 403 when `named` is an org the person is not a member of.
pub async fn verify_session(
    state: &AppState,
    secret: &str,
    named: Option<OrgId>,
) -> crate::error::Result<Option<FoundSession>> {
    let secret = secret.to_string();
    let found = system_tx(&state.db, |conn| {
        async move {
            match session::find(conn, &secret).await? {
                Some(live) => {
                    let claims = session::claims(conn, &live, named).await?;
                    Ok(Some((
                        claims,
                        live.signed_in(),
                        live.id,
                        live.token.is_some(),
                    )))
                }
                None => Ok(None),
            }
        }
        .boxed()
    })
    .await?;
    let Some((claims, signed_in, id, from_token)) = found else {
        return Ok(None);
    };
    // A session opened with a token stands where the token's user stands now.
    let claims = match from_token {
        false => claims,
        true => match state.standings.effective(&state.db, claims).await {
            Ok(claims) => claims,
            Err(Error::Unauthorized(why)) => {
                tracing::info!(why, "a session's token no longer stands");
                return Ok(None);
            }
            Err(e) => return Err(e),
        },
    };
    Ok(Some(FoundSession {
        claims,
        signed_in,
        id,
    }))
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
        // A database hiccup here leaves the request unverified; the extractor then
        // retries the check and reports the error itself.
        if let Ok(Some(claims)) = verify_bearer(&state, &token).await {
            req.extensions_mut().insert(VerifiedToken(claims));
            req.extensions_mut().insert(Credential::Bearer(token));
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
        let gate = req.app_data::<web::Data<SessionGate>>().cloned();
        let client = ClientIp::of(req.request()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if gate
            .as_ref()
            .is_some_and(|g| !g.may_look_up(&secret, client))
        {
            return next.call(req).await;
        }
        let found = verify_session(&state, &secret, named).await;
        if let Some(gate) = &gate {
            match &found {
                Ok(Some(_)) => gate.found_live(&secret),
                _ => gate.found_nothing(&secret),
            }
        }
        match found {
            Ok(Some(found)) => {
                req.extensions_mut().insert(VerifiedToken(found.claims));
                req.extensions_mut().insert(found.signed_in);
                req.extensions_mut().insert(Credential::Session {
                    secret,
                    id: found.id,
                    named,
                });
            }
            Ok(None) => {}
            Err(e @ Error::Forbidden(_)) => return Err(e.into()),
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
