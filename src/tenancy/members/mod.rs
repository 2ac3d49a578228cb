//! An org's members: people with a role in it, and invitations by email that bind to
//! the person when that email first signs in. Each function here decides access with
//! [`super::access`], runs in the org's own transaction and writes its audit entry;
//! the SQL is in [`store`]. Imported by the API, the console and the CLI.

pub mod store;

use futures_util::FutureExt;
use serde_json::json;
use uuid::Uuid;

pub use store::Member;

use super::access;
use crate::{
    audit::{self, AuditEntry},
    auth::{Actor, Role, Scope},
    db::org_tx,
    error::Result,
    ids::OrgId,
    state::AppState,
};

/// The org's members and pending invitations: for its admins and sysadmins.
pub async fn list(state: &AppState, by: &Actor, org: OrgId) -> Result<Vec<Member>> {
    access::require(state, &by.claims, org, Role::Orgadmin, Scope::MembersRead).await?;
    org_tx(&state.db, org, move |conn| store::list(conn, org).boxed()).await
}

/// Adds `email` to `org` with `role` (bound at once when that email has signed in
/// before, otherwise when it first does), audited as `member.add`.
pub async fn add(
    state: &AppState,
    by: &Actor,
    org: OrgId,
    email: String,
    role: Role,
) -> Result<Member> {
    access::require(state, &by.claims, org, Role::Orgadmin, Scope::MembersWrite).await?;
    let (bus, name, ip) = (state.bus.clone(), by.name(), by.ip);
    org_tx(&state.db, org, move |conn| {
        async move {
            let member = store::add(conn, bus.as_ref(), org, &email, role).await?;
            audit::record(
                conn,
                AuditEntry::new(name, "member.add", email.clone())
                    .org(org)
                    .source_ip(ip)
                    .details(json!({ "role": member.role, "pending": member.pending })),
            )
            .await?;
            Ok(member)
        }
        .boxed()
    })
    .await
}

/// Changes a member's role, audited as `member.role`.
pub async fn set_role(
    state: &AppState,
    by: &Actor,
    org: OrgId,
    member: Uuid,
    role: Role,
) -> Result<()> {
    access::require(state, &by.claims, org, Role::Orgadmin, Scope::MembersWrite).await?;
    let (bus, name, ip) = (state.bus.clone(), by.name(), by.ip);
    org_tx(&state.db, org, move |conn| {
        async move {
            store::set_role(conn, bus.as_ref(), org, member, role).await?;
            audit::record(
                conn,
                AuditEntry::new(name, "member.role", member.to_string())
                    .org(org)
                    .source_ip(ip)
                    .details(json!({ "role": role.as_str() })),
            )
            .await
        }
        .boxed()
    })
    .await
}

/// Removes a member (or withdraws an invitation), audited as `member.remove`.
pub async fn remove(state: &AppState, by: &Actor, org: OrgId, member: Uuid) -> Result<()> {
    access::require(state, &by.claims, org, Role::Orgadmin, Scope::MembersWrite).await?;
    let (bus, name, ip) = (state.bus.clone(), by.name(), by.ip);
    org_tx(&state.db, org, move |conn| {
        async move {
            store::remove(conn, bus.as_ref(), org, member).await?;
            audit::record(
                conn,
                AuditEntry::new(name, "member.remove", member.to_string())
                    .org(org)
                    .source_ip(ip),
            )
            .await
        }
        .boxed()
    })
    .await
}
