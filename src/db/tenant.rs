//! The only two ways to open a transaction that touches tenant tables.
//!
//! Row-level security admits a tenant row when it belongs to the org named by the
//! transaction-local `anchorage.org_id` setting, or when `anchorage.system` is on.
//! [`org_tx`] sets the first and is what every request path uses; [`system_tx`] sets the
//! second and is reserved for code that must work across orgs (cluster, jobs, login,
//! sysadmin views). Both settings are `SET LOCAL`-scoped, so nothing leaks to the next
//! user of a pooled connection.

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use futures_util::future::BoxFuture;

use super::pool::{self, DbPool};
use crate::{
    error::{Error, Result},
    ids::OrgId,
};

/// Which rows a transaction may see.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// One org's rows.
    Org(OrgId),
    /// Every org's rows (cluster-wide code only).
    System,
}

/// Runs `f` in a transaction scoped to `org`: it sees and may write only that org's rows.
pub async fn org_tx<R, F>(db: &DbPool, org: OrgId, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send,
    R: Send,
{
    let mut conn = pool::get(db).await?;
    scoped_tx(&mut conn, Scope::Org(org), f).await
}

/// Runs `f` in a transaction that sees every org's rows. Use only where the work is
/// inherently cross-org; request handlers use [`org_tx`].
pub async fn system_tx<R, F>(db: &DbPool, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send,
    R: Send,
{
    let mut conn = pool::get(db).await?;
    scoped_tx(&mut conn, Scope::System, f).await
}

/// Runs `f` inside a transaction on an existing connection with the given scope set first.
pub async fn scoped_tx<R, F>(conn: &mut AsyncPgConnection, scope: Scope, f: F) -> Result<R>
where
    F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R>> + Send,
    R: Send,
{
    type Tm = <AsyncPgConnection as AsyncConnection>::TransactionManager;
    Tm::begin_transaction(conn).await?;
    let outcome = match set_scope(conn, scope).await {
        Ok(()) => f(conn).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(value) => {
            Tm::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = Tm::rollback_transaction(conn).await {
                tracing::warn!(error = %rollback, "rollback failed after: {e}");
            }
            Err(e)
        }
    }
}

async fn set_scope(conn: &mut AsyncPgConnection, scope: Scope) -> Result<()> {
    let (name, value) = match scope {
        Scope::Org(org) => ("anchorage.org_id", org.uuid().to_string()),
        Scope::System => ("anchorage.system", "on".to_string()),
    };
    diesel::sql_query("SELECT set_config($1, $2, true)")
        .bind::<Text, _>(name)
        .bind::<Text, _>(value)
        .execute(conn)
        .await
        .map_err(Error::from)?;
    Ok(())
}
