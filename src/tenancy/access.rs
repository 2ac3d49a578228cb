//! Who may manage an org: a sysadmin anywhere; otherwise the caller's role in that org —
//! for a signed-in person their membership, for an API token the role it carries for
//! its own org (and only with the scope the action needs).

use futures_util::FutureExt;

use super::members;
use crate::{
    auth::{session::SESSION_ISSUER, Claims, Role, Scope},
    db::org_tx,
    error::{Error, Result},
    ids::{OrgId, UserId},
    state::AppState,
};

/// The caller's role in `org`, if any.
pub async fn role_in(state: &AppState, claims: &Claims, org: OrgId) -> Result<Option<Role>> {
    if claims.role == Role::Sysadmin {
        return Ok(Some(Role::Sysadmin));
    }
    if claims.iss == SESSION_ISSUER {
        let Ok(user) = claims.sub.parse::<UserId>() else {
            return Ok(None);
        };
        return org_tx(&state.db, org, move |conn| {
            async move { members::role_of(conn, org, user).await }.boxed()
        })
        .await;
    }
    Ok((claims.org == Some(org)).then_some(claims.role))
}

/// Fails unless the caller holds at least `needed` in `org` and the token's `scope`.
/// Someone with no role in the org learns nothing about it (404).
pub async fn require(
    state: &AppState,
    claims: &Claims,
    org: OrgId,
    needed: Role,
    scope: Scope,
) -> Result<()> {
    match role_in(state, claims, org).await? {
        None => Err(Error::NotFound(format!("no org {org}"))),
        Some(role) if role < needed => Err(Error::Forbidden(format!(
            "this needs the {} role in the org",
            needed.as_str()
        ))),
        Some(_) if !claims.has_scope(scope) => Err(Error::Forbidden(format!(
            "this token lacks the {scope} scope"
        ))),
        Some(_) => Ok(()),
    }
}
