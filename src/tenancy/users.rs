//! Users and their org memberships.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;

use crate::{
    auth::{Actor, Role},
    cluster::invalidation::{Invalidation, InvalidationBus},
    db::{
        functions::lower,
        schema::{memberships, users},
        system_tx,
    },
    error::{Error, Result},
    ids::{OrgId, UserId},
    state::AppState,
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
/// For setting up (`dev`'s demo org, tests): it announces nothing, so running nodes see
/// the change only when their cached standing expires; people use [`super::members`].
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

/// How a sign-in came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    /// Signed in as this user.
    User(UserId),
    /// Refused, with the cause and its fix; nothing was written.
    Refused(String),
}

/// What a sign-in may do with the email the provider sent.
#[derive(Debug, Clone, Copy)]
pub struct EmailPolicy<'a> {
    /// `bootstrap.sysadmins`.
    pub bootstrap_sysadmins: &'a [String],
    /// `auth.authentik.trustUnverifiedEmail`: count emails the provider does not vouch
    /// for (`email_verified` not true).
    pub trust_unverified: bool,
}

/// Records a sign-in of `who`: finds the user by the provider's subject, or adopts a
/// not-yet-signed-in user with the same email (one `dev` or an operator created), or
/// creates one; refreshes name and email, and binds pending memberships to the email.
///
/// The email counts — for adoption, invitations, bootstrap, and being recorded at all —
/// only when the provider vouches for it (`email_verified: true`) or the operator trusts
/// every email it sends. An unverified email that would have counted for any of them
/// refuses the sign-in with the cause and the fix, before anything is written.
///
/// `bootstrap.sysadmins` makes a sysadmin of the first identity that signs in with a
/// listed email, once per email, and only at that identity's first sign-in; the
/// `anchorage-sysadmins` group does so at any sign-in. Needs a system transaction.
pub async fn sign_in(
    conn: &mut AsyncPgConnection,
    bus: &dyn InvalidationBus,
    who: &Identity,
    policy: EmailPolicy<'_>,
) -> Result<SignInOutcome> {
    let by_subject: Option<(uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>)> = users::table
        .filter(users::oidc_subject.eq(&who.subject))
        .select((users::id, users::last_login_at))
        .first(conn)
        .await
        .optional()?;
    let counted = who
        .email
        .as_deref()
        .filter(|_| who.email_verified || policy.trust_unverified);
    if let Some(unverified) = who.email.as_deref().filter(|_| counted.is_none()) {
        let uses = email_uses(conn, unverified, by_subject.is_none(), policy).await?;
        if !uses.is_empty() {
            return Ok(SignInOutcome::Refused(unverified_refusal(
                unverified, &uses,
            )));
        }
    }
    let adopted = match (by_subject, counted) {
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
    let listed = counted.filter(|e| is_listed(policy.bootstrap_sysadmins, e));
    let (id, first) = match adopted {
        Some((id, last_login)) => {
            diesel::update(users::table.find(id))
                .set((
                    users::oidc_subject.eq(&who.subject),
                    users::display_name.eq(who.name.as_deref()),
                    users::last_login_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            // An email the provider does not vouch for never replaces a recorded one.
            if let Some(email) = counted {
                diesel::update(users::table.find(id))
                    .set(users::email.eq(email))
                    .execute(conn)
                    .await?;
            }
            (id, last_login.is_none())
        }
        None => {
            let id = UserId::new().uuid();
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(id),
                    users::oidc_subject.eq(&who.subject),
                    users::email.eq(counted),
                    users::display_name.eq(who.name.as_deref()),
                    users::is_sysadmin.eq(false),
                    users::last_login_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            (id, true)
        }
    };
    let bootstrapped = match listed {
        Some(email) if first => claim_bootstrap(conn, email, id).await?,
        _ => false,
    };
    if in_group || bootstrapped {
        set_sysadmin(conn, id).await?;
    }
    if let Some(email) = counted {
        bind_pending(conn, UserId::from_uuid(id), email).await?;
    }
    // Their standing may have grown: nodes re-read it.
    bus.announce(conn, Invalidation::User(id)).await?;
    Ok(SignInOutcome::User(UserId::from_uuid(id)))
}

fn is_listed(bootstrap_sysadmins: &[String], email: &str) -> bool {
    // Exact match, as the seed documents it.
    bootstrap_sysadmins.iter().any(|s| s == email)
}

/// Uses `email`'s bootstrap entry for `user`; false when another identity used it.
async fn claim_bootstrap(
    conn: &mut AsyncPgConnection,
    email: &str,
    user: uuid::Uuid,
) -> Result<bool> {
    use crate::db::schema::bootstrap_claims;
    Ok(diesel::insert_into(bootstrap_claims::table)
        .values((
            bootstrap_claims::email.eq(email),
            bootstrap_claims::user_id.eq(user),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?
        > 0)
}

/// What an email would have been used for at this sign-in.
async fn email_uses(
    conn: &mut AsyncPgConnection,
    email: &str,
    new_identity: bool,
    policy: EmailPolicy<'_>,
) -> Result<Vec<&'static str>> {
    use crate::db::schema::bootstrap_claims;
    let mut uses = Vec::new();
    if new_identity {
        let adoptable: bool = diesel::select(diesel::dsl::exists(
            users::table
                .filter(users::oidc_subject.is_null())
                .filter(lower(users::email).eq(lower(Some(email)))),
        ))
        .get_result(conn)
        .await?;
        if adoptable {
            uses.push("would sign in to an existing account with that email");
        }
        if is_listed(policy.bootstrap_sysadmins, email) {
            let used: bool = diesel::select(diesel::dsl::exists(
                bootstrap_claims::table.filter(bootstrap_claims::email.eq(email)),
            ))
            .get_result(conn)
            .await?;
            if !used {
                uses.push("is in bootstrap.sysadmins");
            }
        }
    }
    let invited: bool = diesel::select(diesel::dsl::exists(
        memberships::table
            .filter(memberships::user_id.is_null())
            .filter(lower(memberships::email).eq(lower(Some(email)))),
    ))
    .get_result(conn)
    .await?;
    if invited {
        uses.push("has a pending org invitation");
    }
    Ok(uses)
}

fn unverified_refusal(email: &str, uses: &[&str]) -> String {
    format!(
        "the identity provider did not verify the email {email} (email_verified is not true), \
         and it {}; an email counts only when the provider vouches for it. Fix: give the \
         provider an email scope mapping that sends \"email_verified\": true (docs/authentik.md), \
         or, if every email it issues is verified, set auth.authentik.trustUnverifiedEmail: true",
        uses.join(" and ")
    )
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
pub async fn grant_sysadmin(
    conn: &mut AsyncPgConnection,
    bus: &dyn InvalidationBus,
    email: &str,
) -> Result<bool> {
    let granted: Vec<uuid::Uuid> =
        diesel::update(users::table.filter(lower(users::email).eq(lower(Some(email)))))
            .set(users::is_sysadmin.eq(true))
            .returning(users::id)
            .get_results(conn)
            .await?;
    for user in &granted {
        bus.announce(conn, Invalidation::User(*user)).await?;
    }
    Ok(!granted.is_empty())
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
    /// How this browser session was opened; absent for a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<crate::auth::session::SignedIn>,
}

impl Me {
    /// What a token (or a session opened with one) sees of its person: the token's own
    /// org with the role it acts with, and sysadmin only for a sysadmin token (which sees
    /// its person's orgs). A browser session opened through the provider (`claims.iss`
    /// is the session issuer) sees all.
    pub fn as_seen_by(mut self, claims: &crate::auth::Claims) -> Self {
        self.sysadmin = super::access::sees_every_org(claims.role);
        // A sysadmin token acts in any org, and its person's own are where it starts.
        if claims.iss == crate::auth::session::SESSION_ISSUER || self.sysadmin {
            return self;
        }
        self.orgs = self
            .orgs
            .into_iter()
            .filter(|o| Some(o.id) == claims.org)
            .map(|o| MyOrg {
                role: claims.role,
                ..o
            })
            .collect();
        self
    }

    /// Says how the session was opened.
    pub fn with_session(mut self, signed_in: Option<crate::auth::session::SignedIn>) -> Self {
        self.session = signed_in;
        self
    }
}

/// One org of [`Me`].
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema, apistos::ApiComponent)]
pub struct MyOrg {
    #[schemars(with = "String")]
    pub id: OrgId,
    pub name: String,
    #[schemars(with = "String")]
    pub role: Role,
}

/// Who `by` is and where they belong, as their credential lets them see it: a token
/// (or a session opened with one) sees only its own org. 404 when the credential names
/// no user.
pub async fn whoami(state: &AppState, by: &Actor) -> Result<Me> {
    let user: UserId = by
        .claims
        .sub
        .parse()
        .map_err(|_| Error::NotFound("this token names no user".into()))?;
    Ok(find(state, user).await?.as_seen_by(&by.claims))
}

/// Who `user` is, with every org they belong to; 404 when there is no such user.
pub async fn find(state: &AppState, user: UserId) -> Result<Me> {
    system_tx(&state.db, move |conn| me(conn, user).boxed())
        .await
        .map_err(|e| match e {
            Error::Database(diesel::result::Error::NotFound) => {
                Error::NotFound("this token names no user".into())
            }
            other => other,
        })
}

/// Who `user` is, with every org they belong to. Needs a system transaction.
pub async fn me(conn: &mut AsyncPgConnection, user: UserId) -> Result<Me> {
    use crate::db::schema::orgs;
    let (email, name, sysadmin): (Option<String>, Option<String>, bool) = users::table
        .find(user.uuid())
        .select((users::email, users::display_name, users::is_sysadmin))
        .first(conn)
        .await?;
    let orgs: Vec<(uuid::Uuid, String, Role)> = memberships::table
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
        session: None,
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
