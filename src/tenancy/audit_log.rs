//! Who reads which part of the audit log: a sysadmin every entry (with
//! `cluster:read`), an org admin their own org's (with `members:read`), nobody else.
//! The API's `/v1/admin/audit` and the console's audit page both read through here.

use futures_util::FutureExt;

use super::access;
use crate::{
    audit::{self, AuditQuery, AuditRecord},
    auth::{Actor, Scope},
    db::{org_tx, system_tx},
    error::{Error, Result},
    state::AppState,
};

/// One page of the entries `by` may read that match `query`, newest first.
pub async fn search(
    state: &AppState,
    by: &Actor,
    mut query: AuditQuery,
) -> Result<Vec<AuditRecord>> {
    if access::sees_every_org(by.role()) {
        by.require(Scope::ClusterRead)?;
        return system_tx(&state.db, move |conn| {
            async move { audit::query(conn, &query).await }.boxed()
        })
        .await;
    }
    let refused = || Error::Forbidden("the audit log is for sysadmins and org admins".into());
    let org = by.org.ok_or_else(refused)?;
    if query.org.is_some_and(|o| o != org) {
        return Err(Error::Forbidden(
            "an org admin sees only their own org".into(),
        ));
    }
    let role = access::role_in(state, &by.claims, org)
        .await?
        .filter(|role| access::manages_org(*role))
        .ok_or_else(refused)?;
    if !access::granted(&by.claims, role, Scope::MembersRead) {
        return Err(Error::Forbidden(format!(
            "this token lacks the {} scope",
            Scope::MembersRead
        )));
    }
    query.org = Some(org);
    org_tx(&state.db, org, move |conn| {
        async move { audit::query(conn, &query).await }.boxed()
    })
    .await
}
