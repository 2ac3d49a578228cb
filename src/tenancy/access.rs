//! Who may manage an org: a sysadmin anywhere; otherwise the caller's role in that org —
//! for a signed-in person their membership, for an API token the role it carries for
//! its own org (and only with the scope the action needs).

use futures_util::FutureExt;
use serde_json::json;

use super::members::store::role_of;
use crate::{
    audit::{self, AuditEntry},
    auth::{session::SESSION_ISSUER, Actor, Claims, Role, Scope},
    db::org_tx,
    error::{Error, Result},
    ids::{OrgId, UserId},
    state::AppState,
};

/// Fails unless `by` may administer the cluster (nodes, maintenance, rebalancing) with
/// `scope`: sysadmins only.
pub fn administers_cluster(by: &Actor, scope: Scope) -> Result<()> {
    if !sees_every_org(by.role()) {
        return Err(Error::Forbidden(
            "cluster administration is for sysadmins".into(),
        ));
    }
    by.require(scope)
}

/// Whether `role` manages its org: its members, every token, its audit log.
pub fn manages_org(role: Role) -> bool {
    role >= Role::Orgadmin
}

/// Whether `role` is cluster-wide: it sees every org and may create them.
pub fn sees_every_org(role: Role) -> bool {
    role == Role::Sysadmin
}

/// Whether a token of role `own` may mint one of role `wanted`: never above its own.
pub fn may_grant(own: Role, wanted: Role) -> bool {
    wanted <= own
}

/// Whether `role` sees and revokes every token of its org, not only its own.
pub fn manages_every_token(role: Role) -> bool {
    manages_org(role)
}

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
            async move { role_of(conn, org, user).await }.boxed()
        })
        .await;
    }
    Ok((claims.org == Some(org)).then_some(claims.role))
}

/// Whether `claims` grant `scope` to someone holding `role` in the org at hand. A
/// signed-in person acts with the role they hold in that org, so with its scopes
/// (their session's claims carry the role of the page's org, which may be another); a
/// token, or a session opened with one, has exactly the scopes it carries.
pub fn granted(claims: &Claims, role: Role, scope: Scope) -> bool {
    if claims.iss == SESSION_ISSUER && claims.scopes.is_none() {
        role.default_scopes().contains(&scope)
    } else {
        claims.has_scope(scope)
    }
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
        Some(role) if !granted(claims, role, scope) => Err(Error::Forbidden(format!(
            "this token lacks the {scope} scope"
        ))),
        Some(_) => Ok(()),
    }
}

/// Lets a sysadmin act in `org`: checks the org exists and records that they entered
/// it (by token or by browser session alike).
pub async fn enter_org(
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
