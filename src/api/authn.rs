//! Authentication ahead of everything that needs to know whether a request is
//! authenticated (the rate limiter exempts verified callers; the `Caller` extractor
//! reuses the result): a bearer token counts once its signature, expiry, issuer and
//! audience check out and it is not revoked — never for merely being present; a session
//! cookie counts when its session is live. A cookie is sent by browsers on their own, so
//! a state-changing request (and the events socket) authenticated only by the cookie
//! must come from our own origin. A cookie costs a database lookup only as the session
//! gate allows (see [`super::session_gate`]).

use std::{future::Future, net::IpAddr, pin::Pin};

use actix_web::{
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, FromRequest, HttpMessage, HttpRequest,
};
use futures_util::FutureExt;

use super::{access_log::LoggedOrg, client_ip::ClientIp, session_gate::SessionGate};
use uuid::Uuid;

use crate::{
    auth::{oidc::public_url, session, session::SignedIn, Actor, Claims},
    db::system_tx,
    error::{Error, Result},
    ids::OrgId,
    state::AppState,
    tenancy::access,
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
    pub async fn verify(&self, state: &AppState) -> Result<Option<Claims>> {
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
pub async fn verify_bearer(state: &AppState, token: &str) -> Result<Option<Claims>> {
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
) -> Result<Option<FoundSession>> {
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

/// Who is calling and in which org.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    /// The tenant every query of this request is scoped to.
    pub org: OrgId,
}

impl Caller {
    /// The domain's view of this caller, acting in its org from `ip`.
    pub fn actor(&self, ip: Option<IpAddr>) -> Actor {
        Actor::new(self.claims.clone(), Some(self.org), ip)
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let request = req.clone();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let named_org = named_org(req);
        let peer_ip = ClientIp::of(req);
        let what = format!("{} {}", req.method(), req.path());
        let verified = req.extensions().get::<VerifiedToken>().map(|v| v.0.clone());
        Box::pin(async move {
            let state = state.ok_or_else(|| Error::Internal("application state missing".into()))?;
            let claims = match verified {
                // The authn middleware already checked signature, claims and denylist.
                Some(claims) => claims,
                None => verify(&state, authorization).await?,
            };
            let named = named_org?;
            let org = match (named, claims.org) {
                (Some(named), Some(own)) if named == own => own,
                (Some(named), _) if access::sees_every_org(claims.role) => {
                    access::enter_org(&state, &claims, named, peer_ip, &what).await?;
                    named
                }
                (Some(_), _) => {
                    return Err(Error::Forbidden(format!(
                        "only a sysadmin token may name another org in {ORG_HEADER}"
                    )))
                }
                (None, Some(own)) => own,
                (None, None) => {
                    return Err(Error::BadRequest(format!(
                        "this token belongs to no org; name one with the {ORG_HEADER} header, or, for a client \
                         that cannot send headers (ipfs pin remote), mint a token for the org: \
                         anchorage admin mint-token --role orgadmin --org <org>"
                    )))
                }
            };
            request.extensions_mut().insert(LoggedOrg(org));
            Ok(Caller { claims, org })
        })
    }
}

/// A verified caller that need not act in any one org: cluster-wide views (audit,
/// cluster administration) decide from the role what it may see.
#[derive(Debug, Clone)]
pub struct Principal(pub Claims);

impl Principal {
    /// The domain's view of this caller, in no org of its choosing, from `ip`.
    pub fn actor(&self, ip: Option<IpAddr>) -> Actor {
        Actor::new(self.0.clone(), self.0.org, ip)
    }
}

impl FromRequest for Principal {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let verified = req.extensions().get::<VerifiedToken>().map(|v| v.0.clone());
        Box::pin(async move {
            let state = state.ok_or_else(|| Error::Internal("application state missing".into()))?;
            Ok(Principal(match verified {
                Some(claims) => claims,
                None => verify(&state, authorization).await?,
            }))
        })
    }
}

/// The claims of the request's bearer token, or why it is refused.
async fn verify(
    state: &AppState,
    authorization: Option<std::result::Result<String, header::ToStrError>>,
) -> Result<Claims> {
    let token = match authorization {
        None => return Err(Error::Unauthorized("no Authorization header".into())),
        Some(Err(_)) => {
            return Err(Error::Unauthorized(
                "Authorization header is not text".into(),
            ))
        }
        Some(Ok(value)) => bearer_token(&value)?,
    };
    let claims = state.tokens.verify(&token)?;
    if state.denylist.is_revoked(&state.db, claims.jti).await? {
        return Err(Error::Unauthorized(format!(
            "token {} is revoked",
            claims.jti
        )));
    }
    state.standings.effective(&state.db, claims).await
}

/// The token from `Bearer <token>` (scheme case-insensitive).
fn bearer_token(value: &str) -> Result<String> {
    bearer(value)
        .map(str::to_string)
        .ok_or_else(|| Error::Unauthorized("Authorization is not a bearer token".into()))
}

#[cfg(test)]
mod tests {
    use super::{bearer, bearer_token, origin_of};

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

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc").unwrap(), "abc");
        assert_eq!(bearer_token("bearer  abc ").unwrap(), "abc");
        assert!(bearer_token("Basic abc").is_err());
        assert!(bearer_token("Bearer").is_err());
        assert!(bearer_token("Bearer ").is_err());
    }
}
