//! Organisations (tenants): who may see and create them. Each function decides access
//! with [`super::access`], opens its own transaction and audits what it changes; the
//! SQL is in [`store`].

pub mod store;

use futures_util::FutureExt;
use serde_json::json;

pub use store::{validate_name, Org};

use super::{access, users};
use crate::{
    audit::{self, AuditEntry},
    auth::{session::SESSION_ISSUER, Actor, Scope},
    db::system_tx,
    error::{Error, Result},
    ids::UserId,
    state::AppState,
};

/// The orgs `by` may see: every org for a sysadmin; otherwise the token's own org, or
/// a signed-in person's memberships.
pub async fn visible(state: &AppState, by: &Actor) -> Result<Vec<Org>> {
    let claims = by.claims.clone();
    // One read for everything: every org, plus the caller's memberships when the caller
    // is a signed-in person (a token sees only its own org).
    let person: Option<UserId> = (claims.iss == SESSION_ISSUER)
        .then(|| claims.sub.parse().ok())
        .flatten();
    let (all, memberships) = system_tx(&state.db, move |conn| {
        async move {
            let all = store::list(conn).await?;
            let memberships = match person {
                Some(user) => users::me(conn, user).await?.orgs,
                None => Vec::new(),
            };
            Ok((all, memberships))
        }
        .boxed()
    })
    .await?;
    if access::sees_every_org(by.role()) {
        return Ok(all);
    }
    Ok(all
        .into_iter()
        .filter(|o| claims.org == Some(o.id) || memberships.iter().any(|m| m.id == o.id))
        .collect())
}

/// Creates an org named `name`: sysadmins only (with `cluster:write`), audited as
/// `org.create`.
pub async fn create(state: &AppState, by: &Actor, name: String) -> Result<Org> {
    if !access::sees_every_org(by.role()) {
        return Err(Error::Forbidden("only a sysadmin creates orgs".into()));
    }
    by.require(Scope::ClusterWrite)?;
    let (actor, ip) = (by.name(), by.ip);
    system_tx(&state.db, move |conn| {
        async move {
            let org = store::create(conn, &name).await?;
            audit::record(
                conn,
                AuditEntry::new(actor, "org.create", org.id.to_string())
                    .org(org.id)
                    .source_ip(ip)
                    .details(json!({ "name": org.name })),
            )
            .await?;
            Ok(org)
        }
        .boxed()
    })
    .await
}
