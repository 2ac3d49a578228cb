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

/// What the provider told us about who signed in.
pub use crate::auth::oidc::Identity;

/// Records a sign-in of `who`: finds the user by the provider's subject (or adopts a
/// not-yet-signed-in user with the same email, e.g. one `dev` or an operator created),
/// creates one otherwise, refreshes email and name, and binds pending memberships to
/// the email. The first sign-in of an email in `bootstrap_sysadmins` (exact match) makes
/// a sysadmin; so does the `anchorage-sysadmins` group, at any sign-in. Needs a system
/// transaction (memberships of every org).
pub async fn sign_in(
    conn: &mut AsyncPgConnection,
    who: &Identity,
    bootstrap_sysadmins: &[String],
) -> Result<UserId> {
    let by_subject: Option<(uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>)> = users::table
        .filter(users::oidc_subject.eq(&who.subject))
        .select((users::id, users::last_login_at))
        .first(conn)
        .await
        .optional()?;
    let adopted = match (by_subject, who.email.as_deref()) {
        (Some(found), _) => Some(found),
        (None, Some(email)) => users::table
            .filter(users::oidc_subject.is_null())
            .filter(lower(users::email).eq(lower(Some(email))))
            .select((users::id, users::last_login_at))
            .first(conn)
            .await
            .optional()?,
        (None, None) => None,
    };
    let in_group = who
        .groups
        .iter()
        .any(|g| g == crate::auth::oidc::SYSADMIN_GROUP);
    let bootstrap = who
        .email
        .as_deref()
        .is_some_and(|e| bootstrap_sysadmins.iter().any(|s| s == e));
    let id = match adopted {
        Some((id, last_login)) => {
            let first = last_login.is_none();
            diesel::update(users::table.find(id))
                .set((
                    users::oidc_subject.eq(&who.subject),
                    users::email.eq(who.email.as_deref()),
                    users::display_name.eq(who.name.as_deref()),
                    users::last_login_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            if in_group || (first && bootstrap) {
                set_sysadmin(conn, id).await?;
            }
            id
        }
        None => {
            let id = UserId::new().uuid();
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(id),
                    users::oidc_subject.eq(&who.subject),
                    users::email.eq(who.email.as_deref()),
                    users::display_name.eq(who.name.as_deref()),
                    users::is_sysadmin.eq(in_group || bootstrap),
                    users::last_login_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            id
        }
    };
    if let Some(email) = who.email.as_deref() {
        bind_pending(conn, UserId::from_uuid(id), email).await?;
    }
    Ok(UserId::from_uuid(id))
}

async fn set_sysadmin(conn: &mut AsyncPgConnection, id: uuid::Uuid) -> Result<()> {
    diesel::update(users::table.find(id))
        .set(users::is_sysadmin.eq(true))
        .execute(conn)
        .await?;
    Ok(())
}

/// Binds memberships invited by `email` to `user` (where the user is not a member yet).
pub async fn bind_pending(
    conn: &mut AsyncPgConnection,
    user: UserId,
    email: &str,
) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE memberships m SET user_id = $1 \
         WHERE m.user_id IS NULL AND lower(m.email) = lower($2) \
           AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.org_id = m.org_id AND o.user_id = $1)",
    )
    .bind::<diesel::sql_types::Uuid, _>(user.uuid())
    .bind::<diesel::sql_types::Text, _>(email)
    .execute(conn)
    .await?)
}

/// Makes the user with `email` a sysadmin; `false` when no such user exists.
pub async fn grant_sysadmin(conn: &mut AsyncPgConnection, email: &str) -> Result<bool> {
    Ok(
        diesel::update(users::table.filter(lower(users::email).eq(lower(Some(email)))))
            .set(users::is_sysadmin.eq(true))
            .execute(conn)
            .await?
            > 0,
    )
}

/// `/v1/users/me`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema, apistos::ApiComponent)]
pub struct Me {
    #[schemars(with = "String")]
    pub id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
    pub sysadmin: bool,
    pub orgs: Vec<MyOrg>,
}

/// One org of [`Me`].
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema, apistos::ApiComponent)]
pub struct MyOrg {
    #[schemars(with = "String")]
    pub id: OrgId,
    pub name: String,
    pub role: String,
}

/// Who `user` is and where they belong. Needs a system transaction.
pub async fn me(conn: &mut AsyncPgConnection, user: UserId) -> Result<Me> {
    use crate::db::schema::orgs;
    let (email, name, sysadmin): (Option<String>, Option<String>, bool) = users::table
        .find(user.uuid())
        .select((users::email, users::display_name, users::is_sysadmin))
        .first(conn)
        .await?;
    let orgs: Vec<(uuid::Uuid, String, String)> = memberships::table
        .inner_join(orgs::table)
        .filter(memberships::user_id.eq(user.uuid()))
        .order(orgs::name)
        .select((orgs::id, orgs::name, memberships::role))
        .load(conn)
        .await?;
    Ok(Me {
        id: user,
        email,
        name,
        sysadmin,
        orgs: orgs
            .into_iter()
            .map(|(id, name, role)| MyOrg {
                id: OrgId::from_uuid(id),
                name,
                role,
            })
            .collect(),
    })
}
