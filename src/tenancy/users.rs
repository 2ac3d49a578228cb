//! Users and their org memberships.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    auth::Role,
    db::{
        functions::lower,
        schema::{memberships, users},
    },
    error::{Error, Result},
    ids::{OrgId, UserId},
};

/// The user with `email` (case-insensitive), created if missing. Used by `dev` and by
/// sign-in. `sysadmin` is applied only on creation.
pub async fn ensure_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
    sysadmin: bool,
) -> Result<UserId> {
    let existing: Option<uuid::Uuid> = users::table
        .filter(lower(users::email).eq(lower(Some(email))))
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    if let Some(id) = existing {
        return Ok(UserId::from_uuid(id));
    }
    let id = UserId::new();
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id.uuid()),
            users::email.eq(email),
            users::is_sysadmin.eq(sysadmin),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// Makes `user` a member of `org` with `role` (orgadmin or member), or updates the role.
pub async fn set_membership(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    role: Role,
) -> Result<()> {
    if role == Role::Sysadmin {
        return Err(Error::BadRequest(
            "sysadmin is a cluster role, not an org membership".into(),
        ));
    }
    diesel::insert_into(memberships::table)
        .values((
            memberships::id.eq(uuid::Uuid::now_v7()),
            memberships::org_id.eq(org.uuid()),
            memberships::user_id.eq(user.uuid()),
            memberships::role.eq(role.as_str()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    diesel::update(memberships::table)
        .filter(memberships::org_id.eq(org.uuid()))
        .filter(memberships::user_id.eq(user.uuid()))
        .set(memberships::role.eq(role.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}
