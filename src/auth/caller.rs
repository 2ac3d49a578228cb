//! The authenticated caller, as an actix extractor: a verified bearer token, not on the
//! denylist, and the org the request acts in.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::FutureExt;
use serde_json::json;

use super::{Claims, Role, Scope};
use crate::{
    audit::{self, AuditEntry},
    db::org_tx,
    error::{Error, Result},
    ids::OrgId,
    state::AppState,
};

pub use crate::api::authn::ORG_HEADER;

/// Who is calling and in which org.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    /// The tenant every query of this request is scoped to.
    pub org: OrgId,
}

impl Caller {
    /// Fails with 403 unless the token carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.claims.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this token lacks the {scope} scope"
            )))
        }
    }

    /// The actor name for audit entries.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.claims.sub, self.claims.jti)
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
        let named_org = crate::api::authn::named_org(req);
        let peer_ip = crate::api::client_ip::ClientIp::of(req);
        let what = format!("{} {}", req.method(), req.path());
        let verified = req
            .extensions()
            .get::<crate::api::authn::VerifiedToken>()
            .map(|v| v.0.clone());
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
                (Some(named), _) if claims.role == Role::Sysadmin => {
                    act_as(&state, &claims, named, peer_ip, &what).await?;
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
            request
                .extensions_mut()
                .insert(crate::api::access_log::LoggedOrg(org));
            Ok(Caller { claims, org })
        })
    }
}

/// A verified caller that need not act in any one org: cluster-wide views (audit,
/// cluster administration) decide from the role what it may see.
#[derive(Debug, Clone)]
pub struct Principal(pub Claims);

impl Principal {
    /// Fails with 403 unless the token carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.0.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this token lacks the {scope} scope"
            )))
        }
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
        let verified = req
            .extensions()
            .get::<crate::api::authn::VerifiedToken>()
            .map(|v| v.0.clone());
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

/// Checks the org exists and records that a sysadmin acted in it (by token or by
/// browser session alike).
pub async fn act_as(
    state: &AppState,
    claims: &Claims,
    org: OrgId,
    ip: Option<std::net::IpAddr>,
    what: &str,
) -> Result<()> {
    let actor = format!("{}:{}", claims.sub, claims.jti);
    let what = what.to_string();
    let known = state.orgs.clone();
    org_tx(&state.db, org, |conn| {
        async move {
            if !known.exists(conn, org).await? {
                return Err(Error::NotFound(format!("no org {org}")));
            }
            audit::record(
                conn,
                AuditEntry::new(actor, "sysadmin.act_in_org", org.to_string())
                    .org(org)
                    .source_ip(ip)
                    .details(json!({ "request": what })),
            )
            .await
        }
        .boxed()
    })
    .await
}

/// The token from `Bearer <token>` (scheme case-insensitive).
fn bearer_token(value: &str) -> Result<String> {
    crate::api::authn::bearer(value)
        .map(str::to_string)
        .ok_or_else(|| Error::Unauthorized("Authorization is not a bearer token".into()))
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc").unwrap(), "abc");
        assert_eq!(bearer_token("bearer  abc ").unwrap(), "abc");
        assert!(bearer_token("Basic abc").is_err());
        assert!(bearer_token("Bearer").is_err());
        assert!(bearer_token("Bearer ").is_err());
    }
}
