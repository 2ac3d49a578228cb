//! Refusing to serve as a role that could switch tenancy off: a superuser, a role with
//! BYPASSRLS, or one that owns (or is a member of the owner of) a table under row-level
//! security could read across tenants or drop the policies. The server's role should
//! own nothing; `postgres.migrationDSN` names the owner, which only `migrate up` uses.

use diesel::{sql_types::Bool, QueryableByName};
use diesel_async::RunQueryDsl;

use crate::error::{Error, Result};

/// What the connected role could do to row-level security.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RolePowers {
    #[diesel(sql_type = Bool)]
    pub superuser: bool,
    #[diesel(sql_type = Bool)]
    pub bypass_rls: bool,
    /// Owns, directly or through a role it belongs to, a table with row-level security.
    #[diesel(sql_type = Bool)]
    pub owns_tenant_tables: bool,
}

impl RolePowers {
    /// What makes this role unfit to serve, if anything.
    pub fn objection(&self) -> Option<&'static str> {
        match self {
            Self {
                superuser: true, ..
            } => Some("is a superuser"),
            Self {
                bypass_rls: true, ..
            } => Some("has BYPASSRLS"),
            Self {
                owns_tenant_tables: true,
                ..
            } => Some("owns the tenant tables"),
            _ => None,
        }
    }
}

/// The powers of the role `dsn` connects as.
pub async fn powers(dsn: &str) -> Result<RolePowers> {
    let mut conn = super::connect::establish(dsn).await?;
    Ok(diesel::sql_query(
        "SELECT r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls, \
                EXISTS (SELECT 1 FROM pg_class c \
                         WHERE c.relrowsecurity \
                           AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owns_tenant_tables \
           FROM pg_roles r WHERE r.rolname = current_user",
    )
    .get_result(&mut conn)
    .await?)
}

/// Fails naming the fix when `dsn`'s role could bypass row-level security, unless
/// `allow` (`serve --allow-owner-role`), which only warns.
pub async fn refuse_owner_role(dsn: &str, allow: bool) -> Result<()> {
    let Some(objection) = powers(dsn).await?.objection() else {
        return Ok(());
    };
    let role = super::migrate::dsn_user(dsn).unwrap_or_else(|| "(default)".into());
    let why = format!(
        "the server's Postgres role '{role}' (postgres.dsn) {objection}, so it could read across tenants or turn row-level security off"
    );
    if allow {
        tracing::warn!("{why}; serving anyway (--allow-owner-role)");
        return Ok(());
    }
    Err(Error::Config {
        key: "postgres.dsn".into(),
        message: format!(
            "{why}. Create a server role that owns nothing (CREATE ROLE anchorage_app LOGIN PASSWORD '...'), \
             point postgres.dsn at it and postgres.migrationDSN at the owner, then run `anchorage migrate up` \
             to grant it access; or start with --allow-owner-role to accept the risk"
        ),
    })
}
