//! The SQL of memberships, on a connection the caller opened: inside the org's own
//! transaction (`org_tx`), so row-level security keeps every query inside the org.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    auth::Role,
    cluster::invalidation::{Invalidation, InvalidationBus},
    db::{
        functions::lower,
        schema::{memberships, users},
    },
    error::{Error, Result},
    ids::{OrgId, UserId},
};

/// One membership of an org.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema, apistos::ApiComponent)]
pub struct Member {
    pub id: Uuid,
    /// Absent while the invitation is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub user: Option<UserId>,
    pub email: Option<String>,
    #[schemars(with = "String")]
    pub role: Role,
    pub pending: bool,
}

/// The org's members and pending invitations, by email.
pub async fn list(conn: &mut AsyncPgConnection, org: OrgId) -> Result<Vec<Member>> {
    /// id, user, the user's email, the invited email, role.
    type Row = (Uuid, Option<Uuid>, Option<String>, Option<String>, Role);
    let rows: Vec<Row> = memberships::table
        .left_join(users::table)
        .filter(memberships::org_id.eq(org.uuid()))
        .select((
            memberships::id,
            memberships::user_id,
            users::email.nullable(),
            memberships::email,
            memberships::role,
        ))
        .order(memberships::created_at)
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, user, user_email, invited, role)| Member {
            id,
            user: user.map(UserId::from_uuid),
            email: user_email.or(invited),
            role,
            pending: user.is_none(),
        })
        .collect())
}

/// `role`, when it is one a membership may hold.
fn org_role(role: Role) -> Result<Role> {
    match role {
        Role::Member | Role::Orgadmin => Ok(role),
        Role::Sysadmin => Err(Error::BadRequest(
            "sysadmin is a cluster role, not an org role (anchorage admin grant-sysadmin)".into(),
        )),
    }
}

/// Adds `email` with `role`: at once when someone with that email has signed in,
/// otherwise as an invitation that binds on their first sign-in.
pub async fn add(
    conn: &mut AsyncPgConnection,
    bus: &dyn InvalidationBus,
    org: OrgId,
    email: &str,
    role: Role,
) -> Result<Member> {
    let role = org_role(role)?;
    let email = email.trim();
    if !email.contains('@') || email.len() > 320 {
        return Err(Error::BadRequest(format!(
            "'{email}' is not an email address"
        )));
    }
    let user: Option<Uuid> = users::table
        .filter(lower(users::email).eq(lower(Some(email))))
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    let id = Uuid::now_v7();
    diesel::insert_into(memberships::table)
        .values((
            memberships::id.eq(id),
            memberships::org_id.eq(org.uuid()),
            memberships::user_id.eq(user),
            memberships::email.eq(email),
            memberships::role.eq(role),
        ))
        .execute(conn)
        .await
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => Error::Conflict(format!("{email} is already a member or invited")),
            other => other.into(),
        })?;
    if let Some(user) = user {
        bus.announce(conn, Invalidation::User(user)).await?;
    }
    Ok(Member {
        id,
        user: user.map(UserId::from_uuid),
        email: Some(email.to_string()),
        role,
        pending: user.is_none(),
    })
}

/// Changes a membership's role; `NotFound` when `member` is not in `org`. Every node
/// hears of it, so the member's tokens act with the new role at once.
pub async fn set_role(
    conn: &mut AsyncPgConnection,
    bus: &dyn InvalidationBus,
    org: OrgId,
    member: Uuid,
    role: Role,
) -> Result<()> {
    let role = org_role(role)?;
    let changed: Option<Option<Uuid>> = diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org.uuid()))
            .filter(memberships::id.eq(member)),
    )
    .set(memberships::role.eq(role))
    .returning(memberships::user_id)
    .get_result(conn)
    .await
    .optional()?;
    match changed {
        None => Err(Error::NotFound("no such member".into())),
        Some(None) => Ok(()),
        Some(Some(user)) => bus.announce(conn, Invalidation::User(user)).await,
    }
}

/// Removes a membership (or invitation); `NotFound` when `member` is not in `org`. The
/// person's browser sessions end with it, and every node hears of it, so their tokens
/// for the org are refused at once.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    bus: &dyn InvalidationBus,
    org: OrgId,
    member: Uuid,
) -> Result<()> {
    let removed: Option<Option<Uuid>> = diesel::delete(
        memberships::table
            .filter(memberships::org_id.eq(org.uuid()))
            .filter(memberships::id.eq(member)),
    )
    .returning(memberships::user_id)
    .get_result(conn)
    .await
    .optional()?;
    match removed {
        None => Err(Error::NotFound("no such member".into())),
        Some(None) => Ok(()),
        Some(Some(user)) => {
            crate::auth::session::revoke_all_of(conn, UserId::from_uuid(user)).await?;
            bus.announce(conn, Invalidation::User(user)).await
        }
    }
}

/// `user`'s role in `org`, if a member.
pub async fn role_of(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
) -> Result<Option<Role>> {
    Ok(memberships::table
        .filter(memberships::org_id.eq(org.uuid()))
        .filter(memberships::user_id.eq(user.uuid()))
        .select(memberships::role)
        .first(conn)
        .await
        .optional()?)
}
